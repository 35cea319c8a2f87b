using System.Text.RegularExpressions;
using Dashboard.App.Access;
using Dashboard.App.Audit;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.Host.Agents;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Dashboard.App.Hosts;

/// <summary>A registered host as listed (never its token).</summary>
public sealed record HostRecord(int Id, string Name, string TokenPrefix, string CreatedBy, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt,
    DateTimeOffset? LastConnectedAt, string? LastAgentVersion, string? LastEngineVersion);

/// <summary>A host as registered: the agent token is in <see cref="Token"/> this once and never again.</summary>
public sealed record RegisteredAgentToken(HostRecord Host, string Token);

/// <summary>A host name that breaks the rules (400, naming the rule).</summary>
public sealed class HostNameException(string message) : Exception(message);

/// <summary>The name is taken (409).</summary>
public sealed class HostConflictException(string message) : Exception(message);

/// <summary>
/// Hosts whose agents may connect: site administrators register one by name (the token is shown once, stored as its
/// SHA-256), and revoke it (its agent is cut off at once and cannot come back with that token). The local host (the
/// embedded collector's, <c>Host:Name</c>) needs no registration and its name cannot be taken.
/// </summary>
public sealed partial class HostRegistry(IDbContextFactory<DashboardDbContext> dbs, AuditLog audit, IOptions<Dashboard.Host.DockerHostOptions> local)
{
    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}$")]
    private static partial Regex NameRule();

    /// <summary>Raised after a host's token was revoked, so its live connection is ended.</summary>
    public event Action<string>? Revoked;

    public static bool IsValidName(string? name) => name is not null && NameRule().IsMatch(name);

    public async Task<RegisteredAgentToken> RegisterAsync(Actor actor, string? name, CancellationToken ct = default)
    {
        await RequireAdministratorAsync(actor, "host.register", name, ct).ConfigureAwait(false);
        name = name?.Trim() ?? "";
        if (!IsValidName(name))
        {
            throw new HostNameException("a host name is 1-63 lowercase letters, digits and '-', starting with a letter or digit");
        }

        if (string.Equals(name, local.Value.Name, StringComparison.OrdinalIgnoreCase))
        {
            throw new HostConflictException($"'{name}' is this dashboard's own host (Host:Name): its collector runs in the dashboard and needs no agent");
        }

        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        if (await db.Hosts.AnyAsync(h => h.Name == name, ct).ConfigureAwait(false))
        {
            throw new HostConflictException($"a host named '{name}' is already registered (a revoked name is not given out again)");
        }

        var token = Secrets.NewToken(AgentProtocol.TokenPrefix);
        var entity = new RegisteredHost { Name = name, TokenHash = Secrets.Hash(token), TokenPrefix = token[..10], CreatedBy = actor.Name, CreatedAt = DateTimeOffset.UtcNow };
        db.Hosts.Add(entity);
        try
        {
            await db.SaveChangesAsync(ct).ConfigureAwait(false);
        }
        catch (DbUpdateException)
        {
            // Registered by another request a moment ago (the unique index holds).
            throw new HostConflictException($"a host named '{name}' is already registered (a revoked name is not given out again)");
        }

        await audit.WriteAsync(actor, "host.registered", $"host {name}", $"host '{name}' registered; agent token {entity.TokenPrefix}… issued", host: name, ct: ct).ConfigureAwait(false);
        return new RegisteredAgentToken(Record(entity), token);
    }

    public async Task<IReadOnlyList<HostRecord>> ListAsync(CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var list = await db.Hosts.AsNoTracking().OrderBy(h => h.Name).ToListAsync(ct).ConfigureAwait(false);
        return [.. list.Select(Record)];
    }

    /// <summary>Revokes a host's token; false when no such host is registered.</summary>
    public async Task<bool> RevokeAsync(Actor actor, string name, CancellationToken ct = default)
    {
        await RequireAdministratorAsync(actor, "host.revoke", name, ct).ConfigureAwait(false);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var h = await db.Hosts.SingleOrDefaultAsync(x => x.Name == name, ct).ConfigureAwait(false);
        if (h is null)
        {
            return false;
        }

        if (h.RevokedAt is null)
        {
            h.RevokedAt = DateTimeOffset.UtcNow;
            await db.SaveChangesAsync(ct).ConfigureAwait(false);
            await audit.WriteAsync(actor, "host.revoked", $"host {name}", $"agent token {h.TokenPrefix}… of host '{name}' revoked", host: name, ct: ct).ConfigureAwait(false);
        }

        Revoked?.Invoke(name);
        return true;
    }

    /// <summary>The host a live agent token stands for, or null (malformed, unknown or revoked).</summary>
    public async Task<string?> AuthenticateAsync(string? token, CancellationToken ct = default)
    {
        if (!Secrets.LooksLike(token, AgentProtocol.TokenPrefix))
        {
            return null;
        }

        var hash = Secrets.Hash(token!);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var h = await db.Hosts.AsNoTracking().SingleOrDefaultAsync(x => x.TokenHash == hash, ct).ConfigureAwait(false);
        return h is { RevokedAt: null } ? h.Name : null;
    }

    /// <summary>Whether a host's token is still live (checked again when its agent says hello).</summary>
    public async Task<bool> IsLiveAsync(string name, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        return await db.Hosts.AnyAsync(h => h.Name == name && h.RevokedAt == null, ct).ConfigureAwait(false);
    }

    public async Task RecordConnectedAsync(string name, string agentVersion, string? engineVersion, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var h = await db.Hosts.SingleOrDefaultAsync(x => x.Name == name, ct).ConfigureAwait(false);
        if (h is null)
        {
            return;
        }

        h.LastConnectedAt = DateTimeOffset.UtcNow;
        h.LastAgentVersion = Cut(agentVersion);
        h.LastEngineVersion = engineVersion is null ? h.LastEngineVersion : Cut(engineVersion);
        await db.SaveChangesAsync(ct).ConfigureAwait(false);
    }

    private async Task RequireAdministratorAsync(Actor actor, string action, string? subject, CancellationToken ct)
    {
        if (!actor.IsAdministrator)
        {
            await audit.WriteAsync(actor, action, subject is null ? null : $"host {subject}", "refused: only a site administrator registers and revokes hosts", succeeded: false, ct: ct).ConfigureAwait(false);
            throw new LabAccessException(AccessDenial.Forbidden, "only a site administrator registers and revokes hosts");
        }
    }

    private static string Cut(string s) => s.Length <= 40 ? s : s[..40];

    private static HostRecord Record(RegisteredHost h) =>
        new(h.Id, h.Name, h.TokenPrefix, h.CreatedBy, h.CreatedAt, h.RevokedAt, h.LastConnectedAt, h.LastAgentVersion, h.LastEngineVersion);
}
