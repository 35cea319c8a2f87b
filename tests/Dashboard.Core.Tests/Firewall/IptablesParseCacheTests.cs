using System.Text.RegularExpressions;
using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Firewall;

/// <summary>Incremental reads: a reader that keeps its parse cache gives exactly what a fresh read gives, whatever came before.</summary>
public partial class IptablesParseCacheTests
{
    private static readonly string[] Fixtures =
    [
        "docker-17-seed-isolated.save",
        "docker-17-seed-accept.save",
        "docker-20.10-two-networks-isolated.save",
        "docker-20.10-two-networks-docker-user-accept.save",
        "docker-20.10-two-networks-stage1-accept.save",
        "docker-28.5-bridge1-published-port.save",
    ];

    private static string Shared(string name) => TestPaths.ReadShared("iptables/" + name);

    /// <summary>Every field a reader sets, rule by rule, chain by chain.</summary>
    private static void AssertSame(Ruleset expected, Ruleset actual)
    {
        Assert.Equal(expected.Generator, actual.Generator);
        Assert.Equal(expected.Tables.Select(t => (t.Family, t.Name)), actual.Tables.Select(t => (t.Family, t.Name)));
        foreach (var (et, at) in expected.Tables.Zip(actual.Tables))
        {
            Assert.Equal(et.Chains.Select(c => (c.Name, c.Policy, c.PolicyPackets, c.PolicyBytes, c.Hook)), at.Chains.Select(c => (c.Name, c.Policy, c.PolicyPackets, c.PolicyBytes, c.Hook)));
            foreach (var (ec, ac) in et.Chains.Zip(at.Chains))
            {
                Assert.Equal(ec.Rules.Count, ac.Rules.Count);
                foreach (var (e, a) in ec.Rules.Zip(ac.Rules))
                {
                    Assert.Equal((e.Family, e.Table, e.Chain, e.Position, e.Packets, e.Bytes, e.HasCounters), (a.Family, a.Table, a.Chain, a.Position, a.Packets, a.Bytes, a.HasCounters));
                    Assert.Equal((e.Target, e.IsGoto, e.Comment, e.Text, e.Key, e.Line), (a.Target, a.IsGoto, a.Comment, a.Text, a.Key, a.Line));
                    Assert.Equal(e.Matches, a.Matches);
                    Assert.Equal(e.TargetOptions, a.TargetOptions);
                    Assert.Equal(e.JumpChains, a.JumpChains);
                }
            }
        }
    }

    [Fact]
    public void Read_ThroughOneCache_EachFixtureInTurnAndBack_EqualsAFreshRead()
    {
        var cache = new IptablesParseCache();
        foreach (var name in Fixtures.Concat(Fixtures.Reverse()))
        {
            var text = Shared(name);
            AssertSame(IptablesSaveReader.Read(text), IptablesSaveReader.Read(text, TableFamily.Ipv4, cache));
            var distinct = IptablesSaveReader.Read(text).Rules.Select(r => (r.Table, r.Text)).Distinct().Count();
            Assert.Equal(distinct, cache.Count);
        }
    }

    [Fact]
    public void Read_CountersOnlyChanged_ParsesNoRuleAgainAndReportsTheNewCounters()
    {
        var cache = new IptablesParseCache();
        var text = Shared("docker-20.10-two-networks-isolated.save");
        var first = IptablesSaveReader.Read(text, TableFamily.Ipv4, cache);
        var misses = cache.Misses;

        var moved = Counters().Replace(text, m => $"[{ulong.Parse(m.Groups[1].Value) + 7}:{ulong.Parse(m.Groups[2].Value) + 588}]");
        var second = IptablesSaveReader.Read(moved, TableFamily.Ipv4, cache);

        Assert.Equal(misses, cache.Misses);
        Assert.Equal(first.RuleCount, cache.Hits);
        Assert.All(first.Rules.Zip(second.Rules), p =>
        {
            Assert.Equal(p.First.Packets + 7, p.Second.Packets);
            Assert.Equal(p.First.Bytes + 588, p.Second.Bytes);
            Assert.Same(p.First.Text, p.Second.Text);
        });
        AssertSame(IptablesSaveReader.Read(moved), second);
    }

    [Fact]
    public void Read_RuleInsertedAndDuplicated_ParsesOnlyTheNewTextAndNumbersDuplicates()
    {
        var cache = new IptablesParseCache();
        var text = Shared("docker-20.10-two-networks-isolated.save");
        IptablesSaveReader.Read(text, TableFamily.Ipv4, cache);
        var misses = cache.Misses;
        const string Added = "[3:252] -A DOCKER-USER -s 172.30.0.0/16 -j DROP";
        var edited = text.Replace("[3:252] -A DOCKER-USER -j RETURN", Added + "\n" + Added + "\n[3:252] -A DOCKER-USER -j RETURN", StringComparison.Ordinal);
        Assert.NotEqual(text, edited);

        var read = IptablesSaveReader.Read(edited, TableFamily.Ipv4, cache);

        Assert.Equal(misses + 1, cache.Misses);
        AssertSame(IptablesSaveReader.Read(edited), read);
        var user = read.FindTable("filter")!.FindChain("DOCKER-USER")!.Rules;
        Assert.Equal(["-A DOCKER-USER -s 172.30.0.0/16 -j DROP", "-A DOCKER-USER -s 172.30.0.0/16 -j DROP #2"], user.Take(2).Select(r => r.Key));

        // Back to the original: the inserted text leaves the cache.
        AssertSame(IptablesSaveReader.Read(text), IptablesSaveReader.Read(text, TableFamily.Ipv4, cache));
        Assert.DoesNotContain(Added[8..], IptablesSaveReader.Read(text, TableFamily.Ipv4, cache).Rules.Select(r => r.Text));
        Assert.Equal(IptablesSaveReader.Read(text).RuleCount, cache.Count);
    }

    [Fact]
    public void Read_AfterAFailedRead_TheNextReadIsStillExact()
    {
        var cache = new IptablesParseCache();
        var text = Shared("docker-17-seed-isolated.save");
        IptablesSaveReader.Read(text, TableFamily.Ipv4, cache);
        var truncated = text[..(text.LastIndexOf("COMMIT", StringComparison.Ordinal) - 1)];

        var held = cache.Count;
        Assert.Throws<RulesetFormatException>(() => IptablesSaveReader.Read(truncated + "\n[1:2] -A FORWARD -s 172.31.9.0/24 -j DROP\n", TableFamily.Ipv4, cache));
        Assert.Equal(held, cache.Count);
        Assert.Throws<RulesetFormatException>(() => IptablesSaveReader.Read(truncated, TableFamily.Ipv4, cache));
        Assert.Throws<RulesetFormatException>(() => IptablesSaveReader.Read(truncated.Replace(":DOCKER-ISOLATION", ":DOCKER-ISOLATION-X", StringComparison.Ordinal) + "\nCOMMIT\n", TableFamily.Ipv4, cache));

        AssertSame(IptablesSaveReader.Read(text), IptablesSaveReader.Read(text, TableFamily.Ipv4, cache));
    }

    [Fact]
    public void Read_SameTextInTwoTables_KeptApart()
    {
        const string Dump = "*filter\n:INPUT ACCEPT [0:0]\n[1:84] -A INPUT -s 172.20.0.0/16 -j ACCEPT\nCOMMIT\n*mangle\n:INPUT ACCEPT [0:0]\n[2:168] -A INPUT -s 172.20.0.0/16 -j ACCEPT\nCOMMIT\n";
        var cache = new IptablesParseCache();
        IptablesSaveReader.Read(Dump, TableFamily.Ipv4, cache);
        var read = IptablesSaveReader.Read(Dump, TableFamily.Ipv4, cache);

        Assert.Equal(["filter", "mangle"], read.Rules.Select(r => r.Table));
        Assert.Equal([1UL, 2UL], read.Rules.Select(r => r.Packets));
        Assert.All(read.Rules, r => Assert.Equal(r.Text, r.Key));
        Assert.Equal(2, cache.Count);
    }

    [Fact]
    public void Read_SameTableTwiceInOneDump_NumbersDuplicatesPerSectionAsBefore()
    {
        const string Section = "*filter\n:INPUT ACCEPT [0:0]\n[1:84] -A INPUT -s 172.20.0.0/16 -j ACCEPT\nCOMMIT\n";
        var cache = new IptablesParseCache();
        var read = IptablesSaveReader.Read(Section + Section, TableFamily.Ipv4, cache);

        Assert.Equal(["-A INPUT -s 172.20.0.0/16 -j ACCEPT", "-A INPUT -s 172.20.0.0/16 -j ACCEPT"], read.Rules.Select(r => r.Key));
        AssertSame(IptablesSaveReader.Read(Section + Section), IptablesSaveReader.Read(Section + Section, TableFamily.Ipv4, cache));
    }

    [GeneratedRegex(@"^\[(\d+):(\d+)\]", RegexOptions.Multiline)]
    private static partial Regex Counters();
}
