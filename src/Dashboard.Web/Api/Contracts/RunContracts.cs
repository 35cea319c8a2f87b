using System.Text.Json;
using Dashboard.Data.Entities;

namespace Dashboard.Web.Api;

public sealed record ExperimentDto(Guid Id, string Name, string? Description, bool BuiltIn, string CreatedBy, DateTimeOffset CreatedAt, string? Origin, JsonElement Scenario)
{
    public static ExperimentDto From(Experiment e) => new(e.Id, e.Name, e.Description, e.BuiltIn, e.CreatedBy, e.CreatedAt, e.Origin, JsonSerializer.Deserialize<JsonElement>(e.ScenarioJson));
}

public sealed record CreateExperimentRequest(string? Name, string? Description, JsonElement Scenario, int? Lab = null);

/// <summary>A run of one variant; <paramref name="Hosts"/> names the hosts to run it on side by side (none: the dashboard's own).</summary>
public sealed record StartRunRequest(Guid ExperimentId, string? Variant, bool? Keep, IReadOnlyList<string>? Hosts = null);

/// <summary>The first run's id, and every run started with its host.</summary>
public sealed record StartRunResponse(Guid Id, IReadOnlyList<StartedRun> Runs);

public sealed record StartedRun(string Host, Guid Id);
