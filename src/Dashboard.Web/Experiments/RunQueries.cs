using System.Text.Json;
using System.Text.RegularExpressions;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.Web.Experiments;

public sealed record RunFilter(Guid? Experiment = null, string? Variant = null, RunStatus? Status = null, string? Author = null, DateTimeOffset? From = null, DateTimeOffset? To = null, int Page = 1, int PageSize = 25);

/// <summary>A run as lists show it: summary columns only, never payloads.</summary>
public sealed record RunSummary(Guid Id, Guid ExperimentId, string Experiment, string Variant, RunStatus Status, string Author, DateTimeOffset StartedAt, DateTimeOffset? EndedAt, int ProbesSent, int ProbesReceived, string? Outcome, string? Error, string? Origin);

public sealed record RunList(int Total, int Page, int PageSize, IReadOnlyList<RunSummary> Items);

public sealed record RunDetail(RunSummary Summary, string? Host, string? EngineVersion, string? FirewallBackend, string? Layout, string? LastStep, bool KeepResources,
    IReadOnlyList<RunProbe> Probes, IReadOnlyList<RunRuleDelta> Deltas, IReadOnlyList<RunCapture> Captures, IReadOnlyList<string> Artifacts);

public sealed record ProbeComparison(string From, string To, string Kind, RunProbe? A, RunProbe? B);

public sealed record RuleComparison(string Table, string Chain, string Rule, long? DeltaA, long? DeltaB, string? ChangeA, string? ChangeB);

public sealed record TimelinePacket(string Network, double OffsetMs, string Summary);

public sealed record RunComparison(RunSummary A, RunSummary B, IReadOnlyList<ProbeComparison> Probes, IReadOnlyList<RuleComparison> Rules,
    IReadOnlyList<string> RulesOnlyInA, IReadOnlyList<string> RulesOnlyInB, IReadOnlyList<TimelinePacket> TimelineA, IReadOnlyList<TimelinePacket> TimelineB,
    IReadOnlyList<string> NatA, IReadOnlyList<string> NatB);

/// <summary>Reads runs back: filtered pages of summaries, one run whole, and two runs compared side by side.</summary>
public static class RunQueries
{
    public const int MaxPageSize = 200;

    public static async Task<RunList> ListAsync(DashboardDbContext db, int labId, RunFilter f, CancellationToken ct = default)
    {
        var q = db.Runs.AsNoTracking().Where(r => r.LabId == labId);
        if (f.Experiment is { } e)
        {
            q = q.Where(r => r.ExperimentId == e);
        }

        if (!string.IsNullOrWhiteSpace(f.Variant))
        {
            q = q.Where(r => r.Variant == f.Variant);
        }

        if (f.Status is { } s)
        {
            q = q.Where(r => r.Status == s);
        }

        if (!string.IsNullOrWhiteSpace(f.Author))
        {
            q = q.Where(r => r.Author == f.Author);
        }

        if (f.From is { } from)
        {
            q = q.Where(r => r.StartedAt >= from);
        }

        if (f.To is { } to)
        {
            q = q.Where(r => r.StartedAt < to);
        }

        var size = Math.Clamp(f.PageSize, 1, MaxPageSize);
        var page = Math.Max(1, f.Page);
        var total = await q.CountAsync(ct);
        var items = await q.OrderByDescending(r => r.StartedAt).Skip((page - 1) * size).Take(size).Select(Summary()).ToListAsync(ct);
        return new RunList(total, page, size, items);
    }

    /// <summary>The summary columns: an expression for SQL, and the same compiled once for a run already loaded.</summary>
    private static readonly System.Linq.Expressions.Expression<Func<Run, RunSummary>> SummaryExpression =
        r => new RunSummary(r.Id, r.ExperimentId, r.ExperimentName, r.Variant, r.Status, r.Author, r.StartedAt, r.EndedAt, r.ProbesSent, r.ProbesReceived, r.Outcome, r.Error, r.Origin);

    private static readonly Func<Run, RunSummary> SummaryOf = SummaryExpression.Compile();

    private static System.Linq.Expressions.Expression<Func<Run, RunSummary>> Summary() => SummaryExpression;

    /// <summary>The lab a run belongs to (null: no such run); callers check the user's membership of it.</summary>
    public static Task<int?> LabOfAsync(DashboardDbContext db, Guid id, CancellationToken ct = default) =>
        db.Runs.Where(r => r.Id == id).Select(r => (int?)r.LabId).SingleOrDefaultAsync(ct);

    public static async Task<RunDetail?> GetAsync(DashboardDbContext db, int labId, Guid id, CancellationToken ct = default)
    {
        var r = await db.Runs.AsNoTracking().SingleOrDefaultAsync(x => x.Id == id && x.LabId == labId, ct);
        if (r is null)
        {
            return null;
        }

        return new RunDetail(
            SummaryOf(r), r.Host, r.EngineVersion, r.FirewallBackend, r.Layout, r.LastStep, r.KeepResources,
            await db.RunProbes.AsNoTracking().Where(p => p.RunId == id).OrderBy(p => p.Order).ToListAsync(ct),
            await db.RunRuleDeltas.AsNoTracking().Where(d => d.RunId == id).OrderBy(d => d.Table).ThenBy(d => d.Chain).ThenBy(d => d.Position).ToListAsync(ct),
            await db.RunCaptures.AsNoTracking().Where(c => c.RunId == id).ToListAsync(ct),
            await db.RunArtifacts.AsNoTracking().Where(a => a.RunId == id).Select(a => a.Kind).ToListAsync(ct));
    }

    public static async Task<RunComparison?> CompareAsync(DashboardDbContext db, int labId, Guid a, Guid b, CancellationToken ct = default)
    {
        var da = await GetAsync(db, labId, a, ct);
        var dbb = await GetAsync(db, labId, b, ct);
        if (da is null || dbb is null)
        {
            return null;
        }

        var na = await NormalizerAsync(db, a, ct);
        var nb = await NormalizerAsync(db, b, ct);

        var probes = da.Probes.Select(p => (p.From, p.To, p.Kind)).Union(dbb.Probes.Select(p => (p.From, p.To, p.Kind)))
            .Select(k => new ProbeComparison(k.From, k.To, k.Kind, da.Probes.FirstOrDefault(p => (p.From, p.To, p.Kind) == k), dbb.Probes.FirstOrDefault(p => (p.From, p.To, p.Kind) == k)))
            .ToList();

        var ra = da.Deltas.GroupBy(d => (d.Table, d.Chain, Rule: na(d.Rule))).ToDictionary(g => g.Key, g => g.First());
        var rb = dbb.Deltas.GroupBy(d => (d.Table, d.Chain, Rule: nb(d.Rule))).ToDictionary(g => g.Key, g => g.First());
        var rules = ra.Keys.Union(rb.Keys)
            .Select(k => new RuleComparison(k.Table, k.Chain, k.Rule, ra.GetValueOrDefault(k)?.DeltaPackets, rb.GetValueOrDefault(k)?.DeltaPackets, ra.GetValueOrDefault(k)?.Change, rb.GetValueOrDefault(k)?.Change))
            .Where(c => c.DeltaA.GetValueOrDefault() != 0 || c.DeltaB.GetValueOrDefault() != 0 || c.ChangeA is not null || c.ChangeB is not null)
            .OrderBy(c => c.Table).ThenBy(c => c.Chain)
            .ToList();

        var (ta, natA) = await TimelineAsync(db, a, na, ct);
        var (tb, natB) = await TimelineAsync(db, b, nb, ct);
        var addedA = ra.Where(kv => kv.Value.Change == "added").Select(kv => kv.Key.Rule).ToHashSet();
        var addedB = rb.Where(kv => kv.Value.Change == "added").Select(kv => kv.Key.Rule).ToHashSet();
        return new RunComparison(da.Summary, dbb.Summary, probes, rules, [.. addedA.Except(addedB)], [.. addedB.Except(addedA)], ta, tb, natA, natB);
    }

    /// <summary>
    /// Each run makes its own networks, so bridge names, subnets and addresses differ between runs: they are replaced by
    /// the scenario's names ({net1}, {net1.subnet}, {c1}) so the same rule reads the same in both.
    /// </summary>
    private static async Task<Func<string, string>> NormalizerAsync(DashboardDbContext db, Guid run, CancellationToken ct)
    {
        var topology = await db.RunArtifacts.AsNoTracking().Where(x => x.RunId == run && x.Kind == "topology").Select(x => x.Content).SingleOrDefaultAsync(ct);
        if (topology is null)
        {
            return s => s;
        }

        var map = new List<(string From, string To)>();
        using var doc = JsonDocument.Parse(topology);
        foreach (var n in doc.RootElement.GetProperty("networks").EnumerateArray())
        {
            var name = n.GetProperty("name").GetString()!;
            var shortName = name[(name.LastIndexOf('-') + 1)..];
            map.Add((n.GetProperty("bridge").GetString()!, "{" + shortName + "}"));
            map.Add((n.GetProperty("subnet").GetString()!, "{" + shortName + ".subnet}"));
            map.Add((n.GetProperty("gateway").GetString()!, "{" + shortName + ".gateway}"));
        }

        foreach (var c in doc.RootElement.GetProperty("containers").EnumerateArray())
        {
            var name = c.GetProperty("name").GetString()!;
            map.Add((c.GetProperty("address").GetString()!, "{" + name[(name.LastIndexOf('-') + 1)..] + "}"));
        }

        // Longest first, and whole tokens only, so 172.18.0.1 never rewrites part of 172.18.0.12.
        var ordered = map.OrderByDescending(m => m.From.Length).ToList();
        var pattern = new Regex(string.Join('|', ordered.Select(m => $@"(?<![\w.]){Regex.Escape(m.From)}(?![\w]|\.\d)")), RegexOptions.CultureInvariant);
        var lookup = ordered.GroupBy(m => m.From).ToDictionary(g => g.Key, g => g.First().To);
        var tag = new Regex(@"netlab:run-[a-z0-9]+-[0-9a-f]{32}", RegexOptions.CultureInvariant);
        return s => tag.Replace(pattern.Replace(s, m => lookup[m.Value]), "netlab:run");
    }

    private static async Task<(IReadOnlyList<TimelinePacket> Packets, IReadOnlyList<string> Nat)> TimelineAsync(DashboardDbContext db, Guid run, Func<string, string> normalize, CancellationToken ct)
    {
        var captures = await db.RunCaptures.AsNoTracking().Where(c => c.RunId == run).ToDictionaryAsync(c => c.Interface, c => c.Network, ct);
        var packets = await db.RunPackets.AsNoTracking().Where(p => p.RunId == run).OrderBy(p => p.Timestamp).Select(p => new { p.Interface, p.Timestamp, p.Summary }).ToListAsync(ct);
        if (packets.Count == 0)
        {
            return ([], []);
        }

        var t0 = packets[0].Timestamp;
        var list = packets.Select(p => new TimelinePacket(captures.GetValueOrDefault(p.Interface) ?? p.Interface, (p.Timestamp - t0).TotalMilliseconds, normalize(p.Summary))).ToList();

        // NAT seen: a packet on a network whose source is another network's gateway was masqueraded on the way in.
        var nat = list.Where(p => Regex.IsMatch(p.Summary, @"^IP \{[a-z0-9-]+\.gateway\} > ")).Select(p => $"on {p.Network}: {p.Summary.Split(':')[0]}").Distinct().ToList();
        return (list, nat);
    }

}
