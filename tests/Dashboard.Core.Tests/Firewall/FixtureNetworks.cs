using Dashboard.Core.Topology;

namespace Dashboard.Core.Tests.Firewall;

/// <summary>The networks behind the shared dumps, as their README and inspect output describe them.</summary>
internal static class FixtureNetworks
{
    public static DockerNetwork Net(string name, string id, string subnet, string? bridge = null) =>
        new(id, name, "bridge", "local", bridge ?? DockerNetwork.BridgeNameFor("bridge", id, null),
            [new NetworkSubnet(subnet, null)], false, true, false, null,
            bridge is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["com.docker.network.bridge.name"] = bridge },
            new Dictionary<string, string>());

    public static readonly IReadOnlyList<DockerNetwork> Seed17 =
    [
        Net("net1", "340fda49f12b0000000000000000000000000000000000000000000000000000", "172.18.0.0/16"),
        Net("net2", "576fd0522c4e0000000000000000000000000000000000000000000000000000", "172.19.0.0/16"),
        Net("bridge", "docker0-id", "172.17.0.0/16", "docker0"),
    ];

    public static readonly IReadOnlyList<DockerNetwork> Host2010 =
    [
        Net("net1", "5bb1f7c6955fd67fe47e6a0e25e8aee6ae0dbec35ddb1f8b7940883afd184aca", "172.18.0.0/16"),
        Net("net2", "99a370db15a4f9d9cd36438e0ef667a118182e09eca0b214975038f3dd2965d4", "172.19.0.0/16"),
        Net("lab-a", "e3022b7c28d40000000000000000000000000000000000000000000000000000", "172.30.10.0/24"),
        Net("lab-b", "8f1460e35ae30000000000000000000000000000000000000000000000000000", "172.30.20.0/24"),
        Net("bridge", "docker0-id", "172.17.0.0/16", "docker0"),
    ];

    public static readonly IReadOnlyList<DockerNetwork> Docs285 =
    [
        Net("bridge1", "b1b1b1b1b1b10000000000000000000000000000000000000000000000000000", "192.0.2.0/24", "bridge1"),
        Net("bridge", "docker0-id", "172.17.0.0/16", "docker0"),
    ];
}
