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

    /// <summary>The most lines a diff answers (a wider one is refused with a 400 asking for closer moments).</summary>
    public const int MaxDiffLines = 5_000;

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
        if (filter.From is not { } from0 || filter.To is not { } to0 || to0 <= from0)
        {
            return [];
        }

        var (from, to) = (from0.ToUniversalTime(), to0.ToUniversalTime());

        buckets = Math.Clamp(buckets, 1, 200);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var width = (to - from) / buckets;
        var result = new List<FirewallHistoryBucket>(buckets);
        var q = Filtered(db, host, filter with { From = null, To = null });
        for (var i = 0; i < buckets; i++)
        {
            // One grouped count per bucket on the (host, at) index: exact whatever the number of changes.
            var (start, end) = (from + (width * i), i == buckets - 1 ? to.AddMilliseconds(1) : from + (width * (i + 1)));
            var counts = await q.Where(r => r.At >= start && r.At < end).GroupBy(r => r.Cause)
                .Select(g => new { Cause = g.Key, Count = g.Count() }).ToListAsync(ct).ConfigureAwait(false);
            int Of(ChangeCause c) => counts.FirstOrDefault(x => x.Cause == c.ToString())?.Count ?? 0;
            result.Add(new FirewallHistoryBucket(start, Of(ChangeCause.Docker), Of(ChangeCause.Dashboard), Of(ChangeCause.Outside), Of(ChangeCause.Unobserved)));
        }

        return result;
    }

    /// <summary>Whether the history holds anything of this host.</summary>
    public async Task<bool> HasHistoryAsync(string host, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        return await db.FirewallCheckpoints.AnyAsync(c => c.Host == host, ct).ConfigureAwait(false);
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

        // Stored as UTC: a moment with another offset is compared as the same instant.
        if (f.From is { } from)
        {
            var utc = from.ToUniversalTime();
            q = q.Where(r => r.At >= utc);
        }

        if (f.To is { } to)
        {
            var utc = to.ToUniversalTime();
            q = q.Where(r => r.At <= utc);
        }

        return q;
    }

    /// <summary>The structure the history last knew for a host (null when it has none).</summary>
    public Task<RulesetShape?> LatestShapeAsync(string host, CancellationToken ct = default) => ShapeAtAsync(host, DateTimeOffset.MaxValue, ct);

    /// <summary>The structure at a moment: the last checkpoint at or before it, with the changes after it replayed read by read. Null before the first checkpoint.</summary>
    public async Task<RulesetShape?> ShapeAtAsync(string host, DateTimeOffset at, CancellationToken ct = default)
    {
        at = at == DateTimeOffset.MaxValue ? at : at.ToUniversalTime();
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
        (from, to) = (from.ToUniversalTime(), to.ToUniversalTime());
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

        if (changes.Count > MaxDiffLines)
        {
            throw new FirewallHistoryRangeException($"{changes.Count} differences between these moments, more than the {MaxDiffLines} a diff shows; pick moments closer together");
        }

        // The cause of each line: the last recorded change of that rule (or chain) in the range, looked up for the
        // diff's own keys only.
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var last = new Dictionary<(string, string, string, string?), FirewallChangeRecord>();
        var chunks = changes.Where(c => c.Key is not null).Select(c => c.Key!).Distinct(StringComparer.Ordinal).Chunk(500).ToList();
        if (changes.Any(c => c.Key is null))
        {
            chunks.Add([]); // chain and policy lines
        }

        foreach (var keys in chunks)
        {
            var q = db.FirewallChanges.AsNoTracking().Where(r => r.Host == host && r.At > from && r.At <= to);
            q = keys.Length > 0 ? q.Where(r => r.RuleKey != null && keys.Contains(r.RuleKey)) : q.Where(r => r.RuleKey == null);
            foreach (var r in await q.OrderBy(r => r.Id).ToListAsync(ct).ConfigureAwait(false))
            {
                last[(r.Family, r.Table, r.Chain, r.RuleKey)] = r;
            }
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
