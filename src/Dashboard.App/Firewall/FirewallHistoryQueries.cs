using System.Text.Json;
using System.Text.Json.Serialization;
using Dashboard.App.Contracts;
using Dashboard.Core.Firewall;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.App.Firewall;

/// <summary>A ruleset structure as a checkpoint stores it.</summary>
internal static class ShapeJson
{
    private static readonly JsonSerializerOptions Options = new() { Converters = { new JsonStringEnumConverter() } };

    public static string Write(RulesetShape shape) => JsonSerializer.Serialize(shape, Options);

    public static RulesetShape Read(string json) => JsonSerializer.Deserialize<RulesetShape>(json, Options) ?? RulesetShape.Empty;
}

/// <summary>
/// Reads the firewall history: a host's changes with filters, how many of each cause fell in each bucket of time, the
/// ruleset structure of any moment (the checkpoint before it and the changes after, replayed) and the diff between two moments.
/// </summary>
public sealed class FirewallHistoryQueries(IDbContextFactory<DashboardDbContext> dbs)
{
    /// <summary>A diff replays and annotates at most this many changes (a wider range is refused with a 400).</summary>
    public const int MaxReplayed = 200_000;

    public static readonly IReadOnlyList<string> Causes = [.. Enum.GetNames<ChangeCause>()];

    public async Task<FirewallHistoryList> ListAsync(string host, FirewallHistoryFilter filter, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var q = Filtered(db, host, filter);
        var total = await q.CountAsync(ct).ConfigureAwait(false);
        var size = Math.Clamp(filter.PageSize, 1, 500);
        var page = Math.Clamp(filter.Page, 1, 1_000_000);
        var rows = await q.OrderByDescending(r => r.At).ThenByDescending(r => r.Id).Skip((page - 1) * size).Take(size).ToListAsync(ct).ConfigureAwait(false);
        var since = await db.FirewallCheckpoints.AsNoTracking().Where(c => c.Host == host).OrderBy(c => c.At).Select(c => (DateTimeOffset?)c.At).FirstOrDefaultAsync(ct).ConfigureAwait(false);
        return new FirewallHistoryList(host, [.. rows.Select(FirewallChangeDto.From)], total, page, size, since);
    }

    /// <summary>The chains that have history on a host, as <c>table/chain</c>.</summary>
    public async Task<IReadOnlyList<string>> ChainsAsync(string host, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var pairs = await db.FirewallChanges.AsNoTracking().Where(r => r.Host == host).Select(r => new { r.Table, r.Chain }).Distinct().ToListAsync(ct).ConfigureAwait(false);
        return [.. pairs.Select(p => $"{p.Table}/{p.Chain}").Order(StringComparer.Ordinal)];
    }

    /// <summary>Changes of each cause per bucket between two moments (at most 200 buckets).</summary>
    public async Task<IReadOnlyList<FirewallHistoryBucket>> BucketsAsync(string host, FirewallHistoryFilter filter, int buckets, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (filter.From is not { } from || filter.To is not { } to || to <= from)
        {
            return [];
        }

        buckets = Math.Clamp(buckets, 1, 200);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var rows = await Filtered(db, host, filter).Select(r => new { r.At, r.Cause }).Take(MaxReplayed).ToListAsync(ct).ConfigureAwait(false);
        var width = (to - from) / buckets;
        var counts = new int[buckets, 4];
        foreach (var r in rows)
        {
            var i = Math.Clamp((int)((r.At - from) / width), 0, buckets - 1);
            if (Enum.TryParse<ChangeCause>(r.Cause, out var cause))
            {
                counts[i, (int)cause]++;
            }
        }

        return [.. Enumerable.Range(0, buckets).Select(i => new FirewallHistoryBucket(from + (width * i), counts[i, 0], counts[i, 1], counts[i, 2], counts[i, 3]))];
    }

    private static IQueryable<FirewallChangeRecord> Filtered(DashboardDbContext db, string host, FirewallHistoryFilter f)
    {
        var q = db.FirewallChanges.AsNoTracking().Where(r => r.Host == host);
        if (!string.IsNullOrWhiteSpace(f.Chain))
        {
            var slash = f.Chain.IndexOf('/', StringComparison.Ordinal);
            if (slash > 0)
            {
                var (table, chain) = (f.Chain[..slash], f.Chain[(slash + 1)..]);
                q = q.Where(r => r.Table == table && r.Chain == chain);
            }
            else
            {
                var chain = f.Chain;
                q = q.Where(r => r.Chain == chain);
            }
        }

        if (!string.IsNullOrWhiteSpace(f.Cause))
        {
            var cause = f.Cause;
            q = q.Where(r => r.Cause == cause);
        }

        if (f.From is { } from)
        {
            q = q.Where(r => r.At >= from);
        }

        if (f.To is { } to)
        {
            q = q.Where(r => r.At <= to);
        }

        return q;
    }

    /// <summary>The structure the history last knew for a host (null when it has none).</summary>
    public Task<RulesetShape?> LatestShapeAsync(string host, CancellationToken ct = default) => ShapeAtAsync(host, DateTimeOffset.MaxValue, ct);

    /// <summary>The structure at a moment: the last checkpoint at or before it, with the changes after it replayed read by read. Null before the first checkpoint.</summary>
    public async Task<RulesetShape?> ShapeAtAsync(string host, DateTimeOffset at, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var checkpoint = await db.FirewallCheckpoints.AsNoTracking().Where(c => c.Host == host && c.At <= at)
            .OrderByDescending(c => c.At).ThenByDescending(c => c.Id).FirstOrDefaultAsync(ct).ConfigureAwait(false);
        if (checkpoint is null)
        {
            return null;
        }

        var from = checkpoint.At;
        var shape = ShapeJson.Read(checkpoint.Shape);
        var records = await db.FirewallChanges.AsNoTracking().Where(r => r.Host == host && r.At > from && r.At <= at)
            .OrderBy(r => r.At).ThenBy(r => r.Id).Take(MaxReplayed + 1).ToListAsync(ct).ConfigureAwait(false);
        if (records.Count > MaxReplayed)
        {
            throw new FirewallHistoryRangeException($"more than {MaxReplayed} changes after the checkpoint before that moment; pick a later moment");
        }

        foreach (var read in records.GroupBy(r => r.At))
        {
            shape = RulesetChanges.Apply(shape, read.Select(ToChange));
        }

        return shape;
    }

    /// <summary>The ruleset's structural differences from one moment to another, each line with the cause of the last change that made it so.</summary>
    public async Task<FirewallDiff> DiffAsync(string host, DateTimeOffset from, DateTimeOffset to, CancellationToken ct = default)
    {
        if (to < from)
        {
            throw new FirewallHistoryRangeException("'to' is before 'from'");
        }

        var before = await ShapeAtAsync(host, from, ct).ConfigureAwait(false);
        if (before is null)
        {
            await using var db0 = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
            var first = await db0.FirewallCheckpoints.AsNoTracking().Where(c => c.Host == host).OrderBy(c => c.At).Select(c => (DateTimeOffset?)c.At).FirstOrDefaultAsync(ct).ConfigureAwait(false);
            throw new FirewallHistoryRangeException(first is { } f
                ? $"the history of host '{host}' starts at {f:O}; 'from' is earlier"
                : $"host '{host}' has no firewall history yet");
        }

        var after = await ShapeAtAsync(host, to, ct).ConfigureAwait(false) ?? before;
        var changes = RulesetChanges.Compare(before, after);

        // The cause of each line: the last recorded change of that rule (or chain) in the range.
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var records = await db.FirewallChanges.AsNoTracking().Where(r => r.Host == host && r.At > from && r.At <= to)
            .OrderBy(r => r.At).ThenBy(r => r.Id).Take(MaxReplayed).ToListAsync(ct).ConfigureAwait(false);
        var last = new Dictionary<(string, string, string, string?), FirewallChangeRecord>();
        foreach (var r in records)
        {
            last[(r.Family, r.Table, r.Chain, r.RuleKey)] = r;
        }

        var lines = changes.Select(c =>
        {
            last.TryGetValue((c.Family.ToString(), c.Table, c.Chain, c.Key), out var r);
            return new FirewallDiffLine(c.Kind.ToString(), c.Family.ToString(), c.Table, c.Chain, c.Text, c.PositionBefore, c.PositionAfter, c.PolicyBefore, c.PolicyAfter, c.Owner?.ToString(), r?.Cause, r?.CauseDetail);
        }).ToList();
        return new FirewallDiff(host, from, to, before.RuleCount, after.RuleCount, lines);
    }

    private static RuleChange ToChange(FirewallChangeRecord r) => new(
        Enum.Parse<RuleChangeKind>(r.Kind),
        Enum.Parse<TableFamily>(r.Family),
        r.Table,
        r.Chain,
        r.RuleKey,
        r.RuleText,
        r.Owner is null ? null : Enum.Parse<RuleOwner>(r.Owner),
        r.Comment,
        r.PositionBefore,
        r.PositionAfter,
        r.PolicyBefore,
        r.PolicyAfter);
}
