using Dashboard.Core.Changes;

namespace Dashboard.Web.Api;

// The wire shapes of ChangeApi (JSON requests and responses): records only, no behaviour beyond building them.

/// <summary>A proposal; <paramref name="Host"/> names an agent host (none: the dashboard's own).</summary>
public sealed record ProposeChangeRequest(int? Lab, ChangeRule? Rule, string? Rationale, int? TtlSeconds, string? Host = null);

public sealed record DecisionRequest(string? Note);

/// <summary>Body of <c>POST /api/changes/{id}/stage</c>: how long the staged rule counts (30 s to 24 h; empty: an hour).</summary>
public sealed record StageRequest(int? TtlSeconds);
