using System.Text.Json;
using Dashboard.Core.Topology;
using Dashboard.Host.Processes;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Dashboard.Host.Docker;

/// <summary>The engine did not answer (socket absent, daemon stopped, permission denied).</summary>
public sealed class EngineUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Reads the Docker side of the host: engine version and firewall backend, networks with their bridges, containers
/// with their endpoints, and each endpoint's veth pair (container interface in its namespace ↔ host veth ↔ bridge).
/// </summary>
public sealed class DockerTopologyReader(IDockerClient docker, IProcessRunner runner, IOptions<DockerHostOptions> options, ILogger<DockerTopologyReader> logger) : ITopologySource
{
    private readonly DockerHostOptions _options = options.Value;

    public async Task<HostTopology> ReadAsync(CancellationToken ct = default)
    {
        var warnings = new List<string>();
        var engine = await ReadEngineAsync(warnings, ct).ConfigureAwait(false);
        var hostLinks = await ReadHostLinksAsync(warnings, ct).ConfigureAwait(false);

        IList<NetworkResponse> rawNetworks;
        IList<ContainerListResponse> listed;
        try
        {
            rawNetworks = await docker.Networks.ListNetworksAsync(new NetworksListParameters(), ct).ConfigureAwait(false);
            listed = await docker.Containers.ListContainersAsync(new ContainersListParameters { All = true }, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsEngineDown(ex))
        {
            throw new EngineUnavailableException($"the Docker engine at {_options.DockerEndpoint} did not answer: {ex.Message.TrimEnd('.')}", ex);
        }

        var networks = rawNetworks.Select(ToNetwork).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        var containers = new List<DockerContainer>(listed.Count);
        foreach (var c in listed)
        {
            ContainerInspectResponse inspect;
            try
            {
                inspect = await docker.Containers.InspectContainerAsync(c.ID, ct).ConfigureAwait(false);
            }
            catch (DockerContainerNotFoundException)
            {
                continue; // removed between list and inspect
            }

            containers.Add(await ToContainerAsync(inspect, c, networks, hostLinks, warnings, ct).ConfigureAwait(false));
        }

        containers.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        var bridges = VethPairMatcher.Bridges(hostLinks, networks, containers);
        return new HostTopology(engine, networks, containers, bridges, hostLinks, DateTimeOffset.UtcNow, warnings);
    }

    private async Task<EngineInfo> ReadEngineAsync(List<string> warnings, CancellationToken ct)
    {
        VersionResponse version;
        SystemInfoResponse info;
        try
        {
            version = await docker.System.GetVersionAsync(ct).ConfigureAwait(false);
            info = await docker.System.GetSystemInfoAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsEngineDown(ex))
        {
            throw new EngineUnavailableException($"the Docker engine at {_options.DockerEndpoint} did not answer: {ex.Message.TrimEnd('.')}", ex);
        }

        var iptablesVersion = await ReadIptablesVersionAsync(ct).ConfigureAwait(false);
        FirewallBackend backend;
        string source;
        var reported = info.FirewallBackend?.Driver;
        if (!string.IsNullOrEmpty(reported))
        {
            source = $"engine /info FirewallBackend.Driver = {reported}";
            backend = reported.Contains("nftables", StringComparison.OrdinalIgnoreCase) && !reported.Contains("iptables", StringComparison.OrdinalIgnoreCase)
                ? FirewallBackend.Nftables
                : FromIptablesVersion(iptablesVersion);
        }
        else if (iptablesVersion is not null)
        {
            backend = FromIptablesVersion(iptablesVersion);
            source = "from `iptables -V` (this engine's /info has no FirewallBackend)";
        }
        else
        {
            backend = FirewallBackend.Unknown;
            source = "neither the engine's /info nor `iptables -V` said";
            warnings.Add("iptables is not installed or cannot run: the firewall backend is unknown");
        }

        bool? brNf = null;
        try
        {
            var text = await File.ReadAllTextAsync("/proc/sys/net/bridge/bridge-nf-call-iptables", ct).ConfigureAwait(false);
            brNf = text.Trim() == "1";
        }
        catch (IOException)
        {
            // br_netfilter not loaded: intra-bridge traffic does not pass iptables.
        }
        catch (UnauthorizedAccessException)
        {
        }

        return new EngineInfo(
            version.Version,
            version.APIVersion,
            version.MinAPIVersion,
            info.OperatingSystem ?? version.Os,
            info.KernelVersion ?? version.KernelVersion,
            version.Arch,
            backend,
            source,
            iptablesVersion,
            brNf);
    }

    private static FirewallBackend FromIptablesVersion(string? v) =>
        v is null ? FirewallBackend.Unknown
        : v.Contains("nf_tables", StringComparison.Ordinal) ? FirewallBackend.IptablesNft
        : v.Contains("legacy", StringComparison.Ordinal) ? FirewallBackend.IptablesLegacy
        : FirewallBackend.Unknown;

    private async Task<string?> ReadIptablesVersionAsync(CancellationToken ct)
    {
        try
        {
            var r = await runner.RunAsync(_options.Iptables, ["-V"], _options.CommandTimeout, ct).ConfigureAwait(false);
            return r.Succeeded ? r.StdOut.Trim() : null;
        }
        catch (ProcessFailedException)
        {
            return null;
        }
    }

    private async Task<IReadOnlyList<IpLink>> ReadHostLinksAsync(List<string> warnings, CancellationToken ct)
    {
        try
        {
            // addr rather than link: the same links and details, with each interface's addresses (a bridge's is its
            // network's gateway, also when Docker's IPAM config names none).
            var r = await runner.RunAsync(_options.Ip, ["-j", "-d", "addr", "show"], _options.CommandTimeout, ct).ConfigureAwait(false);
            if (r.Succeeded)
            {
                return IpLink.ParseJson(r.StdOut);
            }

            warnings.Add($"`ip -j -d addr show` failed: {r.Message}");
        }
        catch (Exception ex) when (ex is ProcessFailedException or JsonException or FormatException)
        {
            warnings.Add($"host interfaces not read: {ex.Message}");
        }

        return [];
    }

    private static DockerNetwork ToNetwork(NetworkResponse n)
    {
        var options = (IReadOnlyDictionary<string, string>?)n.Options?.ToDictionary() ?? new Dictionary<string, string>();
        var subnets = n.IPAM?.Config?.Select(c => new NetworkSubnet(c.Subnet, string.IsNullOrEmpty(c.Gateway) ? null : c.Gateway)).ToList() ?? [];
        return new DockerNetwork(
            n.ID,
            n.Name,
            n.Driver,
            n.Scope,
            DockerNetwork.BridgeNameFor(n.Driver, n.ID, options),
            subnets,
            n.Internal,
            DockerNetwork.IccFrom(options),
            n.EnableIPv6,
            n.Created == default ? null : new DateTimeOffset(n.Created.ToUniversalTime()),
            options,
            (IReadOnlyDictionary<string, string>?)n.Labels?.ToDictionary() ?? new Dictionary<string, string>());
    }

    private async Task<DockerContainer> ToContainerAsync(
        ContainerInspectResponse i,
        ContainerListResponse listed,
        IReadOnlyList<DockerNetwork> networks,
        IReadOnlyList<IpLink> hostLinks,
        List<string> warnings,
        CancellationToken ct)
    {
        var name = i.Name.TrimStart('/');
        var pid = i.State?.Pid is > 0 ? (int?)i.State.Pid : null;
        IReadOnlyList<IpLink> inner = [];
        if (pid is not null)
        {
            inner = await ReadContainerLinksAsync(name, i.NetworkSettings?.SandboxKey, pid.Value, warnings, ct).ConfigureAwait(false);
        }

        var endpoints = new List<ContainerEndpoint>();
        foreach (var (netName, ep) in i.NetworkSettings?.Networks ?? new Dictionary<string, EndpointSettings>())
        {
            var mac = string.IsNullOrEmpty(ep.MacAddress) ? null : ep.MacAddress;
            var iface = mac is null ? null : inner.FirstOrDefault(l => string.Equals(l.MacAddress, mac, StringComparison.OrdinalIgnoreCase));
            VethPair? veth = null;
            if (iface is not null)
            {
                veth = VethPairMatcher.Match(iface, hostLinks);
                if (veth is null)
                {
                    warnings.Add($"{name}: no host veth matches {iface.Name} (ifindex {iface.IfIndex}, iflink {iface.LinkIndex})");
                }
            }
            else if (pid is not null && inner.Count > 0)
            {
                warnings.Add($"{name}: no interface in its namespace has the endpoint's MAC {mac ?? "(none)"} on {netName}");
            }

            var networkId = string.IsNullOrEmpty(ep.NetworkID) ? networks.FirstOrDefault(n => n.Name == netName)?.Id ?? "" : ep.NetworkID;
            endpoints.Add(new ContainerEndpoint(
                networkId,
                netName,
                string.IsNullOrEmpty(ep.EndpointID) ? null : ep.EndpointID,
                string.IsNullOrEmpty(ep.IPAddress) ? null : ep.IPAddress,
                ep.IPPrefixLen > 0 ? (int)ep.IPPrefixLen : null,
                string.IsNullOrEmpty(ep.GlobalIPv6Address) ? null : ep.GlobalIPv6Address,
                mac,
                string.IsNullOrEmpty(ep.Gateway) ? null : ep.Gateway,
                veth));
        }

        endpoints.Sort((a, b) => string.CompareOrdinal(a.NetworkName, b.NetworkName));
        return new DockerContainer(
            i.ID,
            name,
            i.Config?.Image ?? listed.Image,
            i.State?.Status ?? listed.State,
            listed.Status,
            pid,
            i.Created == default ? null : new DateTimeOffset(i.Created.ToUniversalTime()),
            endpoints,
            (IReadOnlyDictionary<string, string>?)i.Config?.Labels?.ToDictionary() ?? new Dictionary<string, string>());
    }

    /// <summary>
    /// Lists the interfaces inside a container's network namespace (<c>nsenter --net=... ip -j link show</c>): through
    /// its sandbox key, and where that cannot be entered through <c>/proc/PID/ns/net</c> of its first process. An
    /// engine in a mount namespace of its own (a second engine beside the system's) keeps its sandbox keys as mounts
    /// there; from outside, the file exists but nsenter answers "Invalid argument".
    /// </summary>
    internal async Task<IReadOnlyList<IpLink>> ReadContainerLinksAsync(string name, string? sandboxKey, int pid, List<string> warnings, CancellationToken ct)
    {
        var candidates = new List<string>(2);
        if (!string.IsNullOrEmpty(sandboxKey) && File.Exists(sandboxKey))
        {
            candidates.Add(sandboxKey);
        }

        candidates.Add($"/proc/{pid}/ns/net");
        var failures = new List<string>(2);
        foreach (var ns in candidates)
        {
            try
            {
                var r = await runner.RunAsync(_options.Nsenter, [$"--net={ns}", _options.Ip, "-j", "link", "show"], _options.CommandTimeout, ct).ConfigureAwait(false);
                if (r.Succeeded)
                {
                    return IpLink.ParseJson(r.StdOut);
                }

                failures.Add($"{ns}: {r.Message}");
            }
            catch (Exception ex) when (ex is ProcessFailedException or JsonException or FormatException)
            {
                failures.Add($"{ns}: {ex.Message}");
                logger.LogDebug(ex, "nsenter failed for {Container}", name);
            }
        }

        warnings.Add($"{name}: cannot list interfaces in its namespace: {string.Join("; ", failures)}");
        return [];
    }

    internal static bool IsEngineDown(Exception ex) =>
        ex is HttpRequestException or System.Net.Sockets.SocketException or TimeoutException or IOException
        || (ex is DockerApiException)
        || (ex.InnerException is not null && IsEngineDown(ex.InnerException));
}
