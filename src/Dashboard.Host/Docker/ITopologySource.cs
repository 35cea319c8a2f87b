using Dashboard.Core.Topology;

namespace Dashboard.Host.Docker;

/// <summary>Where the host's current topology comes from (the engine; a double in tests).</summary>
public interface ITopologySource
{
    Task<HostTopology> ReadAsync(CancellationToken ct = default);
}
