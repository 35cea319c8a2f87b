using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Firewall;

public class RulesetChangesTests
{
    private static RulesetShape Read(string name)
    {
        var rs = IptablesSaveReader.Read(TestPaths.ReadShared("iptables/" + name));
        RuleClassifier.Classify(rs, null, null);
        return RulesetShape.Of(rs);
    }

    private static RulesetShape Parse(string text)
    {
        var rs = IptablesSaveReader.Read(text);
        RuleClassifier.Classify(rs, null, null);
        return RulesetShape.Of(rs);
    }

    [Fact]
    public void Compare_DockerUserAcceptPair_TwoRulesAddedAtTheHeadAndNothingMoved()
    {
        var before = Read("docker-20.10-two-networks-isolated.save");
        var after = Read("docker-20.10-two-networks-docker-user-accept.save");

        var changes = RulesetChanges.Compare(before, after);

        Assert.Equal(2, changes.Count);
        Assert.All(changes, c => Assert.Equal((RuleChangeKind.Added, "filter", "DOCKER-USER", RuleOwner.User), (c.Kind, c.Table, c.Chain, c.Owner!.Value)));
        Assert.Equal([1, 2], changes.Select(c => c.PositionAfter!.Value).Order());
        Assert.Equal(after, RulesetChanges.Apply(before, changes), ShapeComparer.Instance);
    }

    [Fact]
    public void Compare_SameRulesetTwice_NoChange()
    {
        var a = Read("docker-20.10-two-networks-isolated.save");

        Assert.Empty(RulesetChanges.Compare(a, Read("docker-20.10-two-networks-isolated.save")));
    }

    [Fact]
    public void Compare_RuleMovedToTheHead_OnlyThatRuleMoved()
    {
        var before = Parse("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -i a -j ACCEPT\n-A FORWARD -i b -j ACCEPT\n-A FORWARD -i c -j ACCEPT\n-A FORWARD -i d -j DROP\nCOMMIT\n");
        var after = Parse("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -i d -j DROP\n-A FORWARD -i a -j ACCEPT\n-A FORWARD -i b -j ACCEPT\n-A FORWARD -i c -j ACCEPT\nCOMMIT\n");

        var changes = RulesetChanges.Compare(before, after);

        var moved = Assert.Single(changes);
        Assert.Equal((RuleChangeKind.Moved, "-A FORWARD -i d -j DROP", 4, 1), (moved.Kind, moved.Text, moved.PositionBefore!.Value, moved.PositionAfter!.Value));
        Assert.Equal(after, RulesetChanges.Apply(before, changes), ShapeComparer.Instance);
    }

    [Fact]
    public void Compare_ChainAddedRemovedAndPolicyChanged_AllReportedAndReplayed()
    {
        var before = Parse("*filter\n:FORWARD ACCEPT [0:0]\n:OLD - [0:0]\n-A OLD -j RETURN\nCOMMIT\n");
        var after = Parse("*filter\n:FORWARD DROP [0:0]\n:NEW - [0:0]\n-A NEW -s 172.18.0.0/16 -j ACCEPT\nCOMMIT\n");

        var changes = RulesetChanges.Compare(before, after);

        Assert.Contains(changes, c => c is { Kind: RuleChangeKind.PolicyChanged, Chain: "FORWARD", PolicyBefore: "ACCEPT", PolicyAfter: "DROP" });
        Assert.Contains(changes, c => c is { Kind: RuleChangeKind.ChainAdded, Chain: "NEW" });
        Assert.Contains(changes, c => c is { Kind: RuleChangeKind.ChainRemoved, Chain: "OLD" });
        Assert.Contains(changes, c => c is { Kind: RuleChangeKind.Removed, Chain: "OLD", PositionBefore: 1 });
        Assert.Contains(changes, c => c is { Kind: RuleChangeKind.Added, Chain: "NEW", PositionAfter: 1 });
        Assert.Equal(after, RulesetChanges.Apply(before, changes), ShapeComparer.Instance);
    }

    /// <summary>Random edits (inserts, deletes, moves, duplicates) of a chain: the changes found always rebuild the result exactly, and moves are minimal.</summary>
    [Fact]
    public void CompareThenApply_RandomEdits_RebuildsEveryResult()
    {
        var random = new Random(1906);
        for (var round = 0; round < 300; round++)
        {
            var rules = Enumerable.Range(0, random.Next(0, 30)).Select(i => $"-A FORWARD -i x{random.Next(0, 12)} -j ACCEPT").ToList();
            var edited = new List<string>(rules);
            for (var e = random.Next(0, 6); e > 0; e--)
            {
                switch (random.Next(3))
                {
                    case 0:
                        edited.Insert(random.Next(edited.Count + 1), $"-A FORWARD -s 172.{16 + random.Next(16)}.0.{random.Next(255)}/32 -j DROP");
                        break;
                    case 1 when edited.Count > 0:
                        edited.RemoveAt(random.Next(edited.Count));
                        break;
                    case 2 when edited.Count > 1:
                        var i = random.Next(edited.Count);
                        var r = edited[i];
                        edited.RemoveAt(i);
                        edited.Insert(random.Next(edited.Count + 1), r);
                        break;
                }
            }

            var before = Parse("*filter\n:FORWARD ACCEPT [0:0]\n" + string.Concat(rules.Select(r => r + "\n")) + "COMMIT\n");
            var after = Parse("*filter\n:FORWARD ACCEPT [0:0]\n" + string.Concat(edited.Select(r => r + "\n")) + "COMMIT\n");
            var changes = RulesetChanges.Compare(before, after);

            Assert.Equal(after, RulesetChanges.Apply(before, changes), ShapeComparer.Instance);
            Assert.Equal(changes.Count(c => c.Kind == RuleChangeKind.Added) - changes.Count(c => c.Kind == RuleChangeKind.Removed), after.RuleCount - before.RuleCount);
        }
    }

    [Theory]
    [InlineData("-A DOCKER-ISOLATION-STAGE-2 -o br-0123456789ab -j DROP", true)]
    [InlineData("-A FORWARD -i docker0 -j ACCEPT", true)]
    [InlineData("-A FORWARD -i br-lan -j ACCEPT", false)]
    [InlineData("-A DOCKER-USER -s 198.18.0.1/32 -j RETURN", false)]
    public void NamesDockerLikeBridge_ByDockersNaming(string text, bool expected) =>
        Assert.Equal(expected, ChangeAttribution.NamesDockerLikeBridge(new RuleChange(RuleChangeKind.Added, TableFamily.Ipv4, "filter", "FORWARD", text, text, RuleOwner.User)));

    /// <summary>Docker 29's nftables backend: a rule taken out of one of its per-bridge chains is found by its identity, is Docker's, and the replay rebuilds the ruleset.</summary>
    [Fact]
    public void Compare_Docker29NftRuleRemoved_FoundAsDockersAndReplayed()
    {
        var json = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "nft", "docker-29-bridge1-published-port.json"));
        var doc = System.Text.Json.Nodes.JsonNode.Parse(json)!;
        var items = doc["nftables"]!.AsArray();
        var rule = items.First(n => n!["rule"] is { } r && r["table"]!.GetValue<string>() == "docker-bridges")!;
        var chain = rule["rule"]!["chain"]!.GetValue<string>();
        items.Remove(rule);
        var before = Shape(NftJsonReader.Read(json));
        var after = Shape(NftJsonReader.Read(doc.ToJsonString()));

        var changes = RulesetChanges.Compare(before, after);

        var removed = Assert.Single(changes);
        Assert.Equal((RuleChangeKind.Removed, "docker-bridges", chain, RuleOwner.Docker), (removed.Kind, removed.Table, removed.Chain, removed.Owner!.Value));
        Assert.True(ChangeAttribution.CouldBeDocker(removed));
        Assert.Equal(after, RulesetChanges.Apply(before, changes), ShapeComparer.Instance);
        Assert.Equal(before, RulesetChanges.Apply(after, RulesetChanges.Compare(after, before)), ShapeComparer.Instance);
    }

    private static RulesetShape Shape(Ruleset rs)
    {
        RuleClassifier.Classify(rs, null, null);
        return RulesetShape.Of(rs);
    }
}
