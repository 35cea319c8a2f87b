using Xunit;

namespace Dashboard.TestSupport;

/// <summary>
/// The Redis the replica tests use: <c>LAB_REDIS</c> (a StackExchange.Redis configuration string or a socket's path),
/// else the socket <c>scripts/redis.sh start</c> wrote in /run/netlab-redis (lab-setup starts it). Tests use channel
/// prefixes of their own. Absent, such tests skip, unless LAB_REQUIRE_DOCKER=1 (CI): then they fail.
/// </summary>
public static class RedisServer
{
    private static readonly Lazy<string?> Found = new(() =>
        Environment.GetEnvironmentVariable("LAB_REDIS") is { Length: > 0 } set ? set
        : File.Exists("/run/netlab-redis/connection") ? File.ReadAllText("/run/netlab-redis/connection").Trim() : null);

    /// <summary>The connection (Redis:Connection), or null when no server is known.</summary>
    public static string? Connection => Found.Value;

    /// <summary>Call first in a [SkippableFact] that needs Redis.</summary>
    public static string Require()
    {
        if (Found.Value is { } c)
        {
            return c;
        }

        const string how = "set LAB_REDIS or run scripts/redis.sh start as root (lab-setup does)";
        if (RealHost.Required)
        {
            throw new InvalidOperationException($"LAB_REQUIRE_DOCKER=1 but no Redis server is known: {how}");
        }

        throw new SkipException($"needs Redis: {how}");
    }
}
