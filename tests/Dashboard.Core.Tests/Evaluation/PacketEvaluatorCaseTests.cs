using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;

namespace Dashboard.Core.Tests.Evaluation;

/// <summary>Internal networks, icc=false (a real Docker 20.10 dump made here), and what the evaluator does not understand.</summary>
public class PacketEvaluatorCaseTests
{
    private const string Plain = "br-115163ed2459";
    private const string Internal = "br-b88e18bdcc92";
    private const string NoIcc = "br-828639285a00";

    private static readonly Ruleset ThreeNetworks = IptablesSaveReader.Read(
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "iptables", "docker-20.10-plain-internal-noicc.save")), TableFamily.Ipv4);

    private static FlowSpec Flow(string inIf, string outIf, string src, string dst) => new() { InInterface = inIf, OutInterface = outIf, Source = src, Destination = dst };

    [Theory]
    [InlineData(Plain, Internal, "172.29.11.2", "172.29.12.2", "Drop", "-A DOCKER-ISOLATION-STAGE-1 ! -s 172.29.12.0/24 -o br-b88e18bdcc92 -j DROP")]
    [InlineData(Internal, Plain, "172.29.12.2", "172.29.11.2", "Drop", "-A DOCKER-ISOLATION-STAGE-1 ! -d 172.29.12.0/24 -i br-b88e18bdcc92 -j DROP")]
    [InlineData(Internal, Internal, "172.29.12.2", "172.29.12.3", "Accept", "-A FORWARD -i br-b88e18bdcc92 -o br-b88e18bdcc92 -j ACCEPT")]
    [InlineData(NoIcc, NoIcc, "172.29.13.2", "172.29.13.3", "Drop", "-A FORWARD -i br-828639285a00 -o br-828639285a00 -j DROP")]
    [InlineData(Plain, Plain, "172.29.11.2", "172.29.11.3", "Accept", "-A FORWARD -i br-115163ed2459 -o br-115163ed2459 -j ACCEPT")]
    [InlineData(Plain, NoIcc, "172.29.11.2", "172.29.13.2", "Drop", "-A DOCKER-ISOLATION-STAGE-2 -o br-828639285a00 -j DROP")]
    [InlineData(NoIcc, Plain, "172.29.13.2", "172.29.11.2", "Drop", "-A DOCKER-ISOLATION-STAGE-2 -o br-115163ed2459 -j DROP")]
    public void InternalAndIccDisabled_DecidedByTheirOwnRules(string inIf, string outIf, string src, string dst, string verdict, string rule)
    {
        var e = PacketEvaluator.Evaluate(ThreeNetworks, Flow(inIf, outIf, src, dst));
        Assert.Equal((verdict, rule), (e.Verdict.ToString(), e.DecidingRule?.Rule));
    }

    [Fact]
    public void IntraBridgeNoIcc_TcpToo_AndTheReplyIsNeverReached()
    {
        var rt = PacketEvaluator.Explain(ThreeNetworks, Flow(NoIcc, NoIcc, "172.29.13.2", "172.29.13.3") with { Protocol = "tcp", DestinationPort = 80 });
        Assert.Equal(Verdict.Drop, rt.Request.Verdict);
        Assert.Null(rt.Reply);
        Assert.Equal("the request is dropped", rt.Outcome);
    }

    private static Ruleset WithDockerUser(params string[] rules) => IptablesSaveReader.Read(
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "iptables", "docker-20.10-plain-internal-noicc.save"))
            .Replace("-A DOCKER-USER -j RETURN", string.Join('\n', rules.Select(r => "-A DOCKER-USER " + r)) + "\n-A DOCKER-USER -j RETURN", StringComparison.Ordinal),
        TableFamily.Ipv4);

    [Fact]
    public void IpsetWithUnknownMembers_IsUndetermined_NamingTheRule()
    {
        var rs = WithDockerUser("-m set --match-set blocked src -j DROP");
        var e = PacketEvaluator.Evaluate(rs, Flow(Plain, Plain, "172.29.11.2", "172.29.11.3"));
        Assert.Equal(Verdict.Undetermined, e.Verdict);
        Assert.Equal(("DOCKER-USER", 1), (e.DecidingRule!.Chain, e.DecidingRule.Position));
        Assert.Contains("members of set blocked are not known", e.Reason, StringComparison.Ordinal);

        var known = new EvaluationContext { IpSets = new Dictionary<string, IReadOnlyList<string>> { ["blocked"] = ["172.29.11.0/24"] } };
        Assert.Equal(Verdict.Drop, PacketEvaluator.Evaluate(rs, Flow(Plain, Plain, "172.29.11.2", "172.29.11.3"), known).Verdict);
        Assert.Equal(Verdict.Accept, PacketEvaluator.Evaluate(rs, Flow(Plain, Plain, "172.29.11.9", "172.29.11.3"), new EvaluationContext { IpSets = new Dictionary<string, IReadOnlyList<string>> { ["blocked"] = ["10.9.9.9"] } }).Verdict);
    }

    /// <summary>
    /// Whatever the set holds, this packet is accepted (an ACCEPT when it matches, the plain network's own ACCEPT when
    /// not): the evaluator tries both and answers, saying so; the path shown is the first assumption's. Where the
    /// assumptions disagree (a DROP when it matches) the answer stays undetermined, naming the set.
    /// </summary>
    [Fact]
    public void UnknownSet_WhereEveryMembershipGivesOneVerdict_IsDecided_AndSaysSo()
    {
        var rs = WithDockerUser("-m set --match-set trusted src -j ACCEPT");
        var e = PacketEvaluator.Evaluate(rs, Flow(Plain, Plain, "172.29.11.2", "172.29.11.3"));
        Assert.Equal(Verdict.Accept, e.Verdict);
        Assert.Contains("2 cases, one verdict", e.Reason, StringComparison.Ordinal);
        Assert.Contains("members of set trusted are not known", e.Reason, StringComparison.Ordinal);
        var assumed = e.Path.Single(s => s.Chain == "DOCKER-USER" && s.Position == 1);
        Assert.True(assumed.Matched);
        Assert.Contains("assumed to match", assumed.Why, StringComparison.Ordinal);

        // To the internal network the set decides: ACCEPT when the source is in it, STAGE-1's DROP when not.
        var across = PacketEvaluator.Evaluate(rs, Flow(Plain, Internal, "172.29.11.2", "172.29.12.2"));
        Assert.Equal(Verdict.Undetermined, across.Verdict);
        Assert.Contains("members of set trusted are not known", across.Reason, StringComparison.Ordinal);
    }

    /// <summary>Six undecidable matches fork into 64 walks at most; a seventh leaves the answer undetermined rather than walking 128.</summary>
    [Fact]
    public void UnknownSets_ForkAtMostSixTimes()
    {
        var six = WithDockerUser([.. Enumerable.Range(1, 6).Select(i => $"-m set --match-set s{i} src -j DOCKER")]);
        Assert.Equal(Verdict.Accept, PacketEvaluator.Evaluate(six, Flow(Plain, Plain, "172.29.11.2", "172.29.11.3")).Verdict);
        var seven = WithDockerUser([.. Enumerable.Range(1, 7).Select(i => $"-m set --match-set s{i} src -j DOCKER")]);
        Assert.Equal(Verdict.Undetermined, PacketEvaluator.Evaluate(seven, Flow(Plain, Plain, "172.29.11.2", "172.29.11.3")).Verdict);
    }

    [Fact]
    public void UnknownSet_WithAFalseStateMatch_DoesNotMatchANewPacket()
    {
        var rs = WithDockerUser("-m set --match-set blocked src -m conntrack --ctstate RELATED,ESTABLISHED -j DROP");
        var e = PacketEvaluator.Evaluate(rs, Flow(Plain, Plain, "172.29.11.2", "172.29.11.3"));
        Assert.Equal(Verdict.Accept, e.Verdict);
        var step = e.Path.Single(s => s.Chain == "DOCKER-USER" && s.Position == 1);
        Assert.Equal((false, "conntrack state is NEW"), (step.Matched, step.Why));
    }

    [Fact]
    public void UnknownMatch_OnALogRule_DoesNotDecide_OnADropRule_Does()
    {
        var logged = WithDockerUser("-m limit --limit 5/sec -j LOG --log-prefix \"lab \"");
        Assert.Equal(Verdict.Accept, PacketEvaluator.Evaluate(logged, Flow(Plain, Plain, "172.29.11.2", "172.29.11.3")).Verdict);

        var physdev = WithDockerUser("-m physdev --physdev-is-bridged -j DROP");
        var e = PacketEvaluator.Evaluate(physdev, Flow(Plain, Plain, "172.29.11.2", "172.29.11.3"));
        Assert.Equal(Verdict.Undetermined, e.Verdict);
        Assert.Contains("physdev", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownTarget_IsUndetermined()
    {
        var rs = WithDockerUser("-p icmp -j NFQUEUE --queue-num 1");
        var e = PacketEvaluator.Evaluate(rs, Flow(Plain, Plain, "172.29.11.2", "172.29.11.3"));
        Assert.Equal(Verdict.Undetermined, e.Verdict);
        Assert.Contains("NFQUEUE", e.Reason, StringComparison.Ordinal);
        Assert.Equal(Verdict.Accept, PacketEvaluator.Evaluate(rs, Flow(Plain, Plain, "172.29.11.2", "172.29.11.3") with { Protocol = "tcp", DestinationPort = 80 }).Verdict);
    }

    [Fact]
    public void PortsAndIcmpTypes_AndGotoReturnsToTheCaller()
    {
        var rs = IptablesSaveReader.Read("""
            *filter
            :FORWARD DROP [0:0]
            :A - [0:0]
            :B - [0:0]
            -A FORWARD -g A
            -A FORWARD -j ACCEPT
            -A A -p tcp -m multiport --dports 80,8000:8100 -j ACCEPT
            -A A -p icmp -m icmp --icmp-type echo-request -j B
            -A A -p udp -j RETURN
            -A A -j DROP
            -A B -j RETURN
            COMMIT
            """, TableFamily.Ipv4);
        FlowSpec F(string proto, int? port = null) => new() { InInterface = "a", OutInterface = "b", Source = "172.29.1.2", Destination = "172.29.2.2", Protocol = proto, DestinationPort = port };
        Assert.Equal(new RuleRef("filter", "A", 1, "-A A -p tcp -m multiport --dports 80,8000:8100 -j ACCEPT"), PacketEvaluator.Evaluate(rs, F("tcp", 8050)).DecidingRule);
        Assert.Equal(("A", 4), (PacketEvaluator.Evaluate(rs, F("tcp", 22)).DecidingRule!.Chain, PacketEvaluator.Evaluate(rs, F("tcp", 22)).DecidingRule!.Position));

        // The echo request jumps to B, comes back into A, and A's last rule drops it.
        var echo = PacketEvaluator.Evaluate(rs, F("icmp"));
        Assert.Equal(("A", 4), (echo.DecidingRule!.Chain, echo.DecidingRule.Position));

        // UDP returns from A; A was entered by goto, so the return skips FORWARD's ACCEPT and meets its policy.
        var udp = PacketEvaluator.Evaluate(rs, F("udp", 53));
        Assert.Equal((Verdict.Drop, "policy DROP"), (udp.Verdict, udp.DecidingRule!.Rule));
    }

    [Fact]
    public void Validation_RefusesHostileFlows()
    {
        Assert.NotEmpty(new FlowSpec { Source = "1.2.3.4; reboot", Destination = "172.18.0.2" }.Validate());
        Assert.NotEmpty(new FlowSpec { Source = "172.18.0.2", Destination = "172.18.0.3", InInterface = "eth0 -j ACCEPT" }.Validate());
        Assert.NotEmpty(new FlowSpec { Source = "172.18.0.2", Destination = "172.18.0.3", Protocol = "icmp", DestinationPort = 80 }.Validate());
        Assert.Empty(new FlowSpec { Source = "172.18.0.2", Destination = "172.18.0.3", Protocol = "tcp", DestinationPort = 80, InInterface = "br-1", OutInterface = "veth1@if2" }.Validate());
        Assert.Throws<ArgumentException>(() => PacketEvaluator.Evaluate(ThreeNetworks, new FlowSpec { Source = "x", Destination = "y" }));
    }
}
