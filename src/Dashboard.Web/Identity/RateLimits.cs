using System.Globalization;
using System.Security.Claims;
using System.Threading.RateLimiting;

namespace Dashboard.Web.Identity;

/// <summary>Configuration section "RateLimits": how much of the expensive work one user may ask for, and sign-in attempts.</summary>
public sealed class RateLimitOptions
{
    public const string Section = "RateLimits";

    /// <summary>Explain, what-if, verify, parse, import and run starts: a burst of this many per user, refilled at <see cref="ExpensivePerMinute"/>.</summary>
    public int ExpensiveBurst { get; set; } = 60;

    public int ExpensivePerMinute { get; set; } = 60;

    /// <summary>Sign-in attempts per minute from one client address, and for one account name (whoever tries it).</summary>
    public int SignInPerAddressPerMinute { get; set; } = 20;

    public int SignInPerAccountPerMinute { get; set; } = 10;
}

/// <summary>
/// ASP.NET Core's rate limiter for the expensive routes (per user, or per address before sign-in), answering 429 with
/// <c>Retry-After</c>, and a sign-in throttle per client address and per account name for the login form.
/// </summary>
public static class RateLimits
{
    public const string Expensive = "expensive";

    public static IServiceCollection AddDashboardRateLimits(this IServiceCollection services, IConfiguration configuration)
    {
        var o = configuration.GetSection(RateLimitOptions.Section).Get<RateLimitOptions>() ?? new RateLimitOptions();
        services.AddSingleton(new SignInThrottle(o));
        services.AddSingleton(new PageRateLimiter(o));
        services.AddRateLimiter(r =>
        {
            r.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            r.OnRejected = async (context, ct) =>
            {
                var retry = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)) : 10;
                context.HttpContext.Response.Headers.RetryAfter = retry.ToString(CultureInfo.InvariantCulture);
                await Results.Problem(statusCode: 429, title: "Too many requests", detail: $"this kind of request is limited per user; try again in {retry} s").ExecuteAsync(context.HttpContext);
            };
            r.AddPolicy(Expensive, http => RateLimitPartition.GetTokenBucketLimiter(
                http.User.FindFirstValue(ClaimTypes.NameIdentifier) ?? "address:" + http.Connection.RemoteIpAddress,
                _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = Math.Max(1, o.ExpensiveBurst),
                    TokensPerPeriod = Math.Max(1, o.ExpensivePerMinute / 6),
                    ReplenishmentPeriod = TimeSpan.FromSeconds(10),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                }));
        });
        return services;
    }
}

/// <summary>
/// Sign-in attempts per client address and per account name, each in a one-minute window. Separate from Identity's
/// lockout (5 wrong passwords lock an account for 5 minutes): this slows guessing across many accounts from one place.
/// </summary>
public sealed class SignInThrottle(RateLimitOptions options) : IDisposable
{
    private readonly PartitionedRateLimiter<string> _byAddress = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetFixedWindowLimiter(key,
        _ => new FixedWindowRateLimiterOptions { PermitLimit = Math.Max(1, options.SignInPerAddressPerMinute), Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));

    private readonly PartitionedRateLimiter<string> _byAccount = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetFixedWindowLimiter(key,
        _ => new FixedWindowRateLimiterOptions { PermitLimit = Math.Max(1, options.SignInPerAccountPerMinute), Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));

    /// <summary>Null when the attempt may go ahead, else how long to wait.</summary>
    public TimeSpan? Refuse(string? address, string account)
    {
        using var a = _byAddress.AttemptAcquire(address ?? "unknown");
        using var b = _byAccount.AttemptAcquire(account.ToUpperInvariant());
        if (a.IsAcquired && b.IsAcquired)
        {
            return null;
        }

        var wait = TimeSpan.FromSeconds(60);
        foreach (var lease in new[] { a, b })
        {
            if (!lease.IsAcquired && lease.TryGetMetadata(MetadataName.RetryAfter, out var after) && after < wait)
            {
                wait = after;
            }
        }

        return wait;
    }

    public void Dispose()
    {
        _byAddress.Dispose();
        _byAccount.Dispose();
    }
}

/// <summary>
/// The same per-user budget for the pages' expensive handlers (explain, what-if, verify, import, run start), which run
/// on the circuit and never pass through the HTTP rate limiter.
/// </summary>
public sealed class PageRateLimiter(RateLimitOptions options) : IDisposable
{
    private readonly PartitionedRateLimiter<string> _limiter = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key,
        _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = Math.Max(1, options.ExpensiveBurst),
            TokensPerPeriod = Math.Max(1, options.ExpensivePerMinute / 6),
            ReplenishmentPeriod = TimeSpan.FromSeconds(10),
            QueueLimit = 0,
            AutoReplenishment = true,
        }));

    /// <summary>Null when the user may go ahead, else a sentence saying when to try again.</summary>
    public string? Refuse(Actor actor)
    {
        ArgumentNullException.ThrowIfNull(actor);
        using var lease = _limiter.AttemptAcquire(actor.UserId ?? actor.Name);
        if (lease.IsAcquired)
        {
            return null;
        }

        var wait = lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)) : 10;
        return $"Too many of these requests in a short time: try again in {wait} s.";
    }

    public void Dispose() => _limiter.Dispose();
}
