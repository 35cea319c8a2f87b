using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Evaluation;

/// <summary>Verdicts for the shared fixtures (Docker 17, 20.10, 28.5) and the Docker 29 nftables dump.</summary>
public class PacketEvaluatorFixtureTests
{
    // Docker 17 seed: net1 = br-340fda49f12b 172.18.0.0/16 (c1 .2), net2 = br-576fd0522c4e 172.19.0.0/16 (c2 .2).
    private static readonly FlowSpec Seed17 = new() { InInterface = "br-576fd0522c4e", OutInterface = "br-340fda49f12b", Source = "172.19.0.2", Destination = "172.18.0.2" };

    // Docker 20.10: net1 = br-5bb1f7c6955f 172.18.0.0/16 (c1 .2), net2 = br-99a370db15a4 172.19.0.0/16 (c2 .2).
    private static readonly FlowSpec Net2ToNet1 = new() { InInterface = "br-99a370db15a4", OutInterface = "br-5bb1f7c6955f", Source = "172.19.0.2", Destination = "172.18.0.2" };

    internal static Ruleset Dump(string name) => IptablesSaveReader.Read(TestPaths.ReadShared(Path.Combine("iptables", name)), TableFamily.Ipv4);

    [Fact]
    public void Docker17_Isolated_DroppedByTheIsolationPair()
    {
        var e = PacketEvaluator.Evaluate(Dump("docker-17-seed-isolated.save"), Seed17);
        Assert.Equal(Verdict.Drop, e.Verdict);
        Assert.Equal(new RuleRef("filter", "DOCKER-ISOLATION", 2, "-A DOCKER-ISOLATION -i br-576fd0522c4e -o br-340fda49f12b -j DROP"), e.DecidingRule);
        var first = e.Path.First(s => s.Chain == "DOCKER-ISOLATION");
        Assert.Equal((false, "in interface is br-576fd0522c4e"), (first.Matched, first.Why));
    }

    [Fact]
    public void Docker17_SeedAccept_AcceptedBySourceRule_RequestAndReply()
    {
        var context = new EvaluationContext { InterfaceAddresses = new Dictionary<string, string> { ["br-340fda49f12b"] = "172.18.0.1" } };
        var rt = PacketEvaluator.Explain(Dump("docker-17-seed-accept.save"), Seed17, context);
        Assert.Equal(Verdict.Accept, rt.Request.Verdict);
        Assert.Equal(new RuleRef("filter", "DOCKER-ISOLATION", 2, "-A DOCKER-ISOLATION -s 172.19.0.0/16 -j ACCEPT"), rt.Request.DecidingRule);
        Assert.Equal("172.18.0.1", rt.Request.NatSource);
        Assert.Equal(Verdict.Accept, rt.Reply!.Verdict);
        Assert.Equal("-A DOCKER-ISOLATION -s 172.18.0.0/16 -j ACCEPT", rt.Reply.DecidingRule!.Rule);
        Assert.True(rt.Succeeds);
        Assert.Equal("delivered and answered", rt.Outcome);
    }

    [Fact]
    public void Docker2010_Isolated_DroppedInStage2()
    {
        var e = PacketEvaluator.Evaluate(Dump("docker-20.10-two-networks-isolated.save"), Net2ToNet1);
        Assert.Equal(Verdict.Drop, e.Verdict);
        Assert.Equal(("DOCKER-ISOLATION-STAGE-2", "-A DOCKER-ISOLATION-STAGE-2 -o br-5bb1f7c6955f -j DROP"), (e.DecidingRule!.Chain, e.DecidingRule.Rule));
        Assert.Contains(e.Path, s => s is { Chain: "DOCKER-ISOLATION-STAGE-1", Matched: true, Action: "JUMP DOCKER-ISOLATION-STAGE-2" });
    }

    [Fact]
    public void Docker2010_DockerUserAccept_AcceptedInDockerUser_BothWays_WithMasquerade()
    {
        var context = new EvaluationContext { InterfaceAddresses = new Dictionary<string, string> { ["br-5bb1f7c6955f"] = "172.18.0.1" } };
        var rt = PacketEvaluator.Explain(Dump("docker-20.10-two-networks-docker-user-accept.save"), Net2ToNet1, context);
        Assert.Equal(new RuleRef("filter", "DOCKER-USER", 2, "-A DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -m comment --comment \"lab change 1\" -j ACCEPT"), rt.Request.DecidingRule);
        Assert.Equal("172.18.0.1", rt.Request.NatSource);
        Assert.Equal(("DOCKER-USER", 1), (rt.Reply!.DecidingRule!.Chain, rt.Reply.DecidingRule.Position));
        Assert.True(rt.Succeeds);
    }

    [Fact]
    public void Docker2010_Stage1Accept_AcceptedAtTheHeadOfStage1()
    {
        var rt = PacketEvaluator.Explain(Dump("docker-20.10-two-networks-stage1-accept.save"), Net2ToNet1);
        Assert.Equal("-A DOCKER-ISOLATION-STAGE-1 -s 172.19.0.0/16 -j ACCEPT", rt.Request.DecidingRule!.Rule);
        Assert.Equal("-A DOCKER-ISOLATION-STAGE-1 -s 172.18.0.0/16 -j ACCEPT", rt.Reply!.DecidingRule!.Rule);
        Assert.True(rt.Succeeds);
    }

    [Fact]
    public void OneDirectionAccept_DeliversTheRequest_ReplyDiesInIsolation()
    {
        var text = TestPaths.ReadShared(Path.Combine("iptables", "docker-20.10-two-networks-isolated.save"))
            .Replace("-A DOCKER-USER -j RETURN", "-A DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -j ACCEPT\n-A DOCKER-USER -j RETURN", StringComparison.Ordinal);
        var rt = PacketEvaluator.Explain(IptablesSaveReader.Read(text, TableFamily.Ipv4), Net2ToNet1);
        Assert.Equal(Verdict.Accept, rt.Request.Verdict);
        Assert.Equal(Verdict.Drop, rt.Reply!.Verdict);
        Assert.Equal("-A DOCKER-ISOLATION-STAGE-2 -o br-99a370db15a4 -j DROP", rt.Reply.DecidingRule!.Rule);
        Assert.Equal("the request is delivered but the reply is dropped", rt.Outcome);
        Assert.All(rt.Reply.Path.Where(s => s.Table == "nat"), s => Assert.Fail("an ESTABLISHED reply does not traverse the nat chains: " + s));
    }

    [Fact]
    public void Docker285_RawPreroutingDropsDirectAccess_EvenWithDockerUserAccept()
    {
        var text = TestPaths.ReadShared(Path.Combine("iptables", "docker-28.5-bridge1-published-port.save"))
            .Replace(":DOCKER-USER - [0:0]", ":DOCKER-USER - [0:0]\n[0:0] -A DOCKER-USER -j ACCEPT", StringComparison.Ordinal);
        var flow = new FlowSpec { InInterface = "docker0", OutInterface = "bridge1", Source = "172.17.0.2", Destination = "192.0.2.2" };
        var e = PacketEvaluator.Evaluate(IptablesSaveReader.Read(text, TableFamily.Ipv4), flow);
        Assert.Equal(Verdict.Drop, e.Verdict);
        Assert.Equal(new RuleRef("raw", "PREROUTING", 1, "-A PREROUTING -d 192.0.2.2/32 ! -i bridge1 -j DROP"), e.DecidingRule);
        Assert.DoesNotContain(e.Path, s => s.Table == "filter");
    }

    [Fact]
    public void Docker285_PublishedPort_DnatToTheContainer_AcceptedByTheDockerChain()
    {
        var flow = new FlowSpec { InInterface = "eth0", OutInterface = "bridge1", Source = "172.31.9.9", Destination = "172.31.0.10", Protocol = "tcp", DestinationPort = 8080 };
        var context = new EvaluationContext { LocalAddresses = new HashSet<string> { "172.31.0.10", "192.0.2.1", "172.17.0.1" } };
        var e = PacketEvaluator.Evaluate(Dump("docker-28.5-bridge1-published-port.save"), flow, context);
        Assert.Equal("192.0.2.2", e.NatDestination);
        Assert.Equal(Verdict.Accept, e.Verdict);
        Assert.Equal("-A DOCKER -d 192.0.2.2/32 ! -i bridge1 -o bridge1 -p tcp -m tcp --dport 80 -j ACCEPT", e.DecidingRule!.Rule);
    }

    [Fact]
    public void Docker29Nftables_DirectAccessDropped_IccAccepted_PublishedPortAccepted()
    {
        var rs = NftJsonReader.Read(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "nft", "docker-29-bridge1-published-port.json")));

        var direct = PacketEvaluator.Evaluate(rs, new FlowSpec { InInterface = "docker0", OutInterface = "bridge1", Source = "172.17.0.2", Destination = "192.0.2.2" });
        Assert.Equal(Verdict.Drop, direct.Verdict);
        Assert.Equal(("raw-PREROUTING", 1), (direct.DecidingRule!.Chain, direct.DecidingRule.Position));

        var icc = PacketEvaluator.Explain(rs, new FlowSpec { InInterface = "bridge1", OutInterface = "bridge1", Source = "192.0.2.3", Destination = "192.0.2.2" });
        Assert.Equal(Verdict.Accept, icc.Request.Verdict);
        Assert.Equal("filter-forward-in__bridge1", icc.Request.DecidingRule!.Chain);
        Assert.Contains("ICC", icc.Request.DecidingRule.Rule, StringComparison.Ordinal);
        Assert.True(icc.Succeeds);

        var unpublished = PacketEvaluator.Evaluate(rs, new FlowSpec { InInterface = "eth0", OutInterface = "bridge1", Source = "172.31.9.9", Destination = "192.0.2.9", Protocol = "tcp", DestinationPort = 22 });
        Assert.Equal(Verdict.Drop, unpublished.Verdict);
        Assert.Contains("UNPUBLISHED PORT DROP", unpublished.DecidingRule!.Rule, StringComparison.Ordinal);
    }
}
