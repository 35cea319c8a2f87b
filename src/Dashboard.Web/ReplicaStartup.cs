using Dashboard.Data;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.Web;

/// <summary>
/// What a dashboard does before serving (migrations, the default lab, the administrator from configuration, a
/// usable data-protection key), one replica at a time: with PostgreSQL under an advisory lock, so replicas starting
/// together on one database neither race on the first rows nor each make a key of their own (a replica keeps its key
/// ring cached and would refuse the other's cookies until a refresh, up to a day later). With SQLite there is one
/// process: the steps simply run.
/// </summary>
public static class ReplicaStartup
{
    /// <summary>The advisory lock's key ("netlabst").</summary>
    public const long LockKey = 0x6E65746C61627374;

    public static async Task RunAsync(IServiceProvider services, Func<Task> steps, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(steps);
        var dbs = services.GetRequiredService<IDbContextFactory<DashboardDbContext>>();
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        if (!db.Database.IsNpgsql())
        {
            await steps().ConfigureAwait(false);
            return;
        }

        // A session lock on this context's own connection, held through the steps.
        await db.Database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_lock({LockKey})", ct).ConfigureAwait(false);
        try
        {
            await steps().ConfigureAwait(false);
            var keys = services.GetRequiredService<IKeyManager>();
            var now = DateTimeOffset.UtcNow;
            if (!keys.GetAllKeys().Any(k => !k.IsRevoked && k.ActivationDate <= now && k.ExpirationDate > now.AddDays(2)))
            {
                keys.CreateNewKey(now, now.AddDays(90));
            }
        }
        finally
        {
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_unlock({LockKey})", CancellationToken.None).ConfigureAwait(false);
        }
    }
}
