using System.Collections.Concurrent;
using System.Security.Claims;
using Dashboard.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Dashboard.Web.Hubs;

/// <summary>
/// Open hub connections keep the principal they connected with, so they are checked again: every 20 s each connection's
/// credentials are re-read from the database (the API token is not revoked or expired; a cookie's security stamp still
/// matches, so no password change or reset since; the account is not locked), and a connection that fails is closed.
/// A revoked token, a lock or a password change thus ends open connections within 60 s. Hub calls are also checked
/// when made (see <see cref="LabHub"/>'s filter registration).
/// </summary>
public sealed class HubSessionGuard(IDbContextFactory<DashboardDbContext> dbs, IOptions<IdentityOptions> identity, ILogger<HubSessionGuard> logger) : BackgroundService, IHubFilter
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(20);

    private readonly ConcurrentDictionary<string, Entry> _connections = new();

    private sealed record Entry(HubCallerContext Context, string UserId, string? TokenHash, string? Stamp)
    {
        /// <summary>When a call last found the credentials good (monotonic ms): calls within 5 s of it are not checked again.</summary>
        public long CheckedAt { get; set; } = Environment.TickCount64;
    }

    public int Count => _connections.Count;

    public async Task OnConnectedAsync(HubLifetimeContext context, Func<HubLifetimeContext, Task> next)
    {
        var http = context.Context.GetHttpContext();
        var user = context.Context.User;

        // The lab hub only: Blazor's own circuit hub is revalidated by the circuit's authentication state provider.
        if (context.Hub is LabHub && user?.FindFirstValue(ClaimTypes.NameIdentifier) is { } id)
        {
            var token = http is null ? null : ApiTokenAuthenticationHandler.TokenOf(http.Request);
            _connections[context.Context.ConnectionId] = new Entry(context.Context, id, token is null ? null : ApiTokenService.Hash(token),
                user.FindFirstValue(identity.Value.ClaimsIdentity.SecurityStampClaimType));
        }

        await next(context);
    }

    public async Task OnDisconnectedAsync(HubLifetimeContext context, Exception? exception, Func<HubLifetimeContext, Exception?, Task> next)
    {
        _connections.TryRemove(context.Context.ConnectionId, out _);
        await next(context, exception);
    }

    /// <summary>Every call is made with credentials that are still good.</summary>
    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocationContext, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        if (_connections.TryGetValue(invocationContext.Context.ConnectionId, out var entry) && Environment.TickCount64 - entry.CheckedAt > 5_000)
        {
            if (await WhyInvalidAsync(entry, invocationContext.Context.ConnectionAborted) is { } why)
            {
                invocationContext.Context.Abort();
                throw new HubException("401: " + why);
            }

            entry.CheckedAt = Environment.TickCount64;
        }

        return await next(invocationContext);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await SweepAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // One failed sweep (the database busy) must not end the guard, or the dashboard with it.
                    logger.LogWarning(ex, "hub session sweep failed; the next one runs in {Interval}", Interval);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Closes every connection whose credentials no longer hold; returns how many.</summary>
    public async Task<int> SweepAsync(CancellationToken ct = default)
    {
        var closed = 0;
        foreach (var (id, entry) in _connections)
        {
            if (await WhyInvalidAsync(entry, ct) is { } why)
            {
                logger.LogInformation("hub connection {Connection} of user {User} closed: {Why}", id, entry.UserId, why);
                entry.Context.Abort();
                _connections.TryRemove(id, out _);
                closed++;
            }
        }

        return closed;
    }

    private async Task<string?> WhyInvalidAsync(Entry e, CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var user = await db.Users.AsNoTracking().Where(u => u.Id == e.UserId).Select(u => new { u.SecurityStamp, u.LockoutEnd }).SingleOrDefaultAsync(ct);
        var now = DateTimeOffset.UtcNow;
        if (user is null)
        {
            return "the account no longer exists";
        }

        if (user.LockoutEnd > now.AddYears(1))
        {
            return "the account is locked";
        }

        if (e.TokenHash is { } hash)
        {
            var token = await db.ApiTokens.AsNoTracking().Where(t => t.Hash == hash).Select(t => new { t.RevokedAt, t.ExpiresAt }).SingleOrDefaultAsync(ct);
            return token is null || token.RevokedAt is not null || token.ExpiresAt <= now ? "the API token was revoked or has expired" : null;
        }

        return e.Stamp is not null && e.Stamp != user.SecurityStamp ? "the password was changed or reset since this connection signed in" : null;
    }
}
