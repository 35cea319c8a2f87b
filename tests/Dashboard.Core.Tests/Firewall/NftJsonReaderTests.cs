using Dashboard.Core.Firewall;

namespace Dashboard.Core.Tests.Firewall;

public class NftJsonReaderTests
{
    private static Ruleset ReadDocker29() =>
        NftJsonReader.Read(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "nft", "docker-29-bridge1-published-port.json")));

    [Fact]
    public void Read_Docker29Backend_ReadsTheDockerBridgesTable()
    {
        var rs = ReadDocker29();

        var table = Assert.Single(rs.Tables);
        Assert.Equal("docker-bridges", table.Name);
        Assert.Equal(TableFamily.Ipv4, table.Family);
        Assert.Equal(14, table.Chains.Count);
        Assert.Equal(21, rs.RuleCount);
        Assert.Equal("nftables v1.0.6", rs.Generator);
        Assert.Equal(4, table.Sets.Count);
    }

    [Fact]
    public void Read_Docker29Backend_BaseChainsHaveHookPriorityAndPolicy()
    {
        var forward = ReadDocker29().Tables[0].FindChain("filter-FORWARD")!;

        Assert.Equal("forward", forward.Hook);
        Assert.Equal("filter", forward.Type);
        Assert.Equal(0, forward.Priority);
        Assert.Equal("accept", forward.Policy);
        Assert.True(forward.IsBuiltin);
    }

    [Fact]
    public void Read_VmapDispatch_ResolvesTheChainsItMayEnter()
    {
        var forward = ReadDocker29().Tables[0].FindChain("filter-FORWARD")!;
        var byOut = forward.Rules[0];

        Assert.Equal("vmap", byOut.Target);
        Assert.Equal(new RuleMatch("", "meta oifname", false, null), byOut.Matches.Single());
        Assert.Equal(["filter-forward-in__docker0", "filter-forward-in__bridge1"], byOut.JumpChains);
        Assert.Equal("oifname vmap @filter-forward-in-jumps", byOut.Text);
    }

    [Fact]
    public void Read_UnpublishedPortDrop_HasCounterCommentAndVerdict()
    {
        var chain = ReadDocker29().Tables[0].FindChain("filter-forward-in__bridge1")!;
        var drop = chain.Rules[^1];

        Assert.Equal("drop", drop.Target);
        Assert.Equal("UNPUBLISHED PORT DROP", drop.Comment);
        Assert.True(drop.HasCounters);
        Assert.Equal(4, drop.Position);
        Assert.Equal("counter drop comment \"UNPUBLISHED PORT DROP\"", drop.Text);
        var published = chain.Rules[2];
        Assert.Equal([new("", "ip daddr", false, "192.0.2.2"), new("", "tcp dport", false, "80")], published.Matches);
    }

    [Fact]
    public void Read_RawDirectAccessDrop_HasNegatedInterface()
    {
        var raw = ReadDocker29().Tables[0].FindChain("raw-PREROUTING")!;
        var drop = raw.Rules.Single();

        Assert.Equal("prerouting", raw.Hook);
        Assert.Equal(-300, raw.Priority);
        Assert.Contains(new RuleMatch("", "meta iifname", true, "bridge1"), drop.Matches);
        Assert.Equal("DROP DIRECT ACCESS", drop.Comment);
        Assert.Equal("ip daddr 192.0.2.2 iifname != \"bridge1\" counter drop comment \"DROP DIRECT ACCESS\"", drop.Text);
    }

    [Fact]
    public void Read_NatExpressions_KeepAddressesAndPorts()
    {
        var t = ReadDocker29().Tables[0];
        var dnat = t.FindChain("nat-prerouting-and-output")!.Rules.Single();
        var masq = t.FindChain("nat-postrouting-out__bridge1")!.Rules.Single();
        var output = t.FindChain("nat-OUTPUT")!.Rules.Single();

        Assert.Equal("dnat", dnat.Target);
        Assert.Equal([new("", "addr", false, "192.0.2.2"), new("", "port", false, "80")], dnat.TargetOptions);
        Assert.Equal("masquerade", masq.Target);
        Assert.Contains(new RuleMatch("", "ip saddr", false, "192.0.2.0/24"), masq.Matches);
        Assert.Contains(new RuleMatch("", "ip daddr", true, "127.0.0.0/8"), output.Matches);
        Assert.Contains(new RuleMatch("", "fib daddr type", false, "local"), output.Matches);
        Assert.Equal(["nat-prerouting-and-output"], output.JumpChains);
    }

    [Fact]
    public void Read_CountersAndUnknownExpressions_AreKept()
    {
        var rs = NftJsonReader.Read("""
            {"nftables": [
              {"table": {"family": "inet", "name": "lab", "handle": 1}},
              {"chain": {"family": "inet", "table": "lab", "name": "in", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
              {"rule": {"family": "inet", "table": "lab", "chain": "in", "handle": 2, "expr": [
                 {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}},
                 {"limit": {"rate": 10, "per": "second"}},
                 {"counter": {"packets": 18446744073709551615, "bytes": 12345678901234}},
                 {"accept": null}]}}
            ]}
            """);
        var r = rs.Rules.Single();

        Assert.Equal(TableFamily.Inet, rs.Tables[0].Family);
        Assert.Equal("drop", rs.Tables[0].Chains[0].Policy);
        Assert.Equal(ulong.MaxValue, r.Packets);
        Assert.Equal(12345678901234UL, r.Bytes);
        Assert.Contains(new RuleMatch("", "ct state", false, "established,related"), r.Matches);
        Assert.Contains(new RuleMatch("nft", "limit", false, "{\"rate\": 10, \"per\": \"second\"}"), r.Matches);
        Assert.Equal(2, r.Handle);
    }
}
