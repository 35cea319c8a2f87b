using System.Globalization;
using Dashboard.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Npgsql;

namespace Dashboard.Web;

/// <summary>
/// <c>dotnet Dashboard.Web.dll move-to-postgres [--to CONNECTION]</c>: moves the installation configured now (its
/// SQLite database) into an empty PostgreSQL database (migrated first), prints every table's rows on both sides and
/// fails unless they are equal; the SQLite file is only read. The connection string comes from <c>--to</c> or, so a
/// password stays out of the process list, the environment variable <c>NETLAB_MOVE_TO</c>. Pcaps and data-protection
/// keys stay in the data folder, which the PostgreSQL installation keeps using.
/// </summary>
public static class DataMoveCommand
{
    public const string Name = "move-to-postgres";

    /// <summary>Runs the command; returns the process exit code (0 moved and counted equal, 1 failed, 2 usage).</summary>
    public static async Task<int> RunAsync(string[] args, IConfiguration configuration, TextWriter output, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        string? to = Environment.GetEnvironmentVariable("NETLAB_MOVE_TO");
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--to" when i + 1 < args.Length:
                    to = args[++i];
                    break;
                default:
                    await output.WriteLineAsync($"{Name}: unknown argument '{args[i]}'. Usage: {Name} [--to \"Host=...;Database=...;Username=...\"] (or NETLAB_MOVE_TO)").ConfigureAwait(false);
                    return 2;
            }
        }

        if (string.IsNullOrWhiteSpace(to))
        {
            await output.WriteLineAsync($"{Name}: no target: pass --to \"Host=...;Database=...;Username=...\" or set NETLAB_MOVE_TO").ConfigureAwait(false);
            return 2;
        }

        var options = configuration.GetSection(DataOptions.Section).Get<DataOptions>() ?? new DataOptions();
        string sourceConnection;
        try
        {
            if (options.ResolveProvider() != DataOptions.Sqlite)
            {
                await output.WriteLineAsync($"{Name}: Data:Provider is '{options.Provider}': the move reads a SQLite installation (run it with that installation's configuration)").ConfigureAwait(false);
                return 2;
            }

            sourceConnection = options.ResolveConnectionString();
            _ = new NpgsqlConnectionStringBuilder(to);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException)
        {
            await output.WriteLineAsync($"{Name}: {ex.Message}").ConfigureAwait(false);
            return 2;
        }

        var file = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(sourceConnection).DataSource;
        if (!File.Exists(file))
        {
            await output.WriteLineAsync($"{Name}: no SQLite database at {file}: nothing to move").ConfigureAwait(false);
            return 1;
        }

        DashboardDbContext Source() => new(Options(DataOptions.Sqlite, sourceConnection));
        DashboardDbContext Target() => new(Options(DataOptions.Postgres, to));
        try
        {
            await output.WriteLineAsync($"{Name}: from {file} to database '{new NpgsqlConnectionStringBuilder(to).Database}' on {new NpgsqlConnectionStringBuilder(to).Host}").ConfigureAwait(false);
            await using (var t = Target())
            {
                // Asked without a query that fails (and logs an error) on a database with no history yet.
                var history = t.GetService<Microsoft.EntityFrameworkCore.Migrations.IHistoryRepository>();
                var before = await history.ExistsAsync(ct).ConfigureAwait(false) ? (await history.GetAppliedMigrationsAsync(ct).ConfigureAwait(false)).Count : 0;
                await t.Database.MigrateAsync(ct).ConfigureAwait(false);
                var after = (await t.Database.GetAppliedMigrationsAsync(ct).ConfigureAwait(false)).Count();
                await output.WriteLineAsync($"  target migrated ({after - before} migration(s) applied, {after} in all)").ConfigureAwait(false);
            }

            var started = System.Diagnostics.Stopwatch.StartNew();
            var counts = await DatabaseMove.CopyAsync(Source, Target, (table, rows) =>
            {
                if (rows > 0)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {table}: {rows:N0} rows copied"));
                }
            }, ct).ConfigureAwait(false);

            await output.WriteLineAsync($"  {"table",-28} {"SQLite",12} {"PostgreSQL",12}").ConfigureAwait(false);
            foreach (var c in counts)
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {c.Table,-28} {c.Source,12:N0} {c.Target,12:N0}{(c.Same ? "" : "  DIFFERENT")}")).ConfigureAwait(false);
            }

            var pcaps = await PcapsAsync(Source, options.ResolveDirectory(), ct).ConfigureAwait(false);
            await output.WriteLineAsync($"  run pcaps: {pcaps.Referenced} referenced, {pcaps.Present} present in {options.ResolveDirectory()} (they stay there: keep Data:Directory)").ConfigureAwait(false);
            if (counts.Any(c => !c.Same))
            {
                await output.WriteLineAsync($"{Name}: FAILED: the counts differ ({string.Join(", ", counts.Where(c => !c.Same).Select(c => c.Table))})").ConfigureAwait(false);
                return 1;
            }

            var rows = counts.Sum(c => c.Source);
            await using (var t = Target())
            {
                t.AuditEntries.Add(new Data.Entities.AuditEntry
                {
                    At = DateTimeOffset.UtcNow,
                    Actor = "system",
                    Action = "data.moved",
                    Detail = string.Create(CultureInfo.InvariantCulture, $"moved from SQLite {file}: {rows:N0} rows in {counts.Count} tables, every table counted equal on both sides; {pcaps.Present} of {pcaps.Referenced} run pcaps in the data folder"),
                });
                await t.SaveChangesAsync(ct).ConfigureAwait(false);
            }

            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{Name}: done: {rows:N0} rows in {counts.Count} tables, equal on both sides, in {started.Elapsed.TotalSeconds:0.0} s. Now run with Data__Provider=postgres and Data__ConnectionString=<the target>, same Data__Directory.")).ConfigureAwait(false);
            return 0;
        }
        catch (Exception ex) when (ex is DatabaseMoveException or DbUpdateException or NpgsqlException or Microsoft.Data.Sqlite.SqliteException or InvalidOperationException)
        {
            await output.WriteLineAsync($"{Name}: FAILED: {ex.GetBaseException().Message} (the SQLite database was only read; drop the target database before trying again)").ConfigureAwait(false);
            return 1;
        }
    }

    private static DbContextOptions<DashboardDbContext> Options(string provider, string connection)
    {
        var b = new DbContextOptionsBuilder<DashboardDbContext>();
        ServiceCollectionExtensions.Use(b, provider, connection);
        return b.Options;
    }

    private static async Task<(int Referenced, int Present)> PcapsAsync(Func<DashboardDbContext> source, string folder, CancellationToken ct)
    {
        await using var db = source();
        var files = await db.RunCaptures.Where(c => c.PcapFile != null).Select(c => c.PcapFile!).ToListAsync(ct).ConfigureAwait(false);
        return (files.Count, files.Count(f => File.Exists(Path.Combine(folder, f))));
    }
}
