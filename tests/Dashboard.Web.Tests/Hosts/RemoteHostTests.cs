using Dashboard.App.Hosts;
using Dashboard.Core.Firewall;
using Dashboard.Host.Agents;
using Dashboard.Host.Collector;

namespace Dashboard.Web.Tests.Hosts;

/// <summary>The dashboard's side of the agent protocol: sequence, gaps, snapshots, and what it refuses to keep.</summary>
public class RemoteHostTests
{
    private static readonly string Dump = File.ReadAllText(TestPaths.CoreFixture("iptables/docker-28.5.2-two-networks-published-port.save"));

    private static RemoteHost Connected()
    {
        var h = new RemoteHost("h1");
        h.Attach("c1", new AgentHello(AgentProtocol.Version, "1.0.0", null), () => { });
        return h;
    }

    private static AgentSnapshot Snapshot(long seq, string text) =>
        new(seq, CollectorStatus.Starting("claimed-elsewhere", 4), null, new AgentFirewall(RulesetFormat.IptablesSave, text, null, DateTimeOffset.UtcNow));

    /// <summary>A counters message as the agent makes it: rules by their index in the parsed dump.</summary>
    private static AgentCounters Counters(long seq, params RuleCounterChange[] moved) =>
        AgentCounters.Of(seq, DateTimeOffset.UtcNow, AgentCounters.IndexOf(IptablesSaveReader.Read(Dump)), moved, [])!;

    private static RuleCounterChange Moved(FirewallRule r, ulong by) => new(RuleId.Of(r), r.Position, r.Packets + by, r.Bytes + (by * 84), by, by * 84, false);

    [Fact]
    public void Deltas_InSequenceApply_AGapAsksForOneSnapshotAndNothingIsAppliedUntilItComes()
    {
        var h = Connected();
        var drop = IptablesSaveReader.Read(Dump).Rules.First(r => r.Table == "raw" && r.Packets > 0);

        // Before any snapshot: not applied, a snapshot asked for once.
        Assert.False(string.IsNullOrEmpty(h.Apply("c1", Counters(5, Moved(drop, 1)))));
        Assert.Equal("", h.Apply("c1", Counters(6, Moved(drop, 2))));

        h.Apply("c1", Snapshot(10, Dump));
        Assert.Equal("h1", h.Feed.Status.Host);
        Assert.Equal(DockerLayoutKind.Docker28, h.Feed.Status.Layout?.Kind);
        var rule = h.Feed.Ruleset!.Rules.Single(r => RuleId.Of(r) == RuleId.Of(drop));
        Assert.Equal(drop.Packets, h.Feed.CountersOf(rule).Packets);

        Assert.Null(h.Apply("c1", Counters(11, Moved(drop, 3))));
        Assert.Equal(drop.Packets + 3, h.Feed.CountersOf(rule).Packets);

        // 12 lost: 13 is not applied, counted as a gap, and asks for a snapshot once.
        var why = h.Apply("c1", Counters(13, Moved(drop, 9)));
        Assert.Contains("13 arrived where 12 was due", why, StringComparison.Ordinal);
        Assert.Equal("", h.Apply("c1", Counters(14, Moved(drop, 10))));
        Assert.Equal(drop.Packets + 3, h.Feed.CountersOf(rule).Packets);
        Assert.Equal(1, h.Gaps);

        h.Apply("c1", Snapshot(20, Dump));
        Assert.Null(h.Apply("c1", Counters(21, Moved(drop, 4))));
        Assert.Equal(drop.Packets + 4, h.Feed.CountersOf(rule).Packets);
    }

    [Fact]
    public void CountersOfRulesTheHostDoesNotHave_AreDroppedAndCounted_AndACountThatFallsIsAReset()
    {
        var h = Connected();
        h.Apply("c1", Snapshot(0, Dump));
        var rules = h.Feed.Ruleset!.RuleCount;
        Assert.Null(h.Apply("c1", new AgentCounters(1, DateTimeOffset.UtcNow, [.. Enumerable.Range(0, 1000).SelectMany(i => new[] { (ulong)(rules + i), 5UL, 5UL })], [])));
        Assert.Equal(1000, h.UnknownCounters);

        // A count that went down is a reset, never a negative delta.
        var first = h.Feed.Ruleset.Rules.First();
        Assert.Null(h.Apply("c1", new AgentCounters(2, DateTimeOffset.UtcNow, [0UL, first.Packets + 10, first.Bytes + 840], [])));
        Assert.Null(h.Apply("c1", new AgentCounters(3, DateTimeOffset.UtcNow, [0UL, 1UL, 84UL], [])));
        Assert.Equal((1UL, 84UL), h.Feed.CountersOf(first));
    }

    [Fact]
    public void RulesThatDoNotParse_KeepTheLastGoodRulesetAndSayWhy()
    {
        var h = Connected();
        h.Apply("c1", Snapshot(0, Dump));
        var good = h.Feed.Ruleset;
        Assert.Null(h.Apply("c1", new AgentFirewallChange(1, new AgentFirewall(RulesetFormat.IptablesSave, "*filter\n-A FORWARD -j\x01\nCOMMIT\n", null, DateTimeOffset.UtcNow))));
        Assert.Same(good, h.Feed.Ruleset);
        Assert.False(h.Feed.Status.FirewallAvailable);
        Assert.Contains("cannot read", h.LastProblem, StringComparison.Ordinal);
        Assert.Null(h.Apply("c1", new AgentFirewallChange(2, new AgentFirewall(RulesetFormat.NftJson, "{\"nftables\": 5}", null, DateTimeOffset.UtcNow))));
        Assert.Same(good, h.Feed.Ruleset);
    }

    [Fact]
    public void ANewerConnection_ReplacesTheOlder_WhichIsEndedAndMayNotDetachIt()
    {
        var h = new RemoteHost("h1");
        var ended = 0;
        h.Attach("old", new AgentHello(AgentProtocol.Version, "1", null), () => ended++);
        h.Attach("new", new AgentHello(AgentProtocol.Version, "1", null), () => { });
        Assert.Equal(1, ended);
        Assert.False(h.IsCurrent("old"));
        Assert.False(h.Detach("old"));
        Assert.Equal(AgentState.Connected, h.State);
        Assert.True(h.Detach("new"));
        Assert.Equal(AgentState.Disconnected, h.State);
        Assert.False(h.Feed.Status.EngineAvailable);
    }
}

/// <summary>What the dashboard refuses from an agent before storing anything, naming the member.</summary>
public class AgentMessageCheckTests
{
    private static Dashboard.Core.Topology.HostTopology Valid() => new(
        new Dashboard.Core.Topology.EngineInfo("28.5.2", "1.51", null, null, null, null, Dashboard.Core.Topology.FirewallBackend.IptablesNft, "test", null, null),
        [new Dashboard.Core.Topology.DockerNetwork("n1", "net1", "bridge", "local", "br-1", [new Dashboard.Core.Topology.NetworkSubnet("172.28.1.0/24", "172.28.1.1")], false, true, false, null,
            new Dictionary<string, string>(), new Dictionary<string, string>())],
        [new Dashboard.Core.Topology.DockerContainer("c1", "c1", "busybox", "running", null, null, null,
            [new Dashboard.Core.Topology.ContainerEndpoint("n1", "net1", null, "172.28.1.2", 24, null, null, null, null)], new Dictionary<string, string>())],
        [], [], DateTimeOffset.UtcNow, []);

    [Fact]
    public void AValidTopology_Passes_AndEachHostileOneIsNamed()
    {
        Assert.Null(AgentMessageCheck.Problem(Valid()));
        var v = Valid();
        Assert.Contains("Engine", AgentMessageCheck.Problem(v with { Engine = null! }), StringComparison.Ordinal);
        Assert.Contains("Containers", AgentMessageCheck.Problem(v with { Containers = null! }), StringComparison.Ordinal);
        Assert.Contains("given twice", AgentMessageCheck.Problem(v with { Networks = [v.Networks[0], v.Networks[0]] }), StringComparison.Ordinal);
        Assert.Contains("Networks[0].Subnets", AgentMessageCheck.Problem(v with { Networks = [v.Networks[0] with { Subnets = [new("not a subnet", null)] }] }), StringComparison.Ordinal);
        Assert.Contains("Endpoints[0]", AgentMessageCheck.Problem(v with { Containers = [v.Containers[0] with { Endpoints = [v.Containers[0].Endpoints[0] with { Ipv4Address = "999.1.1.1" }] }] }), StringComparison.Ordinal);
        Assert.Contains("at most", AgentMessageCheck.Problem(v with { Containers = [.. Enumerable.Range(0, AgentMessageCheck.MaxContainers + 1).Select(i => v.Containers[0] with { Name = "c" + i })] }), StringComparison.Ordinal);
        var bridge = new Dashboard.Core.Topology.BridgeInfo("br-1", 5, null, "UP", 1500, "net1", []) { Addresses = ["172.28.1.1/24", "fe80::1/64"] };
        Assert.Null(AgentMessageCheck.Problem(v with { Bridges = [bridge] }));
        Assert.Contains("Bridges[0].Addresses", AgentMessageCheck.Problem(v with { Bridges = [bridge with { Addresses = ["172.28.1.1"] }] }), StringComparison.Ordinal);
        Assert.Contains("Bridges[0].Addresses", AgentMessageCheck.Problem(v with { Bridges = [bridge with { Addresses = ["172.28.1.1/33"] }] }), StringComparison.Ordinal);
        Assert.Contains("Bridges[0].Addresses", AgentMessageCheck.Problem(v with { Bridges = [bridge with { Addresses = null! }] }), StringComparison.Ordinal);
        Assert.Contains("Bridges[0].Addresses", AgentMessageCheck.Problem(v with { Bridges = [bridge with { Addresses = [.. Enumerable.Repeat("172.28.1.1/24", 65)] }] }), StringComparison.Ordinal);
        var link = new Dashboard.Core.Topology.IpLink(5, "br-1", "bridge", null, null, null, null, null, "UP", 1500, [], null) { Addresses = ["x/24"] };
        Assert.Contains("Topology.Links", AgentMessageCheck.Problem(v with { Links = [link] }), StringComparison.Ordinal);
        Assert.Contains("Status is missing", AgentMessageCheck.Problem(new AgentSnapshot(0, null!, null, null)), StringComparison.Ordinal);
        Assert.Contains("Moved and Policies", AgentMessageCheck.Problem(new AgentCounters(0, DateTimeOffset.UtcNow, null!, [])), StringComparison.Ordinal);
        Assert.Contains("triples", AgentMessageCheck.Problem(new AgentCounters(0, DateTimeOffset.UtcNow, [1UL, 2UL], [])), StringComparison.Ordinal);
        Assert.Contains("Text", AgentMessageCheck.Problem(new AgentFirewallChange(0, new AgentFirewall(RulesetFormat.IptablesSave, null!, null, DateTimeOffset.UtcNow))), StringComparison.Ordinal);
    }

    [Fact]
    public void AReplacedConnection_IsNotApplied_AndAFloodIsRefusedByTheBucket()
    {
        var h = new RemoteHost("h1");
        h.Attach("old", new AgentHello(AgentProtocol.Version, "1", null), () => { });
        h.Apply("old", new AgentSnapshot(0, CollectorStatus.Starting("x", 4), Valid(), null));
        h.Attach("new", new AgentHello(AgentProtocol.Version, "1", null), () => { });
        var before = h.Messages;
        Assert.Equal("", h.Apply("old", new AgentTopology(1, Valid() with { Warnings = ["from the old connection"] })));
        Assert.Equal(before, h.Messages);
        Assert.Empty(h.Feed.Topology!.Warnings);

        var admitted = Enumerable.Range(0, 1000).Count(_ => h.Admit(1));
        Assert.InRange(admitted, 400, 420);
        Assert.False(h.Admit(20));
    }
}
