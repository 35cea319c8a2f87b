using System.Data.Common;
using System.Reflection;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace Dashboard.Data;

/// <summary>One table's rows in the source and in the target after a move.</summary>
public sealed record TableCount(string Table, long Source, long Target)
{
    public bool Same => Source == Target;
}

/// <summary>What a move did: every table's rows on both sides, and the text values changed to fit the target.</summary>
public sealed record MoveResult(IReadOnlyList<TableCount> Counts, long NulsReplaced);

/// <summary>A move that cannot start or did not end equal: the message says which and why; the source is never changed.</summary>
public sealed class DatabaseMoveException(string message) : Exception(message);

/// <summary>
/// Moves an installation's whole database to another (SQLite to PostgreSQL): every table of the model, principal
/// tables first, rows copied with their keys through EF (so each provider's conversions apply: moments, GUIDs, flags),
/// identity sequences set past the highest key the source ever gave, then every table counted on both sides by SQL.
/// Each side is one transaction: the source's (SQLite: <c>BEGIN IMMEDIATE</c>) holds writers off and gives one
/// consistent snapshot; the target's commits only when every count is equal, so a failure or a cancellation leaves the
/// target as it was. The target must be migrated and hold no rows; the source is only read.
/// </summary>
public static class DatabaseMove
{
    /// <summary>Rows written per batch at most.</summary>
    public const int Batch = 2000;

    /// <summary>Characters of text per batch at most (rulesets and topologies can be megabytes each).</summary>
    public const long BatchChars = 16L * 1024 * 1024;

    /// <summary>The model's tables in an order that inserts every principal before its dependents.</summary>
    public static IReadOnlyList<IEntityType> CopyOrder(IModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var types = model.GetEntityTypes().Where(t => t.GetTableName() is not null && !t.IsOwned()).OrderBy(t => t.GetTableName(), StringComparer.Ordinal).ToList();
        var done = new HashSet<IEntityType>();
        var order = new List<IEntityType>();
        while (order.Count < types.Count)
        {
            var ready = types.Where(t => !done.Contains(t) && t.GetForeignKeys().All(fk => fk.PrincipalEntityType == t || done.Contains(fk.PrincipalEntityType))).ToList();
            if (ready.Count == 0)
            {
                throw new DatabaseMoveException("the model's foreign keys form a cycle: " + string.Join(", ", types.Where(t => !done.Contains(t)).Select(t => t.GetTableName())));
            }

            foreach (var t in ready)
            {
                done.Add(t);
                order.Add(t);
            }
        }

        return order;
    }

    /// <summary>
    /// Copies everything from <paramref name="source"/> to <paramref name="target"/>. Each factory must make its
    /// contexts over one connection (the copy runs in one transaction on each side). <paramref name="beforeCommit"/>
    /// may add to the target inside its transaction once the counts are equal (the result is given to it); when it throws,
    /// nothing is kept. Reports (table, rows copied so far). Returns once the target committed, or with the counts
    /// when they differ (then nothing was kept).
    /// </summary>
    public static async Task<MoveResult> CopyAsync(Func<DashboardDbContext> source, Func<DashboardDbContext> target, Action<string, long>? progress = null, Func<DashboardDbContext, MoveResult, CancellationToken, Task>? beforeCommit = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(target);
        await using var sourceRoot = source();
        await using var targetRoot = target();
        var order = CopyOrder(targetRoot.Model);
        await CheckAsync(sourceRoot, targetRoot, order, ct).ConfigureAwait(false);

        await using var sourceTx = await sourceRoot.Database.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using var targetTx = await targetRoot.Database.BeginTransactionAsync(ct).ConfigureAwait(false);
        DashboardDbContext On(Func<DashboardDbContext> make, DashboardDbContext root, IDbContextTransaction tx)
        {
            var c = make();
            if (!ReferenceEquals(c.Database.GetDbConnection(), root.Database.GetDbConnection()))
            {
                throw new ArgumentException("each factory must make its contexts over one connection");
            }

            c.Database.UseTransaction(tx.GetDbTransaction());
            return c;
        }

        long nuls = 0;
        foreach (var type in order)
        {
            var copy = typeof(DatabaseMove).GetMethod(nameof(CopyTableAsync), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(type.ClrType);
            nuls += await ((Task<long>)copy.Invoke(null, [(Func<DashboardDbContext>)(() => On(source, sourceRoot, sourceTx)), (Func<DashboardDbContext>)(() => On(target, targetRoot, targetTx)), type, progress, ct])!).ConfigureAwait(false);
        }

        var counts = new List<TableCount>(order.Count);
        foreach (var type in order)
        {
            counts.Add(new TableCount(type.GetTableName()!, await CountAsync(sourceRoot, type, ct).ConfigureAwait(false), await CountAsync(targetRoot, type, ct).ConfigureAwait(false)));
        }

        if (counts.Any(c => !c.Same))
        {
            // Nothing is kept: the target rolls back to empty.
            return new MoveResult(counts, nuls);
        }

        if (targetRoot.Database.IsNpgsql())
        {
            var given = sourceRoot.Database.IsSqlite() ? await SqliteSequencesAsync(sourceRoot, ct).ConfigureAwait(false) : [];
            foreach (var type in order)
            {
                await AdvanceSequenceAsync(targetRoot, type, given.GetValueOrDefault(type.GetTableName()!), ct).ConfigureAwait(false);
            }
        }

        if (beforeCommit is not null)
        {
            await using var extra = On(target, targetRoot, targetTx);
            await beforeCommit(extra, new MoveResult(counts, nuls), ct).ConfigureAwait(false);
        }

        // Not cancellable: once asked, whether it committed must be known.
        await targetTx.CommitAsync(CancellationToken.None).ConfigureAwait(false);
        return new MoveResult(counts, nuls);
    }

    /// <summary>Before anything is written: the source is at this version and holds no table the model lacks; the target is migrated and empty.</summary>
    private static async Task CheckAsync(DashboardDbContext source, DashboardDbContext target, IReadOnlyList<IEntityType> order, CancellationToken ct)
    {
        if ((await source.Database.GetPendingMigrationsAsync(ct).ConfigureAwait(false)).ToList() is { Count: > 0 } pending)
        {
            throw new DatabaseMoveException($"the source database lacks {pending.Count} migration(s) of this version ({pending[0]}…): start the dashboard on it once first");
        }

        if ((await target.Database.GetPendingMigrationsAsync(ct).ConfigureAwait(false)).Any())
        {
            throw new DatabaseMoveException("the target database is not migrated to this version");
        }

        foreach (var type in order)
        {
            if (type.GetProperties().FirstOrDefault(p => p.IsShadowProperty()) is { } shadow)
            {
                throw new DatabaseMoveException($"{type.GetTableName()}.{shadow.Name} has no property on its class: the move copies through the classes and would lose it");
            }

            if (await CountAsync(target, type, ct).ConfigureAwait(false) > 0)
            {
                throw new DatabaseMoveException($"the target database is not empty: {type.GetTableName()} has rows (move into a new, empty database)");
            }
        }

        if (source.Database.IsSqlite())
        {
            var known = order.Select(t => t.GetTableName()!).ToHashSet(StringComparer.Ordinal);
            var tables = await QueryAsync(source, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_\\_EF%' ESCAPE '\\'", r => r.GetString(0), ct).ConfigureAwait(false);
            if (tables.Where(t => !known.Contains(t)).ToList() is { Count: > 0 } unknown)
            {
                throw new DatabaseMoveException($"the source database has tables this version does not know ({string.Join(", ", unknown)}): they would not be moved");
            }
        }
    }

    private static async Task<long> CopyTableAsync<T>(Func<DashboardDbContext> source, Func<DashboardDbContext> target, IEntityType type, Action<string, long>? progress, CancellationToken ct)
        where T : class
    {
        var table = type.GetTableName()!;
        var texts = type.GetProperties().Where(p => p.ClrType == typeof(string) && p.PropertyInfo is { CanWrite: true }).Select(p => p.PropertyInfo!).ToArray();
        await using var s = source();
        var pending = new List<T>(Batch);
        long copied = 0, chars = 0, nuls = 0;
        progress?.Invoke(table, 0);
        await foreach (var row in s.Set<T>().IgnoreQueryFilters().AsNoTracking().AsAsyncEnumerable().WithCancellation(ct).ConfigureAwait(false))
        {
            foreach (var p in texts)
            {
                if (p.GetValue(row) is string text)
                {
                    chars += text.Length;
                    if (text.Contains('\0', StringComparison.Ordinal))
                    {
                        // PostgreSQL's text cannot hold NUL (SQLite's can): the one change a move makes, counted and said.
                        p.SetValue(row, text.Replace('\0', '\uFFFD'));
                        nuls++;
                    }
                }
            }

            pending.Add(row);
            if (pending.Count == Batch || chars >= BatchChars)
            {
                await FlushAsync().ConfigureAwait(false);
            }
        }

        if (pending.Count > 0)
        {
            await FlushAsync().ConfigureAwait(false);
        }

        return nuls;

        async Task FlushAsync()
        {
            await using var t = target();
            t.ChangeTracker.AutoDetectChangesEnabled = false;
            t.Set<T>().AddRange(pending);
            await t.SaveChangesAsync(ct).ConfigureAwait(false);
            copied += pending.Count;
            pending.Clear();
            chars = 0;
            progress?.Invoke(table, copied);
        }
    }

    /// <summary>A table's rows counted by SQL (not through the model's queries).</summary>
    private static async Task<long> CountAsync(DashboardDbContext db, IEntityType type, CancellationToken ct) =>
        (await QueryAsync(db, $"SELECT COUNT(*) FROM {Quote(type.GetTableName()!)}", r => Convert.ToInt64(r.GetValue(0), System.Globalization.CultureInfo.InvariantCulture), ct).ConfigureAwait(false)).Single();

    /// <summary>SQLite's AUTOINCREMENT high-water marks: keys it gave to rows since deleted are never given again.</summary>
    private static async Task<Dictionary<string, long>> SqliteSequencesAsync(DashboardDbContext db, CancellationToken ct)
    {
        var exists = await QueryAsync(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'", r => r.GetInt64(0), ct).ConfigureAwait(false);
        return exists.Single() == 0 ? [] : (await QueryAsync(db, "SELECT name, seq FROM sqlite_sequence", r => (Name: r.GetString(0), Seq: r.GetInt64(1)), ct).ConfigureAwait(false)).ToDictionary(x => x.Name, x => x.Seq, StringComparer.Ordinal);
    }

    /// <summary>Keys were copied as they were: each identity sequence continues after the highest one given.</summary>
    private static async Task AdvanceSequenceAsync(DashboardDbContext db, IEntityType type, long given, CancellationToken ct)
    {
        if (type.FindPrimaryKey() is not { Properties: [var key] } || key.ValueGenerated != ValueGenerated.OnAdd || key.ClrType != typeof(int) && key.ClrType != typeof(long))
        {
            return;
        }

        var table = type.GetTableName()!;
        var column = key.GetColumnName(StoreObjectIdentifier.Table(table, type.GetSchema()))!;
        var (t, c) = (Quote(table), Quote(column));
        await QueryAsync(db, $"SELECT setval(pg_get_serial_sequence('{t.Replace("'", "''", StringComparison.Ordinal)}', '{column.Replace("'", "''", StringComparison.Ordinal)}'), GREATEST(COALESCE(MAX({c}), 0), {given}, 1), GREATEST(COALESCE(MAX({c}), 0), {given}) > 0) FROM {t}", r => 0, ct).ConfigureAwait(false);
    }

    private static string Quote(string name) => $"\"{name.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";

    /// <summary>Runs SQL built from the model's own names (quoted) on the context's connection, inside its transaction.</summary>
    private static async Task<List<TRow>> QueryAsync<TRow>(DashboardDbContext db, string sql, Func<DbDataReader, TRow> read, CancellationToken ct)
    {
        var connection = db.Database.GetDbConnection();
        if (connection.State != System.Data.ConnectionState.Open)
        {
            await db.Database.OpenConnectionAsync(ct).ConfigureAwait(false);
        }

        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
        var rows = new List<TRow>();
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            rows.Add(read(reader));
        }

        return rows;
    }
}
