using System.Reflection;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;

namespace Dashboard.Data;

/// <summary>One table's rows in the source and in the target after a move.</summary>
public sealed record TableCount(string Table, long Source, long Target)
{
    public bool Same => Source == Target;
}

/// <summary>A move that cannot start or did not end equal: the message says which and why; the source is never changed.</summary>
public sealed class DatabaseMoveException(string message) : Exception(message);

/// <summary>
/// Moves an installation's whole database to another (SQLite to PostgreSQL): every table of the model, principal
/// tables first, rows copied with their keys in batches through EF (so each provider's conversions apply: moments,
/// GUIDs, flags), identity sequences set past the highest key, then every table counted on both sides. The target must
/// be migrated and empty; the source is only read.
/// </summary>
public static class DatabaseMove
{
    /// <summary>Rows written per transaction.</summary>
    public const int Batch = 2000;

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
    /// Copies everything from <paramref name="source"/> to <paramref name="target"/> (each call makes a fresh context),
    /// reporting (table, rows copied so far); returns each table's count on both sides.
    /// </summary>
    public static async Task<IReadOnlyList<TableCount>> CopyAsync(Func<DashboardDbContext> source, Func<DashboardDbContext> target, Action<string, long>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(target);
        IReadOnlyList<IEntityType> order;
        await using (var t = target())
        {
            if ((await t.Database.GetPendingMigrationsAsync(ct).ConfigureAwait(false)).Any())
            {
                throw new DatabaseMoveException("the target database is not migrated to this version (start the dashboard on it once, or let the move migrate it)");
            }

            order = CopyOrder(t.Model);
            foreach (var type in order)
            {
                if (type.GetProperties().FirstOrDefault(p => p.IsShadowProperty()) is { } shadow)
                {
                    throw new DatabaseMoveException($"{type.GetTableName()}.{shadow.Name} has no property on its class: the move copies through the classes and would lose it");
                }

                if (await CountAsync(t, type, ct).ConfigureAwait(false) > 0)
                {
                    throw new DatabaseMoveException($"the target database is not empty: {type.GetTableName()} has rows (move into a new, empty database)");
                }
            }
        }

        await using (var s = source())
        {
            if ((await s.Database.GetPendingMigrationsAsync(ct).ConfigureAwait(false)).ToList() is { Count: > 0 } pending)
            {
                throw new DatabaseMoveException($"the source database lacks {pending.Count} migration(s) of this version ({pending[0]}…): start the dashboard on it once first");
            }
        }

        foreach (var type in order)
        {
            var copy = typeof(DatabaseMove).GetMethod(nameof(CopyTableAsync), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(type.ClrType);
            await ((Task)copy.Invoke(null, [source, target, type.GetTableName()!, progress, ct])!).ConfigureAwait(false);
        }

        await using (var t = target())
        {
            if (t.Database.IsNpgsql())
            {
                foreach (var type in order)
                {
                    await AdvanceSequenceAsync(t, type, ct).ConfigureAwait(false);
                }
            }
        }

        var counts = new List<TableCount>(order.Count);
        await using (var s = source())
        await using (var t = target())
        {
            foreach (var type in order)
            {
                counts.Add(new TableCount(type.GetTableName()!, await CountAsync(s, type, ct).ConfigureAwait(false), await CountAsync(t, type, ct).ConfigureAwait(false)));
            }
        }

        return counts;
    }

    private static async Task CopyTableAsync<T>(Func<DashboardDbContext> source, Func<DashboardDbContext> target, string table, Action<string, long>? progress, CancellationToken ct)
        where T : class
    {
        await using var s = source();
        var pending = new List<T>(Batch);
        long copied = 0;
        progress?.Invoke(table, 0);
        await foreach (var row in s.Set<T>().AsNoTracking().AsAsyncEnumerable().WithCancellation(ct).ConfigureAwait(false))
        {
            pending.Add(row);
            if (pending.Count == Batch)
            {
                await FlushAsync().ConfigureAwait(false);
            }
        }

        if (pending.Count > 0)
        {
            await FlushAsync().ConfigureAwait(false);
        }

        async Task FlushAsync()
        {
            await using var t = target();
            t.ChangeTracker.AutoDetectChangesEnabled = false;
            t.Set<T>().AddRange(pending);
            await t.SaveChangesAsync(ct).ConfigureAwait(false);
            copied += pending.Count;
            pending.Clear();
            progress?.Invoke(table, copied);
        }
    }

    private static Task<long> CountAsync(DashboardDbContext db, IEntityType type, CancellationToken ct)
    {
        var count = typeof(DatabaseMove).GetMethod(nameof(CountOfAsync), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(type.ClrType);
        return (Task<long>)count.Invoke(null, [db, ct])!;
    }

    private static Task<long> CountOfAsync<T>(DashboardDbContext db, CancellationToken ct)
        where T : class => db.Set<T>().LongCountAsync(ct);

    /// <summary>Keys were copied as they were: each identity sequence continues after the highest one.</summary>
    private static async Task AdvanceSequenceAsync(DashboardDbContext db, IEntityType type, CancellationToken ct)
    {
        if (type.FindPrimaryKey() is not { Properties: [var key] } || key.ValueGenerated != ValueGenerated.OnAdd || key.ClrType != typeof(int) && key.ClrType != typeof(long))
        {
            return;
        }

        var table = type.GetTableName()!;
        var column = key.GetColumnName(StoreObjectIdentifier.Table(table, type.GetSchema()))!;
        var quoted = $"\"{table.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
        var col = $"\"{column.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
#pragma warning disable EF1002 // names come from the model, quoted; no user input
        await db.Database.ExecuteSqlRawAsync(
            $"SELECT setval(pg_get_serial_sequence('{quoted.Replace("'", "''", StringComparison.Ordinal)}', '{column.Replace("'", "''", StringComparison.Ordinal)}'), COALESCE(MAX({col}), 1), MAX({col}) IS NOT NULL) FROM {quoted}", ct).ConfigureAwait(false);
#pragma warning restore EF1002
    }
}
