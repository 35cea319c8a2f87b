using Dashboard.Core.Topology;
using Dashboard.Host;
using Dashboard.Host.Docker;
using Dashboard.Host.Processes;
using Docker.DotNet;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Dashboard.TestSupport;

/// <summary>Topology sources for tests: the real engine's, or a fixed one naming the bridges a test allows.</summary>
public static class RealTopology
{
    /// <summary>The local engine's topology, read as the dashboard reads it.</summary>
    public static DockerTopologyReader Reader()
    {
        var options = Options.Create(new DockerHostOptions());
        var docker = new DockerClientBuilder().WithEndpoint(new Uri(options.Value.DockerEndpoint)).WithApiVersion(Version.Parse(options.Value.DockerApiVersion)).Build();
        return new DockerTopologyReader(docker, new ProcessRunner(), options, NullLogger<DockerTopologyReader>.Instance);
    }

    /// <summary>A host whose only Docker networks are bridges with these names and subnets.</summary>
    public static ITopologySource Fixed(params (string Bridge, string Subnet)[] bridges) => new FixedTopology(bridges);

    private sealed class FixedTopology((string Bridge, string Subnet)[] bridges) : ITopologySource
    {
        public Task<HostTopology> ReadAsync(CancellationToken ct = default) => Task.FromResult(new HostTopology(
            new EngineInfo("test", "1.41", null, null, null, null, FirewallBackend.IptablesNft, "test", null, null),
            [.. bridges.Select(b => new DockerNetwork(b.Bridge, b.Bridge, "bridge", "local", b.Bridge, [new NetworkSubnet(b.Subnet, null)], false, true, false, null, new Dictionary<string, string>(), new Dictionary<string, string>()))],
            [], [], [], DateTimeOffset.UtcNow, []));
    }
}
