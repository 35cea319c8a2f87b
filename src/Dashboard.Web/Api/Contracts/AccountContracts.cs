using Dashboard.Data.Entities;
using Dashboard.App.Audit;
using Dashboard.App.Labs;

namespace Dashboard.Web.Api;

// The wire shapes of AccountApi (JSON requests and responses): records only, no behaviour beyond building them.

/// <summary>A new token; <paramref name="Scope"/> "api" (the default) or "metrics" (GET /metrics only; site administrators).</summary>
public sealed record CreateTokenRequest(string? Name, DateTimeOffset? ExpiresAt, string? Scope = null);

public sealed record CreateLabRequest(string? Name, string? Description);

public sealed record SetMemberRequest(string? UserName, LabRole Role);

public sealed record LabSettingsRequest(bool AllowSelfApprovalWhenAlone);

/// <summary>The hosts a lab's runs and changes may go to; null: every host.</summary>
public sealed record LabHostsRequest(IReadOnlyList<string>? Hosts);

public sealed record CreateUserRequest(string? UserName, string? Password, bool Administrator);

public sealed record ResetPasswordRequest(string? Password);

public sealed record MeResponse(string Id, string Name, bool IsAdministrator, IReadOnlyList<LabMembership> Labs);

public sealed record AuditQuery(string? User, string? Action, int? Lab, string? Text, DateTimeOffset? From, DateTimeOffset? To, bool? Failed, int? Page, int? PageSize, string? Host = null)
{
    public AuditFilter ToFilter() => new(User, Action, Lab, Text, From, To, Failed, Page ?? 1, PageSize ?? 50, Host);
}
