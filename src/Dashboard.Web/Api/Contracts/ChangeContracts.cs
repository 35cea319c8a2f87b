using Dashboard.Core.Changes;

namespace Dashboard.Web.Api;

// The wire shapes of ChangeApi (JSON requests and responses): records only, no behaviour beyond building them.

public sealed record ProposeChangeRequest(int? Lab, ChangeRule? Rule, string? Rationale, int? TtlSeconds);

public sealed record DecisionRequest(string? Note);
