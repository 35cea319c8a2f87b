using Dashboard.Core.Firewall;

namespace Dashboard.Core.Tests.Firewall;

/// <summary><c>xtables-monitor --trace</c> output recorded on this host (iptables 1.8.9 nf_tables, Docker 20.10), read back.</summary>
public class XtablesTraceParserTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2026-11-28T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static XtablesTraceParser Read(string fixture, Func<string, string, string, int?>? positionOf = null, Func<string, string, bool>? accept = null)
    {
        var parser = new XtablesTraceParser(accept: accept);
        foreach (var line in File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "trace", fixture)))
        {
            parser.Feed(line, Now, positionOf);
        }

        return parser;
    }

    [Fact]
    public void IsolationDrop_OnePacketAcrossTraceIds_DecidedByStage2Drop()
    {
        var parser = Read("xtables-monitor-isolation-drop.txt", (t, c, text) => (t, c) == ("filter", "DOCKER-ISOLATION-STAGE-2") && text.EndsWith("-j DROP", StringComparison.Ordinal) ? 2 : null);

        var p = Assert.Single(parser.Packets);
        Assert.Equal(("172.29.2.2", "172.29.1.2", 62467, 84), (p.Source, p.Destination, p.IpId, p.Length));
        Assert.Equal(("br-0e28fedab59f", "br-e9c1d93124fc"), (p.InInterface, p.OutInterface));
        Assert.Equal(
            [
                "raw PREROUTING (rule not in the last read) CONTINUE",
                "raw PREROUTING policy ACCEPT",
                "nat PREROUTING policy ACCEPT",
                "filter FORWARD (rule not in the last read) JUMP DOCKER-USER",
                "filter DOCKER-USER (rule not in the last read) RETURN",
                "filter FORWARD (rule not in the last read) JUMP DOCKER-ISOLATION-STAGE-1",
                "filter DOCKER-ISOLATION-STAGE-1 (rule not in the last read) JUMP DOCKER-ISOLATION-STAGE-2",
                "filter DOCKER-ISOLATION-STAGE-2 #2 DROP",
            ],
            p.Steps.Select(s => s.Label));
        Assert.Equal("-A DOCKER-ISOLATION-STAGE-2 -o br-e9c1d93124fc -j DROP", p.Decision!.RuleText);
        Assert.Equal(0, parser.UnparsedLines);
    }

    [Fact]
    public void DockerUserAccept_RequestAndMasqueradedReply_EachDecidedByItsAcceptRule()
    {
        var parser = Read("xtables-monitor-docker-user-accept.txt");

        Assert.Equal(2, parser.Packets.Count);
        var request = parser.Packets.Single(p => p.Source == "172.29.2.2");
        Assert.Equal(("filter", "DOCKER-USER", "ACCEPT"), (request.Decision!.Table, request.Decision.Chain, request.Decision.Verdict));
        Assert.Equal("-A DOCKER-USER -s 172.29.2.0/24 -d 172.29.1.0/24 -m comment --comment \"netlab:manual\" -j ACCEPT", request.Decision.RuleText);
        Assert.Equal("nat", request.Steps[^1].Table);
        Assert.Contains("MASQUERADE", request.Steps[^1].RuleText, StringComparison.Ordinal);

        // The reply is seen in raw PREROUTING addressed to the gateway that masqueraded the request.
        var reply = parser.Packets.Single(p => p.Source == "172.29.1.2");
        Assert.Equal("172.29.1.1", reply.Destination);
        Assert.Equal("-A DOCKER-USER -s 172.29.1.0/24 -d 172.29.2.0/24 -m comment --comment \"netlab:manual\" -j ACCEPT", reply.Decision!.RuleText);
    }

    [Fact]
    public void OtherTracesPackets_AreLeftOut()
    {
        var parser = Read("xtables-monitor-docker-user-accept.txt", accept: (s, d) => (s, d) == ("172.29.2.2", "172.29.1.2"));
        Assert.Equal("172.29.2.2", Assert.Single(parser.Packets).Source);
    }

    [Fact]
    public void Locator_FindsRulesBySpecification_WhateverTheQuoting()
    {
        var ruleset = IptablesSaveReader.Read("""
            *filter
            :DOCKER-USER - [0:0]
            -A DOCKER-USER -s 172.29.1.0/24 -d 172.29.2.0/24 -m comment --comment netlab:manual -j ACCEPT
            -A DOCKER-USER -j RETURN
            COMMIT
            """, TableFamily.Ipv4);
        var locator = new TraceRuleLocator(ruleset);
        Assert.Equal(1, locator.PositionOf("filter", "DOCKER-USER", "-A DOCKER-USER -s 172.29.1.0/24 -d 172.29.2.0/24 -m comment --comment \"netlab:manual\" -j ACCEPT"));
        Assert.Equal(2, locator.PositionOf("filter", "DOCKER-USER", "-A DOCKER-USER -j RETURN"));
        Assert.Null(locator.PositionOf("filter", "FORWARD", "-A FORWARD -j RETURN"));
        Assert.Null(locator.PositionOf("filter", "DOCKER-USER", "garbage"));
    }

    [Fact]
    public void Garbage_IsCountedNotGuessed()
    {
        var parser = new XtablesTraceParser();
        Assert.Null(parser.Feed("PACKET: 2 abc IN=x LEN=3", Now));
        Assert.Null(parser.Feed(" TRACE: 2 ffff filter:FORWARD:policy:DROP", Now));
        Assert.Null(parser.Feed("something else", Now));
        Assert.Equal(2, parser.UnparsedLines);
        Assert.Empty(parser.Packets);
    }
}
