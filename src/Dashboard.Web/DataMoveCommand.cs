using System.Globalization;
using Dashboard.Data;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Dashboard.Web;

/// <summary>
/// <c>dotnet Dashboard.Web.dll move-to-postgres [--to CONNECTION]</c>: moves the installation configured now (its
/// SQLite database) into an empty PostgreSQL database (migrated first), prints every table's rows on both sides and
/// fails unless they are equal; the SQLite file is not changed (it is locked for writing while it is read). The
/// connection string comes from <c>--to</c> or, so a password stays out of the process list, the environment variable
/// <c>NETLAB_MOVE_TO</c>. The data folder's data-protection keys are copied into the database; run pcaps stay in the
/// data folder, which the PostgreSQL installation keeps using.
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

        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(ct);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            // The first Ctrl+C ends the copy cleanly (its transaction rolls back); a second one ends the process.
            e.Cancel = !cancel.IsCancellationRequested;
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        await using var sourceDb = new Microsoft.Data.Sqlite.SqliteConnection(sourceConnection);
        await using var targetDb = new NpgsqlConnection(to);
        DashboardDbContext Source() => new(ServiceCollectionExtensions.ContextOptions(DataOptions.Sqlite, sourceDb));
        DashboardDbContext Target() => new(ServiceCollectionExtensions.ContextOptions(DataOptions.Postgres, targetDb));
        var (written, committed) = (false, false);
        try
        {
            var target = new NpgsqlConnectionStringBuilder(to);
            await output.WriteLineAsync($"{Name}: from {file} to database '{target.Database}' on {target.Host}").ConfigureAwait(false);

            // Refused before anything is written, migrations included: a database that holds any table.
            await targetDb.OpenAsync(cancel.Token).ConfigureAwait(false);
            // pg_class, not information_schema: it lists every role's tables, in every schema.
            await using (var tables = new NpgsqlCommand("SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1 LIMIT 5", targetDb))
            {
                var found = new List<string>();
                await using var reader = await tables.ExecuteReaderAsync(cancel.Token).ConfigureAwait(false);
                while (await reader.ReadAsync(cancel.Token).ConfigureAwait(false))
                {
                    found.Add(reader.GetString(0));
                }

                if (found.Count > 0)
                {
                    await output.WriteLineAsync($"{Name}: refused: the target database is not empty (it has tables: {string.Join(", ", found)}); move into a new, empty database (on PostgreSQL 15 and later, one the dashboard's user owns). Nothing was changed.").ConfigureAwait(false);
                    return 1;
                }
            }

            written = true;
            await using (var t = Target())
            {
                await t.Database.MigrateAsync(cancel.Token).ConfigureAwait(false);
                await output.WriteLineAsync($"  target migrated ({(await t.Database.GetAppliedMigrationsAsync(cancel.Token).ConfigureAwait(false)).Count()} migrations)").ConfigureAwait(false);
            }

            var started = System.Diagnostics.Stopwatch.StartNew();
            var pcaps = await PcapsAsync(Source, options.ResolveDirectory(), cancel.Token).ConfigureAwait(false);
            var keys = 0;
            var result = await DatabaseMove.CopyAsync(Source, Target, (table, rows) =>
            {
                if (rows > 0)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {table}: {rows:N0} rows copied"));
                }
            }, async (db, equal, token) =>
            {
                // With PostgreSQL the keys live in the database (every replica shares them): the folder's keys go there,
                // so cookies and antiforgery tokens issued before the move stay valid. The move's audit entry is part of
                // the same transaction: the target has both or neither.
                keys = await CopyKeysAsync(db, Path.Combine(options.ResolveDirectory(), "keys"), token).ConfigureAwait(false);
                db.AuditEntries.Add(new Data.Entities.AuditEntry
                {
                    At = DateTimeOffset.UtcNow,
                    Actor = "system",
                    Action = "data.moved",
                    Detail = string.Create(CultureInfo.InvariantCulture, $"moved from SQLite {file}: {equal.Counts.Sum(c => c.Source):N0} rows in {equal.Counts.Count} tables, every table counted equal on both sides; {keys} data-protection keys; {pcaps.Present} of {pcaps.Referenced} run pcaps in the data folder{(equal.NulsReplaced > 0 ? $"; {equal.NulsReplaced} text values with NUL characters stored with U+FFFD" : "")}"),
                });
                await db.SaveChangesAsync(token).ConfigureAwait(false);
            }, cancel.Token).ConfigureAwait(false);
            var counts = result.Counts;
            committed = counts.All(c => c.Same);

            await output.WriteLineAsync($"  {"table",-28} {"SQLite",12} {"PostgreSQL",12}").ConfigureAwait(false);
            foreach (var c in counts)
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {c.Table,-28} {c.Source,12:N0} {c.Target,12:N0}{(c.Same ? "" : "  DIFFERENT")}")).ConfigureAwait(false);
            }

            if (counts.Any(c => !c.Same))
            {
                await output.WriteLineAsync($"{Name}: FAILED: the counts differ ({string.Join(", ", counts.Where(c => !c.Same).Select(c => c.Table))}); nothing was kept in the target (its transaction rolled back; it holds the empty schema)").ConfigureAwait(false);
                return 1;
            }

            if (result.NulsReplaced > 0)
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {result.NulsReplaced:N0} text value(s) held NUL characters, which PostgreSQL cannot store: each became U+FFFD")).ConfigureAwait(false);
            }

            await output.WriteLineAsync($"  data-protection keys: {keys} copied from {Path.Combine(options.ResolveDirectory(), "keys")} into the database (sign-ins stay valid)").ConfigureAwait(false);
            await output.WriteLineAsync($"  run pcaps: {pcaps.Referenced} referenced, {pcaps.Present} present in {options.ResolveDirectory()} (they stay there: keep Data:Directory)").ConfigureAwait(false);
            var rows = counts.Sum(c => c.Source);
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{Name}: done: {rows:N0} rows in {counts.Count} tables, equal on both sides, in {started.Elapsed.TotalSeconds:0.0} s. Now run with Data__Provider=postgres and Data__ConnectionString=<the target>, same Data__Directory.")).ConfigureAwait(false);
            return 0;
        }
        catch (Exception ex)
        {
            var why = ex is OperationCanceledException ? "cancelled" : ex.GetBaseException().Message;
            var state = committed ? "the copy had been committed and audited in the target before this: it is complete"
                : written ? "the copy's transaction rolled back: the target holds at most the empty schema (drop and re-create that new database before trying again)"
                : "nothing was written to the target";
            await output.WriteLineAsync($"{Name}: FAILED: {why} (the SQLite database was only read; {state})").ConfigureAwait(false);
            return 1;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static async Task<int> CopyKeysAsync(DashboardDbContext db, string folder, CancellationToken ct)
    {
        if (!Directory.Exists(folder))
        {
            return 0;
        }

        var copied = 0;
        foreach (var file in Directory.EnumerateFiles(folder, "key-*.xml").Order(StringComparer.Ordinal))
        {
            // Checked to be a key document before it is stored; the file system repository names each by its friendly name.
            var xml = System.Xml.Linq.XElement.Load(file);
            if (xml.Name.LocalName != "key")
            {
                continue;
            }

            db.DataProtectionKeys.Add(new Microsoft.AspNetCore.DataProtection.EntityFrameworkCore.DataProtectionKey { FriendlyName = Path.GetFileNameWithoutExtension(file), Xml = xml.ToString(System.Xml.Linq.SaveOptions.DisableFormatting) });
            copied++;
        }

        await db.SaveChangesAsync(ct).ConfigureAwait(false);
        return copied;
    }

    private static async Task<(int Referenced, int Present)> PcapsAsync(Func<DashboardDbContext> source, string folder, CancellationToken ct)
    {
        await using var db = source();
        var files = await db.RunCaptures.Where(c => c.PcapFile != null).Select(c => c.PcapFile!).ToListAsync(ct).ConfigureAwait(false);
        return (files.Count, files.Count(f => File.Exists(Path.Combine(folder, f))));
    }
}
