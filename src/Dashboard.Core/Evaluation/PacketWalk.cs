using System.Globalization;
using Dashboard.Core.Firewall;

namespace Dashboard.Core.Evaluation;

/// <summary>A rule the packet met and that matched, as the walk drawing shows it (linked to the Firewall page).</summary>
public sealed record WalkRule(string Table, string Chain, int? Position, string Text, string Action, bool Deciding)
{
    /// <summary>How the drawing names it: <c>DOCKER-ISOLATION-STAGE-2 #2 DROP</c>, <c>FORWARD policy DROP</c>.</summary>
    public string Label => Position is { } p ? $"{Chain} #{p.ToString(CultureInfo.InvariantCulture)} {Action}" : $"{Chain} {Text}";
}

/// <summary>
/// One table's base chain on one hook (iptables: raw, mangle, nat, filter in the kernel's order; nftables: each base
/// chain by priority): whether the packet passed through it, the rules that matched there (its own and those of the
/// chains it jumped to, in order), how it left, and the address translation that happened there.
/// </summary>
public sealed record WalkStation(string Hook, string Table, string Chain, int Priority, bool Visited, IReadOnlyList<WalkRule> Matched, string? Exit, string? Translation)
{
    /// <summary>The station decided the packet's fate (its deciding rule is here).</summary>
    public bool Decides => Matched.Any(r => r.Deciding);
}

/// <summary>
/// One packet's walk through the host's netfilter hooks, as a drawing needs it: the hooks on its way in order (those
/// it never reached included), each hook's stations, the deciding rule, and the address translations. Built the same
/// way from the evaluator's prediction and from the kernel's trace, so the two can be drawn alike and compared.
/// </summary>
public sealed record PacketWalk(
    string Direction,
    string Source,
    string Destination,
    string? InInterface,
    string? OutInterface,
    IReadOnlyList<string> Hooks,
    IReadOnlyList<WalkStation> Stations,
    string Verdict,
    WalkRule? Deciding,
    bool Traced)
{
    /// <summary>The hooks a forwarded packet meets, in order, and the other ways through the host.</summary>
    public static readonly IReadOnlyList<string> ForwardHooks = ["prerouting", "forward", "postrouting"];

    private static readonly string[] IptablesChains = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

    /// <summary>
    /// What two walks of one packet must share, as text: the hooks it reached, the rule that decided and the verdict.
    /// (The stations in between may differ between a prediction and a trace without a different fate: the kernel
    /// skips the nat chains for a connection's later packets, and its own TRACE rule shows in the trace.)
    /// </summary>
    public string Signature =>
        $"{string.Join(" > ", Hooks.Where(h => Stations.Any(s => s.Hook == h && s.Visited)))} | {(Deciding is { } d ? $"{d.Table} {d.Chain} {(d.Position is { } p ? "#" + p.ToString(CultureInfo.InvariantCulture) : "policy")}" : "no deciding rule")} | {Verdict}";

    /// <summary>The walk the evaluator predicts (<see cref="Evaluation.Path"/>), drawn on the ruleset's stations.</summary>
    public static PacketWalk Predicted(Evaluation evaluation, FlowSpec flow, Ruleset ruleset, string direction)
    {
        ArgumentNullException.ThrowIfNull(evaluation);
        ArgumentNullException.ThrowIfNull(flow);
        var deciding = evaluation.DecidingRule;
        var steps = evaluation.Path.Where(s => s.Matched).ToList();
        var visited = evaluation.Path.Select(s => (s.Hook, s.Table)).ToHashSet();
        var hooks = HooksOf(evaluation.Path.Select(s => s.Hook).Distinct().ToList(), flow.InInterface, flow.OutInterface);
        WalkRule? decidingRule = null;
        var stations = StationsOf(ruleset, hooks, (hook, table) =>
        {
            var here = steps.Where(s => s.Hook == hook && s.Table == table).ToList();
            var rules = here.Select(s =>
            {
                var isDeciding = deciding is { } d && d.Table == s.Table && d.Chain == s.Chain && d.Position == s.Position && evaluation.Verdict != Dashboard.Core.Evaluation.Verdict.Undetermined;
                var rule = new WalkRule(s.Table, s.Chain, s.Position, s.Rule, ActionOf(s), isDeciding && decidingRule is null);
                decidingRule ??= rule.Deciding ? rule : null;
                return rule;
            }).ToList();
            var translation = table == "nat" || IsNatChain(ruleset, hook, table)
                ? hook == "postrouting" && evaluation.NatSource is { } ns ? $"source {flow.Source} → {ns}"
                : hook == "prerouting" && evaluation.NatDestination is { } nd ? $"destination {flow.Destination} → {nd}" : null
                : null;
            return (visited.Contains((hook, table)), rules, rules.LastOrDefault()?.Action, translation);
        });
        return new PacketWalk(direction, flow.Source, flow.Destination, flow.InInterface, flow.OutInterface, hooks, stations, VerdictText(evaluation.Verdict), decidingRule, Traced: false);
    }

    /// <summary>The walks of a request and of its reply (when it got one), as <see cref="PacketEvaluator.Explain"/> decided them.</summary>
    public static (PacketWalk Request, PacketWalk? Reply) Predicted(RoundTrip roundTrip, FlowSpec flow, Ruleset ruleset)
    {
        ArgumentNullException.ThrowIfNull(roundTrip);
        ArgumentNullException.ThrowIfNull(flow);
        var request = Predicted(roundTrip.Request, flow, ruleset, "request");
        return (request, roundTrip.Reply is { } reply ? Predicted(reply, ReplyOf(flow, roundTrip.Request), ruleset, "reply") : null);
    }

    /// <summary>The reply as the drawing names it: from the responder (after DNAT) back to the address the request left with (after SNAT).</summary>
    public static FlowSpec ReplyOf(FlowSpec flow, Evaluation request)
    {
        ArgumentNullException.ThrowIfNull(flow);
        ArgumentNullException.ThrowIfNull(request);
        return new FlowSpec
        {
            InInterface = request.OutInterface ?? flow.OutInterface,
            OutInterface = flow.InInterface,
            Source = request.NatDestination ?? flow.Destination,
            Destination = request.NatSource ?? flow.Source,
            Protocol = flow.Protocol,
            State = ConnectionState.Established,
        };
    }

    /// <summary>
    /// The walk the kernel reported for a traced packet (<c>xtables-monitor --trace</c>: each rule that matched, and
    /// each chain left by its policy or by returning), drawn on the ruleset's stations when it is known.
    /// <paramref name="addressOf"/> gives an interface's address, to say where MASQUERADE rewrote the source.
    /// </summary>
    public static PacketWalk Observed(TracedPacket packet, Ruleset? ruleset, string direction, Func<string, string?>? addressOf = null)
    {
        ArgumentNullException.ThrowIfNull(packet);
        var hook = "";
        var placed = new List<(string Hook, TraceStep Step)>();
        foreach (var s in packet.Steps)
        {
            // A built-in chain names its hook; a user chain is entered from the hook the walk is in.
            if (IptablesChains.Contains(s.Chain, StringComparer.Ordinal))
            {
                hook = s.Chain.ToLowerInvariant();
            }

            placed.Add((hook.Length == 0 ? "prerouting" : hook, s));
        }

        var decision = packet.Decision;
        var hooks = HooksOf(placed.Select(p => p.Hook).Distinct().ToList(), packet.InInterface, packet.OutInterface);
        WalkRule? deciding = null;
        var stations = StationsOf(ruleset, hooks, (h, table) =>
        {
            var here = placed.Where(p => p.Hook == h && p.Step.Table == table).Select(p => p.Step).ToList();
            var rules = here.Where(s => s.Kind != TraceStepKind.Return).Select(s =>
            {
                var text = s.Kind == TraceStepKind.Policy ? $"policy {s.Verdict}" : s.RuleText ?? "";
                var rule = new WalkRule(s.Table, s.Chain, s.Kind == TraceStepKind.Policy ? null : s.Position, text, s.JumpTarget is { } j ? $"{s.Verdict} {j}".Trim() : s.Verdict, ReferenceEquals(s, decision) && deciding is null);
                deciding ??= rule.Deciding ? rule : null;
                return rule;
            }).ToList();
            var masquerade = here.FirstOrDefault(s => s.RuleText?.Contains("MASQUERADE", StringComparison.Ordinal) == true);
            var translation = masquerade is null ? null
                : $"source {packet.Source} → {(packet.OutInterface is { } o && addressOf?.Invoke(o) is { } a ? a : "the address of " + (packet.OutInterface ?? "the out interface"))} (MASQUERADE)";
            return (here.Count > 0, rules, rules.LastOrDefault()?.Action, translation);
        });
        var verdict = decision is null ? "SEEN" : decision.Verdict.ToUpperInvariant();
        return new PacketWalk(direction, packet.Source, packet.Destination, packet.InInterface, packet.OutInterface, hooks, stations, verdict, deciding, Traced: true);
    }

    /// <summary>
    /// Where a prediction and a trace of the same packet part: another verdict, or another deciding rule. Null when
    /// they agree (or the trace has not seen the packet decided yet).
    /// </summary>
    public static string? Disagreement(PacketWalk predicted, PacketWalk traced)
    {
        ArgumentNullException.ThrowIfNull(predicted);
        ArgumentNullException.ThrowIfNull(traced);
        if (traced.Verdict == "SEEN")
        {
            return null;
        }

        static string By(WalkRule? r) => r is null ? "" : $" by {r.Table} {r.Chain}{(r.Position is { } p ? " #" + p.ToString(CultureInfo.InvariantCulture) : " policy")}";
        var sameRule = predicted.Deciding is { } a && traced.Deciding is { } b ? a.Table == b.Table && a.Chain == b.Chain && a.Position == b.Position : predicted.Deciding is null == traced.Deciding is null;
        return predicted.Verdict == traced.Verdict && sameRule ? null
            : $"predicted {predicted.Verdict}{By(predicted.Deciding)}; the kernel traced {traced.Verdict}{By(traced.Deciding)}";
    }

    /// <summary>The hooks on the packet's way: those it reached and, after them, those it would have met.</summary>
    private static List<string> HooksOf(List<string> reached, string? inInterface, string? outInterface)
    {
        if (reached.Contains("output") || (reached.Count == 0 && string.IsNullOrEmpty(inInterface)))
        {
            return ["output", "postrouting"];
        }

        if (reached.Contains("input") || (!reached.Contains("forward") && string.IsNullOrEmpty(outInterface)))
        {
            return ["prerouting", "input"];
        }

        return [.. ForwardHooks];
    }

    private static List<WalkStation> StationsOf(Ruleset? ruleset, IReadOnlyList<string> hooks, Func<string, string, (bool Visited, List<WalkRule> Rules, string? Exit, string? Translation)> at)
    {
        var stations = new List<WalkStation>();
        foreach (var hook in hooks)
        {
            var bases = ruleset is null ? [] : PacketEvaluator.BaseChainsOf(ruleset, hook);
            foreach (var b in bases)
            {
                var (visited, rules, exit, translation) = at(hook, b.Table);
                stations.Add(new WalkStation(hook, b.Table, b.Chain, b.Priority, visited, rules, exit, translation));
            }

            if (bases.Count == 0)
            {
                // Without the ruleset (a trace alone), the tables the packet was seen in.
                foreach (var table in new[] { "raw", "mangle", "nat", "filter" })
                {
                    var (visited, rules, exit, translation) = at(hook, table);
                    if (visited)
                    {
                        stations.Add(new WalkStation(hook, table, hook.ToUpperInvariant(), 0, visited, rules, exit, translation));
                    }
                }
            }
        }

        return stations;
    }

    private static bool IsNatChain(Ruleset ruleset, string hook, string table) =>
        PacketEvaluator.BaseChainsOf(ruleset, hook).Any(b => b.Table == table && b.IsNat);

    private static string ActionOf(PathStep s) => s.Action switch
    {
        null or "" => "matched",
        { } a => a,
    };

    private static string VerdictText(Verdict v) => v switch
    {
        Dashboard.Core.Evaluation.Verdict.Accept => "ACCEPT",
        Dashboard.Core.Evaluation.Verdict.Drop => "DROP",
        Dashboard.Core.Evaluation.Verdict.Reject => "REJECT",
        _ => "UNDETERMINED",
    };
}
