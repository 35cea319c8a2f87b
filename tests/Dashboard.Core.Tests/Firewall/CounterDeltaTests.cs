using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Firewall;

public class CounterDeltaTests
{
    private static Ruleset Read(string name) => IptablesSaveReader.Read(TestPaths.ReadShared("iptables/" + name));

    [Fact]
    public void Compare_FirstRead_HasNoChanges()
    {
        var diff = CounterDelta.Compare(null, Read("docker-20.10-two-networks-isolated.save"));

        Assert.True(diff.IsEmpty);
    }

    [Fact]
    public void Compare_IsolatedThenDockerUserAccept_ReportsAddedRulesAndMovedCountersByIdentity()
    {
        var diff = CounterDelta.Compare(Read("docker-20.10-two-networks-isolated.save"), Read("docker-20.10-two-networks-docker-user-accept.save"));

        Assert.Equal(2, diff.Added.Count);
        Assert.All(diff.Added, id => Assert.Equal("DOCKER-USER", id.Chain));
        Assert.Empty(diff.Removed);
        Assert.True(diff.PositionsMoved);
        // Accepted packets never reach DOCKER-USER's RETURN (now at position 3): it did not move; the jump into DOCKER-USER counted requests and replies.
        Assert.DoesNotContain(diff.Counters, c => c.Id.Chain == "DOCKER-USER");
        var jump = Assert.Single(diff.Counters, c => c.Id.Chain == "FORWARD");
        Assert.Equal(("-A FORWARD -j DOCKER-USER", 9UL, 6UL), (jump.Id.Key, jump.Packets, jump.DeltaPackets));
        var masquerade = Assert.Single(diff.Counters, c => c.Id.Table == "nat");
        Assert.Equal(1UL, masquerade.DeltaPackets);
    }

    [Fact]
    public void Compare_Stage1AcceptForm_TheStage2DropStopsAndResetIsReported()
    {
        var diff = CounterDelta.Compare(Read("docker-20.10-two-networks-isolated.save"), Read("docker-20.10-two-networks-stage1-accept.save"));

        var drop = Assert.Single(diff.Counters, c => c.Id.Chain == "DOCKER-ISOLATION-STAGE-2");
        Assert.True(drop.Reset);
        Assert.Equal(0UL, drop.Packets);
        Assert.Contains(diff.Policies, p => p.Table == "nat" && p.Chain == "POSTROUTING");
    }

    [Fact]
    public void Compare_OnlyCountersMoved_IsNotAStructureChange()
    {
        var before = IptablesSaveReader.Read("*filter\n:X - [0:0]\n[1:84] -A X -o br-1 -j DROP\n[0:0] -A X -j RETURN\nCOMMIT\n");
        var after = IptablesSaveReader.Read("*filter\n:X - [0:0]\n[4:336] -A X -o br-1 -j DROP\n[0:0] -A X -j RETURN\nCOMMIT\n");

        var diff = CounterDelta.Compare(before, after);

        Assert.False(diff.StructureChanged);
        var c = Assert.Single(diff.Counters);
        Assert.Equal((3UL, 252UL, false), (c.DeltaPackets, c.DeltaBytes, c.Reset));
    }

    [Fact]
    public void History_PacketRate_IsPacketsOverTheWindow()
    {
        var h = new CounterHistory();
        var id = new RuleId(TableFamily.Ipv4, "filter", "X", "-A X -j DROP");
        var t0 = DateTimeOffset.Parse("2026-11-28T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        h.Record(id, t0, 10, 840);
        h.Record(id, t0.AddSeconds(1), 12, 1008);
        h.Record(id, t0.AddSeconds(2), 14, 1176);

        var rate = h.RateOf(id, t0.AddSeconds(2), TimeSpan.FromSeconds(5))!.Value;
        Assert.Equal(2.0, rate.PerSecond, 3);
        Assert.Equal((2UL, TimeSpan.FromSeconds(1)), (rate.Packets, rate.Over));
        Assert.Equal(t0.AddSeconds(2), h.LastMoved(id));
        h.Prune(t0.AddMinutes(5));
        Assert.Equal(0, h.RuleCount);
    }

    [Fact]
    public void History_ANewFlow_IsMeasuredOverTheTimeItHasExisted_NotTheIdleBefore()
    {
        // The counter read (and kept) long before the flow began: a packet a second since t0 is 1 pkt/s, not 0.1.
        var h = new CounterHistory();
        var id = new RuleId(TableFamily.Ipv4, "filter", "X", "-A X -j DROP");
        var t0 = DateTimeOffset.Parse("2026-11-28T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        h.Record(id, t0.AddSeconds(-40), 7, 0);
        h.Record(id, t0, 8, 0);
        Assert.Null(h.RateOf(id, t0.AddSeconds(0.25), TimeSpan.FromSeconds(5)));

        h.Record(id, t0.AddSeconds(1), 9, 0);
        Assert.Equal(1.0, h.RateOf(id, t0.AddSeconds(1.25), TimeSpan.FromSeconds(5))!.Value.PerSecond, 3);
        h.Record(id, t0.AddSeconds(2), 10, 0);
        h.Record(id, t0.AddSeconds(3), 11, 0);
        var r = h.RateOf(id, t0.AddSeconds(3.1), TimeSpan.FromSeconds(5))!.Value;
        Assert.Equal((1.0, 3UL, TimeSpan.FromSeconds(3)), (Math.Round(r.PerSecond, 3), r.Packets, r.Over));

        // Older than the window: only the rises within it count (10 → 11 … over the last 5 s).
        for (var s = 4; s <= 10; s++)
        {
            h.Record(id, t0.AddSeconds(s), (ulong)(8 + s), 0);
        }

        r = h.RateOf(id, t0.AddSeconds(10), TimeSpan.FromSeconds(5))!.Value;
        Assert.Equal((1.0, TimeSpan.FromSeconds(5)), (Math.Round(r.PerSecond, 3), r.Over));

        // A reset (a rule replaced, counters zeroed) starts anew.
        h.Record(id, t0.AddSeconds(11), 0, 0);
        Assert.Null(h.RateOf(id, t0.AddSeconds(11), TimeSpan.FromSeconds(5)));
    }
}
