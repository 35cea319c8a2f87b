using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Evaluation;

/// <summary>The matrix between containers on the seed's 20.10 dump: a container's own addresses never reach the host.</summary>
public class IsolationMatrixTests
{
    private static readonly Ruleset Isolated = IptablesSaveReader.Read(TestPaths.ReadShared(Path.Combine("iptables", "docker-20.10-two-networks-isolated.save")), TableFamily.Ipv4);

    private static DockerNetwork Net(string name, string bridge, string subnet, string gateway) =>
        new(name + "-id", name, "bridge", "local", bridge, [new(subnet, gateway)], false, true, false, null, new Dictionary<string, string>(), new Dictionary<string, string>());

    private static ContainerEndpoint On(string network, string address) => new(network + "-id", network, null, address, 16, null, null, null, null);

    // c1 on net1 only; c3 on both networks (its two addresses are both its own).
    private static readonly HostTopology Topology = new(
        new EngineInfo("20.10.24", "1.41", null, null, null, null, FirewallBackend.IptablesLegacy, "h", null, null),
        [Net("net1", "br-5bb1f7c6955f", "172.18.0.0/16", "172.18.0.1"), Net("net2", "br-99a370db15a4", "172.19.0.0/16", "172.19.0.1")],
        [
            new DockerContainer("1", "c1", "busybox", "running", null, null, null, [On("net1", "172.18.0.2")], new Dictionary<string, string>()),
            new DockerContainer("3", "c3", "busybox", "running", null, null, null, [On("net1", "172.18.0.3"), On("net2", "172.19.0.3")], new Dictionary<string, string>()),
        ],
        [], [], DateTimeOffset.UnixEpoch, []);

    private static IsolationMatrix Matrix() =>
        IsolationMatrices.Build(Isolated, IsolationMatrices.Containers(Topology), MatrixProbe.Ping, IsolationMatrices.ContextFor(Topology));

    [Fact]
    public void AContainerToItself_StaysInside_NoRuleDecides()
    {
        var m = Matrix();
        var self = m.Cell("c1@net1", "c1@net1");
        Assert.True(self.Succeeds);
        Assert.Null(self.DecidingRule);
        Assert.Contains("stays in its network namespace", self.Reason, StringComparison.Ordinal);

        // Its address on the other network is its own too: no FORWARD, although the two networks are isolated.
        var across = m.Cell("c3@net2", "c3@net1");
        Assert.True(across.Succeeds);
        Assert.Null(across.DecidingRule);
    }

    [Fact]
    public void ToAnotherContainer_CrossesTheHost_AndIsDecidedByItsRules()
    {
        var m = Matrix();
        var sameNetwork = m.Cell("c1@net1", "c3@net1");
        Assert.True(sameNetwork.Succeeds);
        Assert.Equal("FORWARD", sameNetwork.DecidingRule?.Chain);

        var isolated = m.Cell("c3@net2", "c1@net1");
        Assert.False(isolated.Succeeds);
        Assert.Equal("DOCKER-ISOLATION-STAGE-2", isolated.DecidingRule?.Chain);
    }

    [Fact]
    public void NetworksCells_AreNeverInside_TheirOwnCellGoesToASecondAddress()
    {
        var endpoints = IsolationMatrices.Networks(Topology);
        Assert.All(endpoints, e => Assert.False(IsolationMatrices.StaysInside(e, e)));
        var m = IsolationMatrices.Build(Isolated, endpoints, MatrixProbe.Ping, IsolationMatrices.ContextFor(Topology));
        Assert.Equal("FORWARD", m.Cell("net1", "net1").DecidingRule?.Chain);
    }
}
