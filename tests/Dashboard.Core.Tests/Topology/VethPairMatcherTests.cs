using Dashboard.Core.Topology;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Topology;

public class VethPairMatcherTests
{
    private static readonly IReadOnlyList<IpLink> HostLinks = IpLink.ParseJson(TestPaths.ReadShared("docker/host-links.ip-j-d-link.json"));

    private static IpLink ContainerEth0(int ifIndex, int iflink) =>
        new(ifIndex, "eth0", null, null, null, iflink, 0, "02:42:ac:12:00:02", "UP", 1500, [], null);

    [Fact]
    public void ParseJson_HostLinksFixture_ReadsKindsMastersAndPeers()
    {
        var veth = HostLinks.Single(l => l.Name == "veth8c7f96c");

        Assert.Equal(12, veth.IfIndex);
        Assert.Equal(11, veth.LinkIndex);
        Assert.Equal(0, veth.LinkNetnsId);
        Assert.Equal("veth", veth.Kind);
        Assert.Equal("br-5bb1f7c6955f", veth.Master);
        Assert.True(HostLinks.Single(l => l.Name == "br-5bb1f7c6955f").IsBridge);
    }

    [Fact]
    public void Match_C1Eth0WithIflink12_FindsVeth8c7f96cOnNet1Bridge()
    {
        var pair = VethPairMatcher.Match(ContainerEth0(ifIndex: 11, iflink: 12), HostLinks);

        Assert.NotNull(pair);
        Assert.Equal("veth8c7f96c", pair.HostInterface);
        Assert.Equal("br-5bb1f7c6955f", pair.Bridge);
        Assert.Equal("eth0@if12", pair.ContainerDisplay);
    }

    [Fact]
    public void Match_EqualIndexWithoutPeerAgreement_IsNotAMatch()
    {
        // Host index 12 exists, but its peer is index 11, not 13: equal numbers in different namespaces prove nothing.
        Assert.Null(VethPairMatcher.Match(ContainerEth0(ifIndex: 13, iflink: 12), HostLinks));
    }

    [Fact]
    public void Match_IflinkPointingAtABridge_IsNotAMatch()
    {
        Assert.Null(VethPairMatcher.Match(ContainerEth0(ifIndex: 1, iflink: 9), HostLinks));
    }

    [Fact]
    public void Bridges_HostLinksFixture_ListPortsAsBrctlShow()
    {
        var bridges = VethPairMatcher.Bridges(HostLinks, FixtureNetworksForLinks, []);

        Assert.Equal(["br-5bb1f7c6955f", "br-8f1460e35ae3", "br-99a370db15a4", "br-e3022b7c28d4", "docker0"], bridges.Select(b => b.Name));
        Assert.Equal(["veth8c7f96c"], bridges.Single(b => b.Name == "br-5bb1f7c6955f").Ports.Select(p => p.Name));
        Assert.Equal(["veth2d7be2b", "veth2e79c3f"], bridges.Single(b => b.Name == "br-8f1460e35ae3").Ports.Select(p => p.Name));
        Assert.Empty(bridges.Single(b => b.Name == "docker0").Ports);
        Assert.Equal("net1", bridges.Single(b => b.Name == "br-5bb1f7c6955f").NetworkName);
    }

    private static readonly IReadOnlyList<DockerNetwork> FixtureNetworksForLinks = Dashboard.Core.Tests.Firewall.FixtureNetworks.Host2010;

    [Fact]
    public void BridgeNameFor_UsesOptionElseBrPlus12Hex()
    {
        Assert.Equal("br-5bb1f7c6955f", DockerNetwork.BridgeNameFor("bridge", "5bb1f7c6955fd67fe47e6a0e25e8aee6ae0dbec35ddb1f8b7940883afd184aca", null));
        Assert.Equal("lab0", DockerNetwork.BridgeNameFor("bridge", "5bb1f7c6955fd67f", new Dictionary<string, string> { ["com.docker.network.bridge.name"] = "lab0" }));
        Assert.Null(DockerNetwork.BridgeNameFor("host", "abc", null));
        Assert.False(DockerNetwork.IccFrom(new Dictionary<string, string> { ["com.docker.network.bridge.enable_icc"] = "false" }));
        Assert.True(DockerNetwork.IccFrom(new Dictionary<string, string>()));
    }

    /// <summary>As <c>ip -j -d addr show</c> prints a bridge made by <c>docker network create --subnet 172.29.250.0/24</c> (20.10: its IPAM config names no gateway).</summary>
    private const string AddrShow = """
        [{"ifindex":7,"ifname":"br-36acc71a3540","flags":["BROADCAST","MULTICAST","UP"],"mtu":1500,"operstate":"DOWN","address":"02:42:4c:1d:0a:11",
          "linkinfo":{"info_kind":"bridge","info_data":{"stp_state":0}},
          "addr_info":[{"family":"inet","local":"172.29.250.1","prefixlen":24,"broadcast":"172.29.250.255","scope":"global"},
                       {"family":"inet6","local":"fe80::42:4cff:fe1d:a11","prefixlen":64,"scope":"link"},
                       {"family":"inet","local":"not an address","prefixlen":24},{"family":"inet","local":"172.29.250.9","prefixlen":99}]}]
        """;

    [Fact]
    public void AddrShow_GivesTheBridgesAddresses_AndTheGatewayOfANetworkWhoseConfigNamesNone()
    {
        var links = IpLink.ParseJson(AddrShow);
        Assert.Equal(["172.29.250.1/24", "fe80::42:4cff:fe1d:a11/64"], links.Single().Addresses);

        var network = new DockerNetwork("36acc71a3540ffff", "plain", "bridge", "local", "br-36acc71a3540", [new("172.29.250.0/24", null)], false, true, false, null,
            new Dictionary<string, string>(), new Dictionary<string, string>());
        var bridges = VethPairMatcher.Bridges(links, [network], []);
        Assert.Equal(["172.29.250.1/24", "fe80::42:4cff:fe1d:a11/64"], bridges.Single().Addresses);

        var topology = new HostTopology(new EngineInfo("20.10.24", "1.41", null, null, null, null, FirewallBackend.IptablesLegacy, "x", null, null), [network], [], bridges, links, DateTimeOffset.UnixEpoch, []);
        Assert.Equal(("172.29.250.1", true), topology.GatewayOf(network, network.Subnets[0]));
        var configured = network with { Subnets = [new("172.29.250.0/24", "172.29.250.254")] };
        Assert.Equal(("172.29.250.254", false), topology.GatewayOf(configured, configured.Subnets[0]));
        Assert.Equal((null, false), (topology with { Bridges = [] }).GatewayOf(network, network.Subnets[0]));
        Assert.Equal("172.29.250.1", Dashboard.Core.Evaluation.IsolationMatrices.ContextFor(topology).InterfaceAddresses["br-36acc71a3540"]);

        // A link from `ip link` (no addr_info) has none.
        Assert.All(HostLinks, l => Assert.Empty(l.Addresses));
    }
}
