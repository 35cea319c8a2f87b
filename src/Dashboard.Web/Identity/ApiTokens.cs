using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.App.Audit;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.Web.Identity;

public sealed record TokenInfo(int Id, string Name, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt, string Scope = TokenScopes.Api);

/// <summary>A live token's owner and what the token may do.</summary>
public sealed record ValidToken(DashboardUser User, string Scope);

/// <summary>
/// What a token may do: <see cref="Api"/> everything its owner may; <see cref="Metrics"/> only <c>GET /metrics</c> (a
/// scraper's token: it reads every host's counters and nothing else, and only a site administrator makes one).
/// </summary>
public static class TokenScopes
{
    public const string Api = "api";
    public const string Metrics = "metrics";
    public const string Claim = "netlab:token-scope";
    public static readonly IReadOnlyList<string> All = [Api, Metrics];
}

/// <summary>A token as made: its secret is in <see cref="Token"/> once and never again.</summary>
public sealed record CreatedToken(TokenInfo Info, string Token);

/// <summary>Per-user API tokens: <c>nlt_</c> + 43 random URL-safe characters; the database keeps the SHA-256 only.</summary>
public sealed class ApiTokenService(IDbContextFactory<DashboardDbContext> dbs, AuditLog audit)
{
    public const string TokenPrefix = "nlt_";

    public static string Hash(string token) => Secrets.Hash(token);

    public static bool LooksLikeToken(string? s) => Secrets.LooksLike(s, TokenPrefix);

    public async Task<CreatedToken> CreateAsync(Actor actor, string name, DateTimeOffset? expiresAt, CancellationToken ct = default, string? scope = null)
    {
        scope ??= TokenScopes.Api;
        if (!TokenScopes.All.Contains(scope))
        {
            throw new ArgumentException($"a token's scope is one of {string.Join(", ", TokenScopes.All)}");
        }

        if (scope == TokenScopes.Metrics && !actor.IsAdministrator)
        {
            await audit.WriteAsync(actor, "token.refused", null, "a metrics token reads every host's rules and counters: only a site administrator makes one", succeeded: false, ct: ct).ConfigureAwait(false);
            throw new UnauthorizedAccessException("a metrics token reads every host's rules and counters: only a site administrator makes one");
        }

        name = name?.Trim() ?? "";
        if (name.Length is < 1 or > 100 || name.Any(char.IsControl))
        {
            throw new ArgumentException("a token name is 1-100 printable characters");
        }

        if (expiresAt is { } e && e <= DateTimeOffset.UtcNow)
        {
            throw new ArgumentException("the expiry is in the past");
        }

        var token = Secrets.NewToken(TokenPrefix);
        return await RegisterAsync(actor, name, token, expiresAt, ct, scope).ConfigureAwait(false);
    }

    /// <summary>Registers a token chosen elsewhere (the unattended-install token from configuration).</summary>
    public async Task<CreatedToken> RegisterAsync(Actor actor, string name, string token, DateTimeOffset? expiresAt, CancellationToken ct = default, string scope = TokenScopes.Api)
    {
        if (!LooksLikeToken(token))
        {
            throw new ArgumentException("a token is nlt_ followed by at least 32 letters, digits, '-' or '_'");
        }

        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var entity = new ApiToken { UserId = actor.UserId!, Name = name, Hash = Hash(token), Prefix = token[..10], CreatedAt = DateTimeOffset.UtcNow, ExpiresAt = expiresAt, Scope = scope };
        db.ApiTokens.Add(entity);
        await db.SaveChangesAsync(ct).ConfigureAwait(false);
        await audit.WriteAsync(actor, "token.created", $"token {entity.Id}", $"API token '{name}' ({entity.Prefix}…, scope {scope}) created" + (expiresAt is { } x ? $", expires {x:u}" : ""), ct: ct).ConfigureAwait(false);
        return new CreatedToken(Info(entity), token);
    }

    public async Task<IReadOnlyList<TokenInfo>> ListAsync(Actor actor, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var list = await db.ApiTokens.AsNoTracking().Where(t => t.UserId == actor.UserId).OrderBy(t => t.Id).ToListAsync(ct).ConfigureAwait(false);
        return [.. list.Select(Info)];
    }

    /// <summary>Revokes one of the actor's own tokens; false when it has none with that id.</summary>
    public async Task<bool> RevokeAsync(Actor actor, int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var t = await db.ApiTokens.SingleOrDefaultAsync(x => x.Id == id && x.UserId == actor.UserId, ct).ConfigureAwait(false);
        if (t is null)
        {
            return false;
        }

        if (t.RevokedAt is null)
        {
            t.RevokedAt = DateTimeOffset.UtcNow;
            await db.SaveChangesAsync(ct).ConfigureAwait(false);
            await audit.WriteAsync(actor, "token.revoked", $"token {t.Id}", $"API token '{t.Name}' ({t.Prefix}…) revoked", ct: ct).ConfigureAwait(false);
        }

        return true;
    }

    /// <summary>The user a live token belongs to (not revoked, not expired, user not locked out) and its scope, or null.</summary>
    public async Task<ValidToken?> ValidateAsync(string token, CancellationToken ct = default)
    {
        if (!LooksLikeToken(token))
        {
            return null;
        }

        var hash = Hash(token);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var t = await db.ApiTokens.Include(x => x.User).SingleOrDefaultAsync(x => x.Hash == hash, ct).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow;
        // Locked by an administrator (indefinitely) ends the tokens; the five-minute lockout after wrong passwords is
        // whoever typed them, and must not take the owner's scripts offline.
        if (t?.User is null || t.RevokedAt is not null || t.ExpiresAt <= now || t.User.LockoutEnd > now.AddYears(1))
        {
            return null;
        }

        if (t.LastUsedAt is null || now - t.LastUsedAt > TimeSpan.FromMinutes(1))
        {
            t.LastUsedAt = now;
            await db.SaveChangesAsync(ct).ConfigureAwait(false);
        }

        return new ValidToken(t.User, t.Scope);
    }

    private static TokenInfo Info(ApiToken t) => new(t.Id, t.Name, t.Prefix, t.CreatedAt, t.LastUsedAt, t.ExpiresAt, t.RevokedAt, t.Scope);
}
