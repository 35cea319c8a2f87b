using System.Net;
using Dashboard.Core.Topology;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Options;

namespace Dashboard.Host.Docker;

/// <summary>The engine cannot provide what a run needs (no image, a subnet clash...): why.</summary>
public sealed class ProvisioningException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A network a run made: its engine id, bridge, subnet and gateway.</summary>
public sealed record ProvisionedNetwork(string Name, string Id, string Bridge, string Subnet, string Gateway);

/// <summary>A container a run made, with its address on its network.</summary>
public sealed record ProvisionedContainer(string Name, string Id, string Network, string Address);

/// <summary>
/// Creates and removes a run's lab networks and busybox containers through the Engine API. Everything it makes is
/// labelled <c>netlab.run=&lt;run id&gt;</c> and <c>netlab.instance=&lt;instance&gt;</c>, subnets are /24s inside 172.16.0.0/12
/// chosen clear of every existing network, and removal goes by those labels only.
/// </summary>
public sealed class LabProvisioner(IDockerClient docker, Processes.IProcessRunner runner, IOptions<DockerHostOptions> options)
{
    public const string Image = "busybox:latest";
    public const string RunLabel = "netlab.run";

    /// <summary>The label of the containers and networks a test made (their value: the test's id); such containers are lab containers too.</summary>
    public const string TestLabel = "netlab.test";
    public const string InstanceLabel = "netlab.instance";

    private readonly string _instance = options.Value.InstanceId;

    /// <summary>
    /// Makes sure the lab image exists. No registry is used: when it is missing it is built, as scripts/lab-setup.sh does,
    /// from the host's static busybox (Debian's busybox-static) and its applet links, and imported.
    /// Returns what it did, for the run's record.
    /// </summary>
    public async Task<string> EnsureImageAsync(CancellationToken ct, string image = Image, string busybox = "/bin/busybox")
    {
        try
        {
            await docker.Images.InspectImageAsync(image, ct).ConfigureAwait(false);
            return $"image {image} present";
        }
        catch (DockerImageNotFoundException)
        {
        }

        if (!File.Exists(busybox))
        {
            throw new ProvisioningException($"the image {image} is not on this host, no registry is used, and {busybox} is missing to build it (install busybox-static, or run scripts/lab-setup.sh)");
        }

        var list = await runner.RunAsync(busybox, ["--list"], TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
        if (!list.Succeeded)
        {
            throw new ProvisioningException($"{busybox} --list failed: {list.Message}");
        }

        using var tar = new MemoryStream();
        await using (var writer = new System.Formats.Tar.TarWriter(tar, System.Formats.Tar.TarEntryFormat.Pax, leaveOpen: true))
        {
            await writer.WriteEntryAsync(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.Directory, "bin/") { Mode = (UnixFileMode)0x1ED }, ct).ConfigureAwait(false);
            await writer.WriteEntryAsync(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.Directory, "tmp/") { Mode = (UnixFileMode)0x3FF }, ct).ConfigureAwait(false);
            await using (var binary = File.OpenRead(busybox))
            {
                await writer.WriteEntryAsync(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "bin/busybox") { Mode = (UnixFileMode)0x1ED, DataStream = binary }, ct).ConfigureAwait(false);
            }

            foreach (var applet in list.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(a => a != "busybox" && a.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '[')))
            {
                await writer.WriteEntryAsync(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.SymbolicLink, "bin/" + applet) { LinkName = "busybox" }, ct).ConfigureAwait(false);
            }
        }

        tar.Position = 0;
        var (repo, tag) = image.LastIndexOf(':') is var colon and > 0 ? (image[..colon], image[(colon + 1)..]) : (image, "latest");
        try
        {
            await docker.Images.CreateImageAsync(new ImagesCreateParameters { FromSrc = "-", Repo = repo, Tag = tag, Changes = ["CMD [\"sh\"]", "ENV PATH=/bin"] }, tar, null, new Progress<JSONMessage>(), ct).ConfigureAwait(false);
            await docker.Images.InspectImageAsync(image, ct).ConfigureAwait(false);
        }
        catch (DockerApiException ex)
        {
            throw new ProvisioningException($"the image {image} could not be imported from {busybox}: {ex.ResponseBody?.Trim() ?? ex.Message}", ex);
        }

        return $"image {image} imported from {busybox} (no registry here)";
    }

    public async Task<ProvisionedNetwork> CreateNetworkAsync(string runId, string name, bool isInternal, bool icc, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            var existing = await docker.Networks.ListNetworksAsync(new NetworksListParameters(), ct).ConfigureAwait(false);
            var taken = existing.SelectMany(n => n.IPAM?.Config ?? []).Select(c => IPNetwork.TryParse(c.Subnet ?? "", out var s) ? s : (IPNetwork?)null).OfType<IPNetwork>();
            var subnet = LabSubnetAllocator.Pick(taken) ?? throw new ProvisioningException("no free /24 left inside 172.16.0.0/12");
            var gateway = LabSubnetAllocator.Gateway(subnet).ToString();
            var networkOptions = icc ? new Dictionary<string, string>() : new Dictionary<string, string> { ["com.docker.network.bridge.enable_icc"] = "false" };
            var parameters = new NetworksCreateParameters
            {
                Name = name,
                Driver = "bridge",
                Internal = isInternal,
                Options = networkOptions,
                IPAM = new IPAM { Config = [new IPAMConfig { Subnet = subnet.ToString(), Gateway = gateway }] },
                Labels = Labels(runId),
            };
            try
            {
                var created = await docker.Networks.CreateNetworkAsync(parameters, ct).ConfigureAwait(false);
                return new ProvisionedNetwork(name, created.ID, DockerNetwork.BridgeNameFor("bridge", created.ID, networkOptions)!, subnet.ToString(), gateway);
            }
            catch (DockerApiException ex) when (attempt < 3 && (ex.ResponseBody ?? "").Contains("overlap", StringComparison.OrdinalIgnoreCase))
            {
                // Another process took the subnet between the list and the create: pick again.
            }
            catch (DockerApiException ex)
            {
                throw new ProvisioningException($"network {name} could not be created: {ex.ResponseBody?.Trim() ?? ex.Message}", ex);
            }
        }
    }

    public async Task<ProvisionedContainer> RunContainerAsync(string runId, string name, string network, CancellationToken ct)
    {
        try
        {
            var created = await docker.Containers.CreateContainerAsync(new CreateContainerParameters
            {
                Name = name,
                Image = Image,
                Cmd = ["sleep", "3600"],
                Labels = Labels(runId),
                HostConfig = new HostConfig { NetworkMode = network },
            }, ct).ConfigureAwait(false);
            await docker.Containers.StartContainerAsync(created.ID, new ContainerStartParameters(), ct).ConfigureAwait(false);
            var inspect = await docker.Containers.InspectContainerAsync(created.ID, ct).ConfigureAwait(false);
            var address = inspect.NetworkSettings?.Networks?.TryGetValue(network, out var ep) == true ? ep.IPAddress : null;
            return new ProvisionedContainer(name, created.ID, network, address ?? throw new ProvisioningException($"container {name} got no address on {network}"));
        }
        catch (DockerApiException ex)
        {
            throw new ProvisioningException($"container {name} could not be started: {ex.ResponseBody?.Trim() ?? ex.Message}", ex);
        }
    }

    /// <summary>Removes the containers, then the networks, labelled with this run (or, with null, every run of this instance except <paramref name="keep"/>).</summary>
    public async Task<IReadOnlyList<string>> RemoveAsync(string? runId, IReadOnlySet<string>? keep = null, CancellationToken ct = default)
    {
        var removed = new List<string>();
        var filter = new Dictionary<string, IDictionary<string, bool>>
        {
            ["label"] = new Dictionary<string, bool> { [runId is null ? $"{InstanceLabel}={_instance}" : $"{RunLabel}={runId}"] = true },
        };
        var containers = await docker.Containers.ListContainersAsync(new ContainersListParameters { All = true, Filters = filter }, ct).ConfigureAwait(false);
        foreach (var c in containers.Where(c => keep is null || !c.Labels.TryGetValue(RunLabel, out var r) || !keep.Contains(r)))
        {
            await docker.Containers.RemoveContainerAsync(c.ID, new ContainerRemoveParameters { Force = true }, ct).ConfigureAwait(false);
            removed.Add("container " + string.Join(',', c.Names).TrimStart('/'));
        }

        var networks = await docker.Networks.ListNetworksAsync(new NetworksListParameters { Filters = filter }, ct).ConfigureAwait(false);
        foreach (var n in networks.Where(n => keep is null || !n.Labels.TryGetValue(RunLabel, out var r) || !keep.Contains(r)))
        {
            await docker.Networks.DeleteNetworkAsync(n.ID, ct).ConfigureAwait(false);
            removed.Add("network " + n.Name);
        }

        return removed;
    }

    private Dictionary<string, string> Labels(string runId) => new() { [RunLabel] = runId, [InstanceLabel] = _instance };
}
