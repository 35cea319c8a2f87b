using Dashboard.App.Firewall;
using Dashboard.Core.Firewall;

namespace Dashboard.Web.Tests.Firewall;

/// <summary>How the firewall history decides a change's cause: the dashboard's tag, Docker's shape with the engine's activity in the window, else outside.</summary>
public class HostHistoryStateTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(3);

    private const string Base = "*filter\n:FORWARD DROP [0:0]\n:DOCKER-USER - [0:0]\n:DOCKER-ISOLATION-STAGE-2 - [0:0]\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\n";

    private static bool OwnTag(string owner) => owner.StartsWith("change-i1-", StringComparison.Ordinal);

    private static EngineActivity Activity(double seconds, params string[] tokens) => new(T0.AddSeconds(seconds), tokens.ToHashSet());

    private static RulesetShape Shape(params string[] extra)
    {
        var rs = IptablesSaveReader.Read(Base + string.Concat(extra.Select(e => e + "\n")) + "COMMIT\n");
        RuleClassifier.Classify(rs, null, null);
        return RulesetShape.Of(rs);
    }

    private static HostHistoryState Started()
    {
        var s = new HostHistoryState(Window, OwnTag);
        Assert.Empty(s.Observe(Shape(), T0));
        return s;
    }

    [Fact]
    public void Observe_UserRule_IsOutsideAtOnce()
    {
        var s = Started();

        var d = Assert.Single(s.Observe(Shape("-A DOCKER-USER -s 198.18.0.1/32 -m comment --comment by-hand -j RETURN"), T0.AddSeconds(1)));

        Assert.Equal((ChangeCause.Outside, RuleChangeKind.Added, 2), (d.Cause, d.Change.Kind, d.Change.PositionAfter!.Value));
        Assert.Equal(0, s.PendingCount);
    }

    [Fact]
    public void Observe_TaggedRule_IsTheDashboardsNamingItsOwner()
    {
        var s = Started();

        var d = Assert.Single(s.Observe(Shape("-A DOCKER-USER -s 172.18.0.2/32 -m comment --comment netlab:change-i1-42 -j ACCEPT"), T0.AddSeconds(1)));

        Assert.Equal((ChangeCause.Dashboard, "change-i1-42"), (d.Cause, d.Detail));
    }

    [Fact]
    public void Observe_DockerRuleAfterEngineActivity_IsDockers()
    {
        var s = Started();
        s.EngineActive(Activity(1, "br-0123456789ab", "172.18.0.0/16"));

        var d = Assert.Single(s.Observe(Shape("-A DOCKER-ISOLATION-STAGE-2 -o br-0123456789ab -j DROP"), T0.AddSeconds(2)));

        Assert.Equal(ChangeCause.Docker, d.Cause);
    }

    [Fact]
    public void Observe_DockerRuleBeforeTheTopologyCaughtUp_WaitsThenIsDockers()
    {
        var s = Started();

        Assert.Empty(s.Observe(Shape("-A DOCKER-ISOLATION-STAGE-2 -o br-0123456789ab -j DROP"), T0.AddSeconds(1)));
        Assert.Equal(1, s.PendingCount);
        s.EngineActive(Activity(2.5, "br-0123456789ab"));

        var d = Assert.Single(s.Due(T0.AddSeconds(2.6)));
        Assert.Equal(ChangeCause.Docker, d.Cause);
        Assert.Equal(T0.AddSeconds(1), d.At);
    }

    [Fact]
    public void Due_DockerShapedRuleWithoutEngineActivity_IsOutsideWhenTheWindowCloses()
    {
        var s = Started();
        Assert.Empty(s.Observe(Shape("-A DOCKER-ISOLATION-STAGE-2 -o br-0123456789ab -j DROP"), T0.AddSeconds(1)));

        Assert.Empty(s.Due(T0.AddSeconds(3.9)));
        var d = Assert.Single(s.Due(T0.AddSeconds(4)));

        Assert.Equal(ChangeCause.Outside, d.Cause);
        Assert.Contains("did not change", d.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void EngineActivityLongBefore_DoesNotMakeADockerShapedRuleDockers()
    {
        var s = Started();
        s.EngineActive(Activity(0, "br-0123456789ab"));

        Assert.Empty(s.Observe(Shape("-A DOCKER-ISOLATION-STAGE-2 -o br-0123456789ab -j DROP"), T0.AddSeconds(10)));
        Assert.Equal(ChangeCause.Outside, Assert.Single(s.Due(T0.AddSeconds(13))).Cause);
    }

    [Fact]
    public void Observe_RemovedDockerRuleWithActivity_IsDockers()
    {
        var s = new HostHistoryState(Window, OwnTag);
        s.Observe(Shape("-A DOCKER-ISOLATION-STAGE-2 -o br-0123456789ab -j DROP"), T0);
        s.EngineActive(Activity(1, "br-0123456789ab"));

        var d = Assert.Single(s.Observe(Shape(), T0.AddSeconds(1.5)));

        Assert.Equal((ChangeCause.Docker, RuleChangeKind.Removed), (d.Cause, d.Change.Kind));
    }

    [Fact]
    public void Observe_AnotherInstancesTag_IsOutside()
    {
        var s = Started();

        var d = Assert.Single(s.Observe(Shape("-A DOCKER-USER -s 172.18.0.2/32 -m comment --comment netlab:change-other-42 -j ACCEPT"), T0.AddSeconds(1)));

        Assert.Equal(ChangeCause.Outside, d.Cause);
        Assert.Contains("not this dashboard's", d.Detail, StringComparison.Ordinal);
    }

    /// <summary>A container starting does not cover a Docker-shaped rule about another bridge removed by hand at the same time.</summary>
    [Fact]
    public void EngineActivityElsewhere_DoesNotCoverADockerRuleRemovedByHand()
    {
        var s = new HostHistoryState(Window, OwnTag);
        s.Observe(Shape("-A DOCKER-ISOLATION-STAGE-2 -o br-0123456789ab -j DROP"), T0);
        s.EngineActive(Activity(1, "172.19.0.5", "c:container-id"));

        Assert.Empty(s.Observe(Shape(), T0.AddSeconds(1.2)));
        var d = Assert.Single(s.Due(T0.AddSeconds(4.2)));

        Assert.Equal((ChangeCause.Outside, RuleChangeKind.Removed), (d.Cause, d.Change.Kind));
    }

    [Fact]
    public void Observe_GenericDockerRuleWithAnyActivity_IsDockers()
    {
        var s = new HostHistoryState(Window, OwnTag);
        s.Observe(RulesetShape.Empty, T0);
        s.EngineActive(Activity(1, "br-0123456789ab"));

        var changes = s.Observe(Shape(), T0.AddSeconds(1.5));

        Assert.Contains(changes, d => d.Change.Text == "-A FORWARD -j DOCKER-USER" && d.Cause == ChangeCause.Docker);
    }

    [Fact]
    public void Observe_AfterAnUnseenSpan_EveryChangeIsUnobserved()
    {
        var s = Started();

        var d = Assert.Single(s.Observe(Shape("-A DOCKER-USER -s 198.18.0.1/32 -j RETURN"), T0.AddSeconds(1), "changed while the host's agent was disconnected"));

        Assert.Equal((ChangeCause.Unobserved, "changed while the host's agent was disconnected"), (d.Cause, d.Detail));
    }

    [Theory]
    [InlineData("-A DOCKER -d 172.18.0.2/32 ! -i br-0123456789ab -o br-0123456789ab -p tcp -j ACCEPT", "172.18.0.2", true)]
    [InlineData("-A DOCKER -d 172.18.0.25/32 -j ACCEPT", "172.18.0.2", false)]
    [InlineData("-A POSTROUTING -s 172.18.0.0/16 ! -o br-0123456789ab -j MASQUERADE", "172.18.0.0/16", true)]
    [InlineData("-A DOCKER -i br-0123456789abc -j RETURN", "br-0123456789ab", false)]
    [InlineData("-A DOCKER -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.18.0.2:80", "172.18.0.2", true)]
    public void Names_WholeWordsOnly(string text, string token, bool expected) =>
        Assert.Equal(expected, ChangeAttribution.Names(new RuleChange(RuleChangeKind.Added, TableFamily.Ipv4, "filter", "DOCKER", text, text, RuleOwner.Docker), token));
}
