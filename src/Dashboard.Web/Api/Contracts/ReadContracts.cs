using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;

namespace Dashboard.Web.Api;

// The wire shapes of ReadApi (JSON requests and responses): records only, no behaviour beyond building them.

public sealed record HostSummary(EngineInfo Engine, int Networks, int Containers, int RunningContainers, int Bridges, DateTimeOffset ReadAt, IReadOnlyList<string> Warnings);

public sealed record FirewallResponse(
    DateTimeOffset ReadAt,
    double ReadMilliseconds,
    FirewallBackend Backend,
    DockerLayout Layout,
    IReadOnlyList<string> Commands,
    IReadOnlyList<string> Warnings,
    RulesetDto Ruleset);

public sealed record ParseResponse(DockerLayout Layout, RulesetDto Ruleset);

/// <summary>Configuration section "Api".</summary>
public sealed class ApiOptions
{
    public const string Section = "Api";

    /// <summary>Largest dump <c>POST /api/firewall/parse</c> accepts.</summary>
    public long MaxDumpBytes { get; set; } = 16 * 1024 * 1024;
}
