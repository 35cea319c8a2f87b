using Dashboard.Core.Changes;
using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Host.Tests.RealHost;

/// <summary>The seed experiment on the real engine: two networks, c2 pings c1, isolated, then with an ACCEPT pair in DOCKER-USER.</summary>
[Trait("Category", "RealHost")]
public class SeedExperimentTests
{
    [SkippableFact]
    public async Task SeedExperiment_IsolatedThenDockerUserAccept_CountersTellTheStory()
    {
        Dashboard.TestSupport.RealHost.Require();
        using var sp = HostServices.Build();
        var (topologyReader, _, inspector) = HostServices.Resolve(sp);
        await using var lab = new LabScope();

        var (net1, net2, _, _, c1, c2, c1Ip) = await lab.CreateSeedLabAsync();

        // Topology: both bridges exist and each container's host veth hangs on its own network's bridge.
        var topology = await topologyReader.ReadAsync();
        var n1 = topology.Networks.Single(n => n.Name == net1);
        var n2 = topology.Networks.Single(n => n.Name == net2);
        Assert.Contains(topology.Bridges, b => b.Name == n1.BridgeName);
        Assert.Contains(topology.Bridges, b => b.Name == n2.BridgeName);
        var c1Veth = topology.Containers.Single(c => c.Name == c1).Endpoints.Single().Veth;
        var c2Veth = topology.Containers.Single(c => c.Name == c2).Endpoints.Single().Veth;
        Assert.NotNull(c1Veth);
        Assert.NotNull(c2Veth);
        Assert.Equal(n1.BridgeName, c1Veth.Bridge);
        Assert.Equal(n2.BridgeName, c2Veth.Bridge);
        Assert.Contains(topology.Bridges.Single(b => b.Name == n1.BridgeName).Ports, p => p.Name == c1Veth.HostInterface && p.ContainerName == c1);

        // Isolated: no reply, and the isolation DROP for c1's bridge counted exactly the echo requests.
        var before = (await inspector.ReadFirewallAsync()).Snapshot.Ruleset;
        var dropBefore = IsolationDrop(before, n1.BridgeName!, n2.BridgeName!);
        Assert.Contains(net1, dropBefore.Networks);
        Assert.Equal(RuleOwner.Docker, dropBefore.Owner);
        var (sent, received) = await lab.PingAsync(c2, c1Ip, 3);
        Assert.Equal((3, 0), (sent, received));
        var isolated = (await inspector.ReadFirewallAsync()).Snapshot.Ruleset;
        Assert.Equal(3UL, Same(isolated, dropBefore).Packets - dropBefore.Packets);

        // ACCEPT both directions at the head of DOCKER-USER: the ping succeeds and the ACCEPT rules count it.
        var sub1 = n1.Subnets.Single().Subnet;
        var sub2 = n2.Subnets.Single().Subnet;
        await lab.InsertAsync(new RuleSpec { Chain = "DOCKER-USER", Position = 1, Source = sub1, Destination = sub2, Target = "ACCEPT", Tag = lab.Tag });
        await lab.InsertAsync(new RuleSpec { Chain = "DOCKER-USER", Position = 1, Source = sub2, Destination = sub1, Target = "ACCEPT", Tag = lab.Tag });
        var accepting = (await inspector.ReadFirewallAsync()).Snapshot.Ruleset;
        var ours = accepting.Rules.Where(r => r.Comment == lab.Tag).ToList();
        Assert.Equal(2, ours.Count);
        Assert.All(ours, r => Assert.Equal(RuleOwner.Dashboard, r.Owner));
        Assert.Equal([1, 2], ours.Select(r => r.Position));

        (sent, received) = await lab.PingAsync(c2, c1Ip, 3);
        Assert.Equal((3, 3), (sent, received));
        var after = (await inspector.ReadFirewallAsync()).Snapshot.Ruleset;
        var request = after.Rules.Single(r => r.Comment == lab.Tag && r.FindValue("-s") == sub2);
        var reply = after.Rules.Single(r => r.Comment == lab.Tag && r.FindValue("-s") == sub1);
        Assert.Equal(3UL, request.Packets);
        Assert.Equal(3UL, reply.Packets);
        Assert.Equal(0UL, Same(after, dropBefore).Packets - Same(isolated, dropBefore).Packets);

        // Remove exactly those rules: nothing tagged is left, Docker's rules are all still there.
        var removed = await lab.Writer.DeleteTaggedAsync(lab.Tag);
        Assert.Equal(2, removed.Count);
        Assert.All(removed, r => Assert.True(r.Succeeded, r.Message));
        Assert.Equal(0, await lab.CountTaggedRulesAsync());
        var cleaned = (await inspector.ReadFirewallAsync()).Snapshot.Ruleset;
        var ourBridges = new[] { n1.BridgeName!, n2.BridgeName! };
        var dockerRulesBefore = before.Rules.Where(r => r.Owner == RuleOwner.Docker && r.Bridges.Intersect(ourBridges).Any()).Select(RuleId.Of).ToList();
        var dockerRulesAfter = cleaned.Rules.Select(RuleId.Of).ToHashSet();
        Assert.NotEmpty(dockerRulesBefore);
        Assert.All(dockerRulesBefore, id => Assert.Contains(id, dockerRulesAfter));
    }

    /// <summary>The rule that drops traffic from <paramref name="fromBridge"/> into <paramref name="toBridge"/>, in whichever Docker layout the host has.</summary>
    private static FirewallRule IsolationDrop(Ruleset rs, string toBridge, string fromBridge) =>
        rs.FindTable("filter")!.Rules.Single(r =>
            r.Target == "DROP" && r.Chain.StartsWith("DOCKER", StringComparison.Ordinal)
            && r.Find("-o") is { Negated: false } o && o.Value == toBridge
            && (r.Find("-i") is null || r.Find("-i") is { Value: var i, Negated: var neg } && (neg ? i == toBridge : i == fromBridge)));

    private static FirewallRule Same(Ruleset rs, FirewallRule rule) =>
        rs.Rules.Single(r => r.Table == rule.Table && r.Chain == rule.Chain && r.Key == rule.Key);
}
