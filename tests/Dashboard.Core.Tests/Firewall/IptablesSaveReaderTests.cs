using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Firewall;

public class IptablesSaveReaderTests
{
    private static Ruleset ReadShared(string name) => IptablesSaveReader.Read(TestPaths.ReadShared("iptables/" + name));

    [Theory]
    [InlineData("docker-17-seed-isolated.save", 2, 10, 28, 16UL, 1208UL)]
    [InlineData("docker-17-seed-accept.save", 2, 10, 30, 35UL, 2888UL)]
    [InlineData("docker-20.10-two-networks-isolated.save", 2, 12, 47, 15UL, 1260UL)]
    [InlineData("docker-20.10-two-networks-docker-user-accept.save", 2, 12, 49, 28UL, 2352UL)]
    [InlineData("docker-20.10-two-networks-stage1-accept.save", 2, 12, 49, 25UL, 2100UL)]
    [InlineData("docker-28.5-bridge1-published-port.save", 3, 17, 26, 0UL, 0UL)]
    public void Read_SharedFixture_HasExpectedTablesChainsRulesAndCounters(string file, int tables, int chains, int rules, ulong packets, ulong bytes)
    {
        var rs = ReadShared(file);

        Assert.Equal(tables, rs.Tables.Count);
        Assert.Equal(chains, rs.Tables.Sum(t => t.Chains.Count));
        Assert.Equal(rules, rs.RuleCount);
        Assert.All(rs.Rules, r => Assert.True(r.HasCounters));
        Assert.Equal(packets, rs.Rules.Aggregate(0UL, (sum, r) => sum + r.Packets));
        Assert.Equal(bytes, rs.Rules.Aggregate(0UL, (sum, r) => sum + r.Bytes));
    }

    [Fact]
    public void Read_Docker17SeedDump_FindsPairwiseDropRulesWithTheSeedCounters()
    {
        var rs = ReadShared("docker-17-seed-isolated.save");
        var isolation = rs.FindTable("filter")!.FindChain("DOCKER-ISOLATION")!;

        var drops = isolation.Rules.Where(r => r.Target == "DROP").ToList();
        Assert.Equal(6, drops.Count);
        var c2ToC1 = Assert.Single(drops, r => r.FindValue("-i") == "br-576fd0522c4e" && r.FindValue("-o") == "br-340fda49f12b");
        Assert.Equal(6UL, c2ToC1.Packets);
        Assert.Equal(504UL, c2ToC1.Bytes);
        Assert.Equal(2, c2ToC1.Position);
        Assert.Equal("DROP", rs.FindTable("filter")!.FindChain("FORWARD")!.Policy);
        Assert.Equal(2UL, rs.FindTable("filter")!.FindChain("FORWARD")!.PolicyPackets);
    }

    [Fact]
    public void Read_Docker1710IsolatedDump_Stage2DropOfNet1BridgeShowsThreePackets()
    {
        var rs = ReadShared("docker-20.10-two-networks-isolated.save");
        var stage2 = rs.FindTable("filter")!.FindChain("DOCKER-ISOLATION-STAGE-2")!;

        var drop = Assert.Single(stage2.Rules, r => r.FindValue("-o") == "br-5bb1f7c6955f");
        Assert.Equal("DROP", drop.Target);
        Assert.Equal(3UL, drop.Packets);
        Assert.Equal(252UL, drop.Bytes);
        Assert.Equal(4, drop.Position);
        Assert.Equal("iptables-save v1.8.9 (nf_tables)", rs.Generator);
    }

    [Fact]
    public void Read_Docker285Dump_ReadsRawPreroutingDirectAccessDrop()
    {
        var rs = ReadShared("docker-28.5-bridge1-published-port.save");
        var raw = rs.FindTable("raw")!.FindChain("PREROUTING")!;

        var drop = Assert.Single(raw.Rules);
        Assert.Equal("DROP", drop.Target);
        Assert.Equal(new RuleMatch("", "-d", false, "192.0.2.2/32"), drop.Matches[0]);
        Assert.Equal(new RuleMatch("", "-i", true, "bridge1"), drop.Matches[1]);
    }

    [Fact]
    public void Read_RuleWithModulesAndTargetOptions_KeepsEveryTokenInPlace()
    {
        var rs = IptablesSaveReader.Read("""
            *nat
            :DOCKER - [0:0]
            [5:300] -A DOCKER ! -i bridge1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 192.0.2.2:80
            COMMIT
            """);
        var r = rs.Rules.Single();

        Assert.Equal(
            [new("", "-i", true, "bridge1"), new("", "-p", false, "tcp"), new("tcp", "--dport", false, "8080")],
            r.Matches);
        Assert.Equal("DNAT", r.Target);
        Assert.Equal([new RuleMatch("DNAT", "--to-destination", false, "192.0.2.2:80")], r.TargetOptions);
        Assert.Empty(r.JumpChains);
    }

    [Fact]
    public void Read_QuotedCommentWithEscapes_IsUnquoted()
    {
        var rs = IptablesSaveReader.Read("""
            *filter
            :DOCKER-USER - [0:0]
            [0:0] -A DOCKER-USER -s 10.1.0.0/16 -m comment --comment "say \"hi\" \\ -j DROP" -j ACCEPT
            COMMIT
            """);

        Assert.Equal("say \"hi\" \\ -j DROP", rs.Rules.Single().Comment);
        Assert.Equal("ACCEPT", rs.Rules.Single().Target);
    }

    [Fact]
    public void Read_OldNegationSyntax_IsUnderstood()
    {
        var rs = IptablesSaveReader.Read("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -o ! br0 -j ACCEPT -c 7 420\nCOMMIT\n");
        var r = rs.Rules.Single();

        Assert.Equal(new RuleMatch("", "-o", true, "br0"), r.Matches.Single());
        Assert.Equal(7UL, r.Packets);
        Assert.Equal(420UL, r.Bytes);
    }

    [Fact]
    public void Read_UnknownMatch_IsPreservedVerbatim()
    {
        var rs = IptablesSaveReader.Read("""
            *filter
            :INPUT ACCEPT [0:0]
            [1:2] -A INPUT -m frobnicate --wibble 3 4 --flag -m set --match-set lab-hosts src -j ACCEPT
            COMMIT
            """);
        var r = rs.Rules.Single();

        Assert.Contains(new RuleMatch("frobnicate", "--wibble", false, "3 4"), r.Matches);
        Assert.Contains(new RuleMatch("frobnicate", "--flag", false, null), r.Matches);
        Assert.Contains(new RuleMatch("set", "--match-set", false, "lab-hosts src"), r.Matches);
    }

    [Fact]
    public void Read_JumpToUserChain_IsAJump()
    {
        var rs = ReadShared("docker-20.10-two-networks-isolated.save");
        var forward = rs.FindTable("filter")!.FindChain("FORWARD")!;

        Assert.Equal(["DOCKER-USER"], forward.Rules[0].JumpChains);
        Assert.Equal(["DOCKER-ISOLATION-STAGE-1"], forward.Rules[1].JumpChains);
        Assert.Empty(forward.Rules.Single(r => r.Target == "ACCEPT" && r.Find("--ctstate") is null && r.FindValue("-i") == "docker0" && r.Find("-o")!.Value.Negated).JumpChains);
    }

    [Fact]
    public void Keys_InsertedRules_DoNotShiftOtherRulesIdentity()
    {
        var before = ReadShared("docker-20.10-two-networks-isolated.save");
        var after = ReadShared("docker-20.10-two-networks-docker-user-accept.save");

        var beforeKeys = before.Rules.Select(r => (r.Table, r.Chain, r.Key)).ToHashSet();
        var afterKeys = after.Rules.Select(r => (r.Table, r.Chain, r.Key)).ToHashSet();
        Assert.Subset(afterKeys, beforeKeys);
        Assert.Equal(2, afterKeys.Except(beforeKeys).Count());
        var returnBefore = before.FindTable("filter")!.FindChain("DOCKER-USER")!.Rules.Single();
        var returnAfter = after.FindTable("filter")!.FindChain("DOCKER-USER")!.Rules.Single(r => r.Key == returnBefore.Key);
        Assert.Equal(1, returnBefore.Position);
        Assert.Equal(3, returnAfter.Position);
    }

    [Fact]
    public void Keys_DuplicateRulesInOneChain_GetOccurrenceSuffixes()
    {
        var rs = IptablesSaveReader.Read("*filter\n:X - [0:0]\n[0:0] -A X -j RETURN\n[0:0] -A X -j RETURN\nCOMMIT\n");

        Assert.Equal(["-A X -j RETURN", "-A X -j RETURN #2"], rs.Rules.Select(r => r.Key));
    }

    [Fact]
    public void Read_Ip6tablesHeader_SwitchesFamily()
    {
        var rs = IptablesSaveReader.Read("""
            # Generated by iptables-save v1.8.9 (nf_tables) on Sat Nov 28 12:05:47 2026
            *filter
            :FORWARD DROP [0:0]
            COMMIT
            # Generated by ip6tables-save v1.8.9 (nf_tables) on Sat Nov 28 12:05:47 2026
            *filter
            :FORWARD DROP [0:0]
            [0:0] -A FORWARD -s fd00::/64 -j ACCEPT
            COMMIT
            """);

        Assert.Equal([TableFamily.Ipv4, TableFamily.Ipv6], rs.Tables.Select(t => t.Family));
        Assert.NotNull(rs.FindTable("filter", TableFamily.Ipv6)!.FindChain("FORWARD")!.Rules.Single());
    }

    [Fact]
    public void SpecArguments_RuleLine_GivesTheArgumentsForDeletion()
    {
        var args = IptablesSaveReader.SpecArguments("[3:252] -A DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -m comment --comment \"lab change 1\" -j ACCEPT");

        Assert.Equal(["-s", "172.18.0.0/16", "-d", "172.19.0.0/16", "-m", "comment", "--comment", "lab change 1", "-j", "ACCEPT"], args);
    }
}
