using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Dashboard.Core.Capture;
using Dashboard.Core.Experiments;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.App.Runs;

public sealed record RunFilter(Guid? Experiment = null, string? Variant = null, RunStatus? Status = null, string? Author = null, DateTimeOffset? From = null, DateTimeOffset? To = null, int Page = 1, int PageSize = 25);

/// <summary>A run as lists show it: summary columns only, never payloads.</summary>
public sealed record RunSummary(Guid Id, Guid ExperimentId, string Experiment, string Variant, RunStatus Status, string Author, DateTimeOffset StartedAt, DateTimeOffset? EndedAt, int ProbesSent, int ProbesReceived, string? Outcome, string? Error, string? Origin, string? Host = null);

public sealed record RunList(int Total, int Page, int PageSize, IReadOnlyList<RunSummary> Items);

public sealed record RunDetail(RunSummary Summary, string? Host, string? EngineVersion, string? FirewallBackend, string? Layout, string? LastStep, bool KeepResources,
    IReadOnlyList<RunProbe> Probes, IReadOnlyList<RunRuleDelta> Deltas, IReadOnlyList<RunCapture> Captures, IReadOnlyList<string> Artifacts);

public sealed record ProbeComparison(string From, string To, string Kind, RunProbe? A, RunProbe? B);

public sealed record RuleComparison(string Table, string Chain, string Rule, long? DeltaA, long? DeltaB, string? ChangeA, string? ChangeB);

/// <summary>
/// A stored packet on a run's timeline: where and when (ms from the run's first packet, to the microsecond), tcpdump's
/// summary, its kind from the header fields, and the probe flow it belongs to (index into the run's probes) and direction.
/// </summary>
public sealed record TimelinePacket(string Network, string Interface, DateTimeOffset Timestamp, double OffsetMs, string Summary, string Kind, int? Probe, FlowDirection? Direction);

/// <summary>
/// What a run's captures show: packets in kernel-time order (at most a page of them; <see cref="Total"/> all stored),
/// the NAT its probes' flows show ("on net1: ping c2 → c1, echo request: source … → … (gateway of net1), …"), the other
/// traffic per bridge and kind, and how many rows predate stored header fields (not analysed).
/// </summary>
public sealed record RunTraffic(IReadOnlyList<TimelinePacket> Packets, int Total, IReadOnlyList<string> Nat, IReadOnlyList<OtherTraffic> Other, int NotDecoded);

/// <summary>Two runs side by side; each side's traffic as <see cref="RunQueries.TrafficAsync"/> reads it.</summary>
public sealed record RunComparison(RunSummary A, RunSummary B, IReadOnlyList<ProbeComparison> Probes, IReadOnlyList<RuleComparison> Rules,
    IReadOnlyList<string> RulesOnlyInA, IReadOnlyList<string> RulesOnlyInB, [property: JsonIgnore] RunTraffic TrafficA, [property: JsonIgnore] RunTraffic TrafficB,
    RunPlace PlaceA, RunPlace PlaceB, IReadOnlyList<RunDifference> Differences)
{
    /// <summary>Other traffic on the bridges (IGMP, ARP, MLD, ...): never NAT evidence, counted per network and kind.</summary>
    public IReadOnlyList<OtherTraffic> OtherA => TrafficA.Other;

    public IReadOnlyList<OtherTraffic> OtherB => TrafficB.Other;

    public IReadOnlyList<string> NatA => TrafficA.Nat;

    public IReadOnlyList<string> NatB => TrafficB.Nat;

    public IReadOnlyList<TimelinePacket> TimelineA => TrafficA.Packets;

    public IReadOnlyList<TimelinePacket> TimelineB => TrafficB.Packets;
}

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
        r => new RunSummary(r.Id, r.ExperimentId, r.ExperimentName, r.Variant, r.Status, r.Author, r.StartedAt, r.EndedAt, r.ProbesSent, r.ProbesReceived, r.Outcome, r.Error, r.Origin, r.Host);

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

        var ta = await TrafficAsync(db, a, na, ct: ct);
        var tb = await TrafficAsync(db, b, nb, ct: ct);
        var addedA = ra.Where(kv => kv.Value.Change == "added").Select(kv => kv.Key.Rule).ToHashSet();
        var addedB = rb.Where(kv => kv.Value.Change == "added").Select(kv => kv.Key.Rule).ToHashSet();
        var differences = await RunDifferences.ExplainAsync(db, da, dbb, na, nb, probes, await AddressesAsync(db, a, ct), await AddressesAsync(db, b, ct), ct);
        return new RunComparison(da.Summary, dbb.Summary, probes, rules, [.. addedA.Except(addedB)], [.. addedB.Except(addedA)], ta, tb,
            new RunPlace(da.Host, da.EngineVersion, da.FirewallBackend, da.Layout), new RunPlace(dbb.Host, dbb.EngineVersion, dbb.FirewallBackend, dbb.Layout), differences);
    }

    /// <summary>
    /// Each run makes its own networks, so bridge names, subnets and addresses differ between runs: they are replaced by
    /// the scenario's names ({net1}, {net1.subnet}, {c1}) so the same rule reads the same in both.
    /// </summary>
    private static async Task<Func<string, string>> NormalizerAsync(DashboardDbContext db, Guid run, CancellationToken ct)
    {
        if (await TopologyAsync(db, run, ct) is not { } topology)
        {
            return s => s;
        }

        var map = new List<(string From, string To)>();
        foreach (var n in topology.Networks)
        {
            map.Add((n.Bridge, "{" + n.Name + "}"));
            map.Add((n.Subnet, "{" + n.Name + ".subnet}"));
            map.Add((n.Gateway, "{" + n.Name + ".gateway}"));
        }

        map.AddRange(topology.Containers.Select(c => (c.Address, "{" + c.Name + "}")));

        // Longest first, and whole tokens only, so 172.18.0.1 never rewrites part of 172.18.0.12.
        var ordered = map.Where(m => m.From.Length > 0).OrderByDescending(m => m.From.Length).ToList();
        if (ordered.Count == 0)
        {
            return s => s;
        }

        var pattern = new Regex(string.Join('|', ordered.Select(m => $@"(?<![\w.]){Regex.Escape(m.From)}(?![\w]|\.\d)")), RegexOptions.CultureInvariant);
        var lookup = ordered.GroupBy(m => m.From).ToDictionary(g => g.Key, g => g.First().To);
        var tag = new Regex(@"netlab:run-[a-z0-9]+-[0-9a-f]{32}", RegexOptions.CultureInvariant);
        return s => tag.Replace(pattern.Replace(s, m => lookup[m.Value]), "netlab:run");
    }

    /// <summary>The run's containers' addresses by their scenario names (empty without a topology artifact).</summary>
    private static async Task<IReadOnlyDictionary<string, string>> AddressesAsync(DashboardDbContext db, Guid run, CancellationToken ct) =>
        (await TopologyAsync(db, run, ct))?.Containers.GroupBy(c => c.Name).ToDictionary(g => g.Key, g => g.First().Address) ?? new Dictionary<string, string>();

    private sealed record TopologyNetwork(string Name, string Bridge, string Subnet, string Gateway);

    private sealed record TopologyContainer(string Name, string Address);

    private sealed record RunTopology(IReadOnlyList<TopologyNetwork> Networks, IReadOnlyList<TopologyContainer> Containers);

    /// <summary>The run's own networks and containers (its "topology" artifact), by their names in the scenario.</summary>
    private static async Task<RunTopology?> TopologyAsync(DashboardDbContext db, Guid run, CancellationToken ct)
    {
        var content = await db.RunArtifacts.AsNoTracking().Where(x => x.RunId == run && x.Kind == RunArtifactKind.Topology).Select(x => x.Content).SingleOrDefaultAsync(ct);
        if (content is null)
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(content);
            var networks = Items(doc.RootElement, "networks").Select(n => new TopologyNetwork(ScenarioName(Text(n, "name")), Text(n, "bridge"), Text(n, "subnet"), Text(n, "gateway"))).ToList();
            var containers = Items(doc.RootElement, "containers").Select(c => new TopologyContainer(ScenarioName(Text(c, "name")), Text(c, "address"))).ToList();
            return new RunTopology(networks, containers);
        }
        catch (JsonException)
        {
            // An imported run's topology is only as good as its file: without it, names stay as recorded.
            return null;
        }

        static string Text(JsonElement e, string name) =>
            e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";

        static IEnumerable<JsonElement> Items(JsonElement root, string name) =>
            root.ValueKind == JsonValueKind.Object && root.TryGetProperty(name, out var a) && a.ValueKind == JsonValueKind.Array ? a.EnumerateArray().ToList() : [];
    }

    /// <summary>"nlrun-1a2b3c4d-net-a" → "net-a": the name a run gave its network or container, back to the scenario's.</summary>
    private static string ScenarioName(string name)
    {
        var parts = name.Split('-', 3);
        return parts.Length == 3 && parts[0] == "nlrun" ? parts[2] : name;
    }

    /// <summary>
    /// A run's stored packets in kernel-time order, each with its kind and the probe flow it belongs to, the NAT its
    /// flows show and the other traffic on the bridges, all from decoded header fields (see <see cref="ProbeTraffic"/>).
    /// </summary>
    public static async Task<RunTraffic> TrafficAsync(DashboardDbContext db, Guid run, Func<string, string>? normalize = null, int max = 2000, CancellationToken ct = default)
    {
        normalize ??= s => s;
        var captures = await db.RunCaptures.AsNoTracking().Where(c => c.RunId == run).ToListAsync(ct);
        var networkOf = captures.GroupBy(c => c.Interface).ToDictionary(g => g.Key, g => g.First().Network);
        var rows = await db.RunPackets.AsNoTracking().Where(p => p.RunId == run).OrderBy(p => p.Timestamp).ThenBy(p => p.Id).ToListAsync(ct);
        var probes = await db.RunProbes.AsNoTracking().Where(p => p.RunId == run).OrderBy(p => p.Order).ToListAsync(ct);
        var topology = await TopologyAsync(db, run, ct);
        var addressOf = (topology?.Containers ?? []).GroupBy(c => c.Name).ToDictionary(g => g.Key, g => g.First().Address);
        var flows = probes.Select(p => new ProbeFlow(p.Kind, p.From, p.To, addressOf.GetValueOrDefault(p.From) ?? "", p.Address, p.Port)).ToList();
        var host = (topology?.Networks ?? []).Where(n => n.Gateway.Length > 0).Select(n => new HostAddress(n.Gateway, $"gateway of {n.Name}")).ToList();

        var seen = rows.Select(r => new SeenPacket(networkOf.GetValueOrDefault(r.Interface) ?? r.Interface, RunPackets.ToDecoded(r))).ToList();
        var decoded = Enumerable.Range(0, rows.Count).Where(i => rows[i].Decoded).ToList();
        var analysis = ProbeTraffic.Analyse([.. decoded.Select(i => seen[i])], flows, host);
        var flowOf = new FlowMembership?[rows.Count];
        for (var k = 0; k < decoded.Count; k++)
        {
            flowOf[decoded[k]] = analysis.Flows[k];
        }

        var t0 = rows.Count == 0 ? DateTimeOffset.UnixEpoch : rows[0].Timestamp;
        var packets = rows.Take(max).Select((r, i) => new TimelinePacket(seen[i].Network, r.Interface, r.Timestamp, (r.Timestamp - t0).TotalMilliseconds, normalize(r.Summary),
            r.Decoded ? TrafficKind.Of(seen[i].Packet) : "not decoded", flowOf[i]?.Probe, flowOf[i]?.Direction)).ToList();
        return new RunTraffic(packets, rows.Count, [.. analysis.Nat.Select(n => normalize(n.Describe()))], analysis.Other, rows.Count - decoded.Count);
    }
}
