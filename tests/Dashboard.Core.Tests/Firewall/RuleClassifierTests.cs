using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Firewall;

public class RuleClassifierTests
{
    private static Ruleset Classified(string file, IReadOnlyList<Dashboard.Core.Topology.DockerNetwork>? networks)
    {
        var rs = IptablesSaveReader.Read(TestPaths.ReadShared("iptables/" + file));
        RuleClassifier.Classify(rs, networks);
        return rs;
    }

    [Fact]
    public void Classify_Docker17SeedDump_LinksPairwiseDropsToBothNetworks()
    {
        var rs = Classified("docker-17-seed-isolated.save", FixtureNetworks.Seed17);
        var drop = rs.FindTable("filter")!.FindChain("DOCKER-ISOLATION")!.Rules
            .Single(r => r.FindValue("-i") == "br-576fd0522c4e" && r.FindValue("-o") == "br-340fda49f12b");

        Assert.Equal(["net2", "net1"], drop.Networks);
        Assert.Equal(["br-576fd0522c4e", "br-340fda49f12b"], drop.Bridges);
        Assert.Equal(RuleOwner.Docker, drop.Owner);
    }

    [Fact]
    public void Classify_Docker17Seed_EveryRuleIsDockers()
    {
        var rs = Classified("docker-17-seed-isolated.save", FixtureNetworks.Seed17);

        Assert.All(rs.Rules, r => Assert.Equal(RuleOwner.Docker, r.Owner));
    }

    [Fact]
    public void Classify_SeedAcceptRulesInsideDockersChain_AreUserAdded()
    {
        var rs = Classified("docker-17-seed-accept.save", FixtureNetworks.Seed17);
        var user = rs.Rules.Where(r => r.Owner == RuleOwner.User).ToList();

        Assert.Equal(2, user.Count);
        Assert.All(user, r => Assert.Equal(("DOCKER-ISOLATION", "ACCEPT"), (r.Chain, r.Target)));
        Assert.Equal(["net2"], user.Single(r => r.FindValue("-s") == "172.19.0.0/16").Networks);
    }

    [Fact]
    public void Classify_Docker2010DockerUserAccept_OnlyReturnIsDockersInDockerUser()
    {
        var rs = Classified("docker-20.10-two-networks-docker-user-accept.save", FixtureNetworks.Host2010);
        var user = rs.FindTable("filter")!.FindChain("DOCKER-USER")!.Rules;

        Assert.Equal([RuleOwner.User, RuleOwner.User, RuleOwner.Docker], user.Select(r => r.Owner));
        Assert.Equal(["net1", "net2"], user[0].Networks);
        Assert.Equal(2, rs.Rules.Count(r => r.Owner != RuleOwner.Docker));
    }

    [Fact]
    public void Classify_Stage1AcceptForm_IsUserAdded()
    {
        var rs = Classified("docker-20.10-two-networks-stage1-accept.save", FixtureNetworks.Host2010);
        var user = rs.Rules.Where(r => r.Owner != RuleOwner.Docker).ToList();

        Assert.Equal(2, user.Count);
        Assert.All(user, r => Assert.Equal("DOCKER-ISOLATION-STAGE-1", r.Chain));
    }

    [Fact]
    public void Classify_Docker2010Isolated_Stage2DropLinksToNet1()
    {
        var rs = Classified("docker-20.10-two-networks-isolated.save", FixtureNetworks.Host2010);
        var drop = rs.FindTable("filter")!.FindChain("DOCKER-ISOLATION-STAGE-2")!.Rules.Single(r => r.Packets == 3);

        Assert.Equal(["net1"], drop.Networks);
        Assert.All(rs.Rules, r => Assert.Equal(RuleOwner.Docker, r.Owner));
    }

    [Fact]
    public void Classify_Docker285_RawDirectAccessDropLinksToBridge1()
    {
        var rs = Classified("docker-28.5-bridge1-published-port.save", FixtureNetworks.Docs285);
        var drop = rs.FindTable("raw")!.FindChain("PREROUTING")!.Rules.Single();

        Assert.Equal(["bridge1"], drop.Networks);
        Assert.Equal(["bridge1"], drop.Bridges);
        Assert.Equal(RuleOwner.Docker, drop.Owner);
        Assert.All(rs.Rules, r => Assert.Equal(RuleOwner.Docker, r.Owner));
    }

    [Fact]
    public void Classify_WithoutTopology_RecognisesDockerBridgeNames()
    {
        var rs = Classified("docker-20.10-two-networks-docker-user-accept.save", null);
        var stage2 = rs.FindTable("filter")!.FindChain("DOCKER-ISOLATION-STAGE-2")!.Rules[3];

        Assert.Equal(["br-5bb1f7c6955f"], stage2.Bridges);
        Assert.Empty(stage2.Networks);
        Assert.Equal(2, rs.Rules.Count(r => r.Owner == RuleOwner.User));
    }

    [Fact]
    public void Classify_DashboardTaggedRule_IsTheDashboards()
    {
        var rs = IptablesSaveReader.Read("""
            *filter
            :DOCKER-USER - [0:0]
            [0:0] -A DOCKER-USER -s 172.18.0.0/16 -m comment --comment netlab:change-12 -j ACCEPT
            [0:0] -A DOCKER-USER -s 172.18.0.0/16 -m comment --comment "not netlab:change-12" -j ACCEPT
            [0:0] -A DOCKER-USER -j RETURN
            COMMIT
            """);
        RuleClassifier.Classify(rs);

        Assert.Equal([RuleOwner.Dashboard, RuleOwner.User, RuleOwner.Docker], rs.Rules.Select(r => r.Owner));
    }

    [Fact]
    public void Classify_UserAcceptBetweenTwoBridgesInForward_IsNotMistakenForDockers()
    {
        var rs = IptablesSaveReader.Read("""
            *filter
            :FORWARD DROP [0:0]
            [0:0] -A FORWARD -i br-5bb1f7c6955f -o br-99a370db15a4 -j ACCEPT
            [0:0] -A FORWARD -i br-5bb1f7c6955f -o br-5bb1f7c6955f -j ACCEPT
            COMMIT
            """);
        RuleClassifier.Classify(rs, FixtureNetworks.Host2010);

        Assert.Equal([RuleOwner.User, RuleOwner.Docker], rs.Rules.Select(r => r.Owner));
    }

    [Fact]
    public void Classify_NftDockerTable_IsDockersAndLinkedByChainName()
    {
        var rs = NftJsonReader.Read(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "nft", "docker-29-bridge1-published-port.json")));
        RuleClassifier.Classify(rs, FixtureNetworks.Docs285);
        var drop = rs.Tables[0].FindChain("filter-forward-in__bridge1")!.Rules[^1];

        Assert.All(rs.Rules, r => Assert.Equal(RuleOwner.Docker, r.Owner));
        Assert.Equal(["bridge1"], drop.Networks);
    }

    [Theory]
    [InlineData("172.18.0.0/16", "172.18.0.0", 16)]
    [InlineData("172.18.0.2", "172.18.0.2", 32)]
    [InlineData("172.18.0.0/255.255.0.0", "172.18.0.0", 16)]
    [InlineData("fd00::/64", "fd00::", 64)]
    public void TryParsePrefix_IptablesForms(string text, string address, int length)
    {
        Assert.True(RuleClassifier.TryParsePrefix(text, out var n));
        Assert.Equal(address, n.BaseAddress.ToString());
        Assert.Equal(length, n.PrefixLength);
    }
}
