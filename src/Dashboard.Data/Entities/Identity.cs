using Microsoft.AspNetCore.Identity;

namespace Dashboard.Data.Entities;

/// <summary>A local account (ASP.NET Core Identity).</summary>
public sealed class DashboardUser : IdentityUser
{
    /// <summary>Site administrator: creates accounts and labs. Seeing a lab's content still needs membership.</summary>
    public bool IsAdministrator { get; set; }

    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>
/// A per-user API token for scripts (<c>Authorization: Bearer nlt_...</c>). Only its SHA-256 is stored; the token itself
/// is shown once, when it is made.
/// </summary>
public sealed class ApiToken
{
    public int Id { get; set; }
    public required string UserId { get; set; }
    public required string Name { get; set; }

    /// <summary>Lower-case hex SHA-256 of the whole token.</summary>
    public required string Hash { get; set; }

    /// <summary>The first characters of the token, so a person can tell tokens apart.</summary>
    public required string Prefix { get; set; }

    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? LastUsedAt { get; set; }
    public DateTimeOffset? ExpiresAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }

    /// <summary>What the token may do: "api" (everything its owner may) or "metrics" (GET /metrics only).</summary>
    public string Scope { get; set; } = "api";

    public DashboardUser? User { get; set; }
}
