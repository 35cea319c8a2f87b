using Dashboard.Core.Firewall;
using Dashboard.Data;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.App.Runs;

/// <summary>Where a run ran: its host, the engine's version, firewall backend and Docker's rule layout.</summary>
public sealed record RunPlace(string? Host, string? EngineVersion, string? FirewallBackend, string? Layout);

/// <summary>A rule that stopped a probe's packets in one run: its place, its text (with the scenario's names), its count in each run.</summary>
public sealed record DecidingRule(string Table, string Chain, string Target, string Rule, long Packets, long? PacketsInOther, bool InOther);

/// <summary>
/// A probe whose outcome differs between the runs: which run lost it (<paramref name="LostIn"/>, "A" or "B"), the
/// packets lost, the rules that counted them there and not in the other run, and each run's predicted deciding rule.
/// </summary>
public sealed record RunDifference(string Kind, string From, string To, string LostIn, int Lost, IReadOnlyList<DecidingRule> Rules, string? PredictedA, string? PredictedB)
{
    /// <summary>One sentence: "ping c2 → c1 lost 3 in B: raw PREROUTING … -j DROP counted 3 (A has no such rule)".</summary>
    public string Explanation => Rules.Count == 0
        ? $"{Kind} {From} → {To} lost {Lost} in {LostIn}, and no DROP or REJECT rule counted them there more than in the other run (a policy, or a rule the counters do not show)"
        : $"{Kind} {From} → {To} lost {Lost} in {LostIn}: " + string.Join("; ", Rules.Select(r =>
            $"{r.Table} {r.Chain} {r.Rule} counted {r.Packets} ({(r.InOther ? $"{r.PacketsInOther ?? 0} in the other run" : "the other run has no such rule")})"));
}

/// <summary>
/// Why two runs of one experiment (typically on two Docker versions) disagree: for each probe answered in one and not
/// the other, the DROP and REJECT rules whose counters moved by at least the lost packets in the run that lost them,
/// and that did not move as much (or do not exist) in the other, and whose parsed source and destination matches can
/// match the probe's request (the probe's own addresses in that run). Rules are compared by table, chain and text with
/// the scenario's names in place of each run's bridges and addresses; targets and matches come from the runs' own
/// rulesets, parsed.
/// </summary>
public static class RunDifferences
{
    public static async Task<IReadOnlyList<RunDifference>> ExplainAsync(DashboardDbContext db, RunDetail a, RunDetail b, Func<string, string> normalizeA, Func<string, string> normalizeB, IReadOnlyList<ProbeComparison> probes,
        IReadOnlyDictionary<string, string> addressesA, IReadOnlyDictionary<string, string> addressesB, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var differing = probes.Where(p => p.A is { } pa && p.B is { } pb && (pa.Received > 0) != (pb.Received > 0)).ToList();
        if (differing.Count == 0)
        {
            return [];
        }

        var rulesA = await RulesAsync(db, a.Summary.Id, normalizeA, ct);
        var rulesB = await RulesAsync(db, b.Summary.Id, normalizeB, ct);
        var deltaA = Deltas(a, normalizeA);
        var deltaB = Deltas(b, normalizeB);
        var result = new List<RunDifference>();
        foreach (var p in differing)
        {
            var lostInA = p.A!.Received == 0;
            var lost = lostInA ? p.A.Sent - p.A.Received : p.B!.Sent - p.B.Received;
            var (rules, deltas, otherRules, otherDeltas) = lostInA ? (rulesA, deltaA, rulesB, deltaB) : (rulesB, deltaB, rulesA, deltaA);
            var lostProbe = lostInA ? p.A : p.B!;
            var source = (lostInA ? addressesA : addressesB).GetValueOrDefault(lostProbe.From);
            var deciding = deltas
                .Where(d => d.Value >= lost && rules.TryGetValue(d.Key, out var r) && (r.Target ?? "").ToUpperInvariant() is "DROP" or "REJECT" && CanMatch(r, source, lostProbe.Address))
                .Where(d => otherDeltas.GetValueOrDefault(d.Key) < lost)
                .Select(d => new DecidingRule(d.Key.Table, d.Key.Chain, rules[d.Key].Target!.ToUpperInvariant(), d.Key.Rule, d.Value, otherRules.ContainsKey(d.Key) ? otherDeltas.GetValueOrDefault(d.Key) : null, otherRules.ContainsKey(d.Key)))
                .OrderBy(r => r.Table == "raw" ? 0 : r.Table == "mangle" ? 1 : r.Table == "nat" ? 2 : 3)
                .ThenBy(r => r.Chain, StringComparer.Ordinal)
                .Take(10)
                .ToList();
            result.Add(new RunDifference(p.Kind, p.From, p.To, lostInA ? "A" : "B", lost, deciding, p.A.PredictedRule is { } ra ? normalizeA(ra) : null, p.B!.PredictedRule is { } rb ? normalizeB(rb) : null));
        }

        return result;
    }

    private static Dictionary<(string Table, string Chain, string Rule), long> Deltas(RunDetail run, Func<string, string> normalize) =>
        run.Deltas.Where(d => d.Change is null or "added")
            .GroupBy(d => (d.Table, d.Chain, normalize(d.Rule)))
            .ToDictionary(g => g.Key, g => g.Sum(d => d.DeltaPackets));

    /// <summary>
    /// Whether the rule's parsed source and destination matches can hold for the probe's request from
    /// <paramref name="source"/> (unknown: any) to <paramref name="destination"/>; other matches are not ruled out here.
    /// </summary>
    internal static bool CanMatch(FirewallRule rule, string? source, string destination)
    {
        return Holds(rule.Find("-s"), source) && Holds(rule.Find("-d"), destination);

        static bool Holds(RuleMatch? m, string? address)
        {
            if (m is not { Value: { } value } || address is null || !System.Net.IPAddress.TryParse(address, out var a))
            {
                return true;
            }

            var inside = System.Net.IPNetwork.TryParse(value.Contains('/', StringComparison.Ordinal) ? value : value + "/32", out var n) ? n.Contains(a) : true;
            return m.Value.Negated ? !inside : inside;
        }
    }

    /// <summary>The run's rules after it (its stored ruleset, parsed) by normalized key.</summary>
    private static async Task<Dictionary<(string Table, string Chain, string Rule), FirewallRule>> RulesAsync(DashboardDbContext db, Guid run, Func<string, string> normalize, CancellationToken ct)
    {
        var text = await db.RunArtifacts.AsNoTracking().Where(x => x.RunId == run && x.Kind == RunArtifactKind.RulesetAfter).Select(x => x.Content).FirstOrDefaultAsync(ct);
        var rules = new Dictionary<(string, string, string), FirewallRule>();
        if (string.IsNullOrWhiteSpace(text))
        {
            return rules;
        }

        try
        {
            foreach (var r in RulesetReader.Read(text).Rules)
            {
                rules.TryAdd((r.Table, r.Chain, normalize(r.Text)), r);
            }
        }
        catch (RulesetFormatException)
        {
            // An imported run's ruleset is only as good as its file: without it, no rule is named.
        }

        return rules;
    }
}
