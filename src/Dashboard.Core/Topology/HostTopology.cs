using System.Net;

namespace Dashboard.Core.Topology;

/// <summary>How the engine writes its firewall rules.</summary>
public enum FirewallBackend
{
    Unknown,

    /// <summary>iptables over nf_tables (iptables-nft), as Debian 11+ and most current hosts.</summary>
    IptablesNft,

    /// <summary>The legacy x_tables iptables.</summary>
    IptablesLegacy,

    /// <summary>Docker 29's native nftables backend (table <c>ip docker-bridges</c>).</summary>
    Nftables,
}

/// <summary>The Docker engine and the host it runs on.</summary>
public sealed record EngineInfo(
    string EngineVersion,
    string ApiVersion,
    string? MinApiVersion,
    string? Os,
    string? KernelVersion,
    string? Architecture,
    FirewallBackend FirewallBackend,
    string FirewallBackendSource,
    string? IptablesVersion,
    bool? BridgeNfCallIptables);

public sealed record NetworkSubnet(string Subnet, string? Gateway)
{
    public IPNetwork? ToNetwork() => IPNetwork.TryParse(Subnet, out var n) ? n : null;
}

/// <summary>A Docker network as the engine describes it, with the Linux bridge that carries it.</summary>
public sealed record DockerNetwork(
    string Id,
    string Name,
    string Driver,
    string Scope,
    string? BridgeName,
    IReadOnlyList<NetworkSubnet> Subnets,
    bool Internal,
    bool Icc,
    bool EnableIpv6,
    DateTimeOffset? Created,
    IReadOnlyDictionary<string, string> Options,
    IReadOnlyDictionary<string, string> Labels)
{
    public string ShortId => Id.Length >= 12 ? Id[..12] : Id;

    /// <summary>The bridge device Docker uses for a bridge network: option <c>com.docker.network.bridge.name</c>, else <c>br-</c> and the first 12 hex of the id.</summary>
    public static string? BridgeNameFor(string driver, string id, IReadOnlyDictionary<string, string>? options)
    {
        if (driver != "bridge")
        {
            return null;
        }

        if (options is not null && options.TryGetValue("com.docker.network.bridge.name", out var name) && !string.IsNullOrWhiteSpace(name))
        {
            return name;
        }

        return id.Length >= 12 ? "br-" + id[..12] : null;
    }

    /// <summary>ICC is on unless the option <c>com.docker.network.bridge.enable_icc</c> says false.</summary>
    public static bool IccFrom(IReadOnlyDictionary<string, string>? options) =>
        options is null
        || !options.TryGetValue("com.docker.network.bridge.enable_icc", out var v)
        || !string.Equals(v, "false", StringComparison.OrdinalIgnoreCase);
}

/// <summary>A container's attachment to one network, with the veth pair that realises it.</summary>
public sealed record ContainerEndpoint(
    string NetworkId,
    string NetworkName,
    string? EndpointId,
    string? Ipv4Address,
    int? Ipv4PrefixLength,
    string? Ipv6Address,
    string? MacAddress,
    string? Gateway,
    VethPair? Veth);

/// <summary>
/// Both ends of a veth pair: the container's interface (<c>eth0@if12</c>: its own index, and <c>iflink</c> = the host end's index)
/// and the host's <c>vethXXXX</c> attached to a bridge.
/// </summary>
public sealed record VethPair(
    string ContainerInterface,
    int ContainerIfIndex,
    int ContainerIfLink,
    string HostInterface,
    int HostIfIndex,
    string? Bridge,
    string? HostMac,
    string? OperState)
{
    /// <summary>As <c>ip link</c> shows the container end: <c>eth0@if12</c>.</summary>
    public string ContainerDisplay => $"{ContainerInterface}@if{ContainerIfLink}";
}

public sealed record DockerContainer(
    string Id,
    string Name,
    string Image,
    string State,
    string? Status,
    int? Pid,
    DateTimeOffset? Created,
    IReadOnlyList<ContainerEndpoint> Endpoints,
    IReadOnlyDictionary<string, string> Labels)
{
    public string ShortId => Id.Length >= 12 ? Id[..12] : Id;
}

/// <summary>A bridge and its ports, what <c>brctl show</c> prints.</summary>
public sealed record BridgeInfo(
    string Name,
    int IfIndex,
    string? MacAddress,
    string? OperState,
    int Mtu,
    string? NetworkName,
    IReadOnlyList<BridgePort> Ports)
{
    /// <summary>The bridge's own addresses with their prefix (<c>172.18.0.1/16</c>): the gateway its containers use.</summary>
    public IReadOnlyList<string> Addresses { get; init; } = [];
}

public sealed record BridgePort(string Name, int IfIndex, string? Kind, string? State, string? ContainerName);

/// <summary>What was read from the host at one moment; <see cref="Warnings"/> says what could not be read.</summary>
public sealed record HostTopology(
    EngineInfo Engine,
    IReadOnlyList<DockerNetwork> Networks,
    IReadOnlyList<DockerContainer> Containers,
    IReadOnlyList<BridgeInfo> Bridges,
    IReadOnlyList<IpLink> Links,
    DateTimeOffset ReadAt,
    IReadOnlyList<string> Warnings)
{
    /// <summary>
    /// The gateway of one of a network's subnets: Docker's IPAM config, else the address the network's bridge has inside
    /// that subnet (a network created with <c>--subnet</c> alone names none in its config); <c>FromBridge</c> says which.
    /// </summary>
    public (string? Address, bool FromBridge) GatewayOf(DockerNetwork network, NetworkSubnet subnet)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(subnet);
        if (subnet.Gateway is { } configured)
        {
            return (configured, false);
        }

        if (network.BridgeName is null || subnet.ToNetwork() is not { } net)
        {
            return (null, false);
        }

        foreach (var cidr in Bridges.FirstOrDefault(b => b.Name == network.BridgeName)?.Addresses ?? [])
        {
            var slash = cidr.IndexOf('/', StringComparison.Ordinal);
            if (System.Net.IPAddress.TryParse(slash < 0 ? cidr : cidr[..slash], out var address) && net.Contains(address))
            {
                return (address.ToString(), true);
            }
        }

        return (null, false);
    }
}
