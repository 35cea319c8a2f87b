namespace Dashboard.Data.Entities;

/// <summary>
/// A Docker host whose agent may connect to this dashboard (<c>/hubs/agent</c>). A site administrator registers it by
/// name; the agent token is shown once and only its SHA-256 is kept. The name is the host's identity everywhere (pages,
/// API routes, runs): an agent reports and acts only as the host its token was issued for.
/// </summary>
public sealed class RegisteredHost
{
    public int Id { get; set; }

    /// <summary>1-63 lowercase letters, digits and '-', starting with a letter or digit (usable in a URL path as is).</summary>
    public required string Name { get; set; }

    /// <summary>Lower-case hex SHA-256 of the whole agent token.</summary>
    public required string TokenHash { get; set; }

    /// <summary>The token's first characters, so a person can tell tokens apart.</summary>
    public required string TokenPrefix { get; set; }

    public required string CreatedBy { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset? RevokedAt { get; set; }

    /// <summary>When an agent last completed its handshake, and what it said it was.</summary>
    public DateTimeOffset? LastConnectedAt { get; set; }

    public string? LastAgentVersion { get; set; }

    public string? LastEngineVersion { get; set; }
}
