using Npgsql;
using Xunit;

namespace Dashboard.TestSupport;

/// <summary>
/// The PostgreSQL server the tests on that provider use: <c>LAB_POSTGRES</c> (an Npgsql connection string of a user
/// that may create databases), else the one <c>scripts/postgres.sh start</c> wrote in /run/netlab-postgres (lab-setup
/// starts it). Each test gets
/// a database of its own, dropped afterwards. Absent, such tests skip, unless LAB_REQUIRE_DOCKER=1 (CI): then they fail.
/// </summary>
public static class PostgresServer
{
    private static readonly Lazy<string?> Admin = new(Find);

    /// <summary>The administrative connection string, or null when no server is known.</summary>
    public static string? ConnectionString => Admin.Value;

    /// <summary>Call first in a [SkippableFact] or [SkippableTheory] case that needs PostgreSQL.</summary>
    public static void Require()
    {
        if (Admin.Value is not null)
        {
            return;
        }

        const string how = "set LAB_POSTGRES or run scripts/postgres.sh start as root (lab-setup does)";
        if (RealHost.Required)
        {
            throw new InvalidOperationException($"LAB_REQUIRE_DOCKER=1 but no PostgreSQL server is known: {how}");
        }

        throw new SkipException($"needs PostgreSQL: {how}");
    }

    /// <summary>
    /// Makes an empty database of its own (named <paramref name="prefix"/> and a random part; or exactly
    /// <paramref name="prefix"/> with <paramref name="ifMissing"/>, kept when it exists); returns its connection string.
    /// </summary>
    public static async Task<string> CreateDatabaseAsync(string prefix = "netlab_t", bool ifMissing = false)
    {
        Require();
        var name = ifMissing ? prefix : $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 13, 63)];
        await using (var c = new NpgsqlConnection(Admin.Value))
        {
            await c.OpenAsync();
            await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = $1", c) { Parameters = { new() { Value = name } } };
            if (!ifMissing || await exists.ExecuteScalarAsync() is null)
            {
                await using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", c);
                await cmd.ExecuteNonQueryAsync();
            }
        }

        return new NpgsqlConnectionStringBuilder(Admin.Value) { Database = name }.ConnectionString;
    }

    /// <summary>Drops a database <see cref="CreateDatabaseAsync"/> made, closing what still uses it.</summary>
    public static async Task DropDatabaseAsync(string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database;
        if (Admin.Value is null || name is null || !name.StartsWith("netlab_", StringComparison.Ordinal))
        {
            return;
        }

        await using (var own = new NpgsqlConnection(connectionString))
        {
            NpgsqlConnection.ClearPool(own);
        }

        await using var c = new NpgsqlConnection(Admin.Value);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", c);
        await cmd.ExecuteNonQueryAsync();
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> AtExit = new(StringComparer.Ordinal);

    /// <summary>A database kept across restarts within a test (a kept data folder): dropped when the test process ends.</summary>
    public static void DropAtExit(string connectionString)
    {
        if (AtExit.IsEmpty)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                foreach (var cs in AtExit.Keys)
                {
                    try
                    {
                        DropDatabaseAsync(cs).GetAwaiter().GetResult();
                    }
                    catch (NpgsqlException)
                    {
                        // The throwaway server may be gone already; it removes everything when it stops.
                    }
                }
            };
        }

        AtExit.TryAdd(connectionString, true);
    }

    private static string? Find()
    {
        if (Environment.GetEnvironmentVariable("LAB_POSTGRES") is { Length: > 0 } env)
        {
            return env;
        }

        // Under /run (root's): no other user can plant a file there that points the tests elsewhere.
        const string file = "/run/netlab-postgres/connection";
        if (!File.Exists(file))
        {
            return null;
        }

        var cs = File.ReadAllText(file).Trim();
        try
        {
            using var c = new NpgsqlConnection(cs);
            c.Open();
            return cs;
        }
        catch (Exception ex) when (ex is NpgsqlException or IOException or System.Net.Sockets.SocketException)
        {
            return null;
        }
    }
}
