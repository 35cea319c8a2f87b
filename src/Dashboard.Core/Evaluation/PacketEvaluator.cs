using System.Globalization;
using System.Runtime.CompilerServices;
using Dashboard.Core.Firewall;

namespace Dashboard.Core.Evaluation;

/// <summary>What the evaluator knows about the host beyond the ruleset.</summary>
public sealed class EvaluationContext
{
    public static readonly EvaluationContext Empty = new();

    /// <summary>The host's own addresses (bridge gateways and the like), for addrtype LOCAL and fib type local. Null: not known.</summary>
    public IReadOnlySet<string>? LocalAddresses { get; init; }

    /// <summary>Address of each interface, for MASQUERADE (a Docker bridge's is its network's gateway).</summary>
    public IReadOnlyDictionary<string, string> InterfaceAddresses { get; init; } = new Dictionary<string, string>();

    /// <summary>ipset members when known (name → addresses or prefixes).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> IpSets { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    private HashSet<uint>? _local;

    internal bool? IsLocal(uint address)
    {
        if (LocalAddresses is null)
        {
            return null;
        }

        _local ??= [.. LocalAddresses.Select(a => FlowSpec.TryParseIpv4(a, out var v) ? v : 0u)];
        return _local.Contains(address);
    }
}

/// <summary>A rule that decided: table, chain, 1-based position (null for a chain's policy) and its text.</summary>
public sealed record RuleRef(string Table, string Chain, int? Position, string Rule);

/// <summary>A base chain on a hook: its table, name and priority (iptables tables get the kernel's priorities).</summary>
public sealed record WalkBase(string Table, string Chain, int Priority, bool IsNat);

/// <summary>One rule (or policy) the packet met: whether it matched, and why not when it did not.</summary>
public sealed record PathStep(string Hook, string Table, string Chain, int? Position, string Rule, bool Matched, string? Why, string? Action);

/// <summary>The fate of one packet: verdict, the rule that decided it, the path, and the packet as it leaves.</summary>
public sealed record Evaluation(
    Verdict Verdict,
    RuleRef? DecidingRule,
    IReadOnlyList<PathStep> Path,
    string? NatSource,
    string? NatDestination,
    string? OutInterface,
    string? Reason);

/// <summary>Request and reply, the reply as the kernel meets it (ESTABLISHED, addressed to the masqueraded source, NAT undone before filter).</summary>
public sealed record RoundTrip(Evaluation Request, Evaluation? Reply)
{
    public string Outcome => (Request.Verdict, Reply?.Verdict) switch
    {
        (Verdict.Undetermined, _) => "undetermined: the request's fate depends on something the evaluator does not know",
        (Verdict.Drop or Verdict.Reject, _) => "the request is dropped",
        (Verdict.Accept, Verdict.Accept) => "delivered and answered",
        (Verdict.Accept, Verdict.Drop or Verdict.Reject) => "the request is delivered but the reply is dropped",
        _ => "the request is delivered; the reply's fate is undetermined",
    };

    public bool Succeeds => Request.Verdict == Verdict.Accept && Reply?.Verdict == Verdict.Accept;
}

/// <summary>
/// Walks a forwarded IPv4 packet through the hooks in netfilter order (raw, mangle and nat PREROUTING, the routing
/// decision, mangle and filter FORWARD with jumps, gotos, returns and policies, mangle and nat POSTROUTING; INPUT
/// instead of FORWARD when the destination is the host's; OUTPUT then POSTROUTING when the host sends it), for
/// iptables rulesets and for nftables base chains by hook and priority. Pure: it reads the ruleset, never the host.
/// Anything it does not understand makes the verdict "undetermined" naming the rule, unless another match of that
/// rule is already false or the rule's action cannot change the packet's fate.
/// </summary>
public static class PacketEvaluator
{
    private const int MaxDepth = 64;

    /// <summary>
    /// Rules one packet's walk may examine. Depth alone does not bound a walk: chains that each jump twice to the next
    /// cost 2^depth visits. A real Docker host's walk examines a few thousand at most; past this the answer is
    /// undetermined, with the reason, in bounded time and memory.
    /// </summary>
    public const int MaxSteps = 200_000;

    /// <summary>Path steps kept for display; the walk goes on (within <see cref="MaxSteps"/>) without recording more.</summary>
    public const int MaxRecordedSteps = 5_000;

    /// <summary>The hooks a packet that arrives on an interface can meet, in order (it meets forward or input, never both).</summary>
    private static readonly string[] HookOrder = ["prerouting", "forward", "input", "postrouting"];

    /// <summary>The hooks of a packet the host itself sends (no input interface, a source address of its own).</summary>
    private static readonly string[] LocalHookOrder = ["output", "postrouting"];

    private static readonly ConditionalWeakTable<Ruleset, CompiledRuleset> Cache = [];

    /// <summary>The base chains a packet meets on <paramref name="hook"/>, in the order the kernel runs them (for drawing the walk).</summary>
    public static IReadOnlyList<WalkBase> BaseChainsOf(Ruleset ruleset, string hook)
    {
        ArgumentNullException.ThrowIfNull(ruleset);
        var compiled = Cache.GetValue(ruleset, r => new CompiledRuleset(r));
        return [.. compiled.BaseChains(hook).Select(b => new WalkBase(b.Table.Name, b.Chain.Name, b.Priority, b.IsNat))];
    }

    public static Evaluation Evaluate(Ruleset ruleset, FlowSpec flow, EvaluationContext? context = null, bool recordPath = true)
    {
        ArgumentNullException.ThrowIfNull(ruleset);
        ArgumentNullException.ThrowIfNull(flow);
        var compiled = Cache.GetValue(ruleset, r => new CompiledRuleset(r));
        return Decide(compiled, context ?? EvaluationContext.Empty, recordPath, ToPacket(flow), null);
    }

    /// <summary>The request, then its reply as the kernel meets it.</summary>
    public static RoundTrip Explain(Ruleset ruleset, FlowSpec flow, EvaluationContext? context = null, bool recordPath = true)
    {
        ArgumentNullException.ThrowIfNull(ruleset);
        ArgumentNullException.ThrowIfNull(flow);
        var compiled = Cache.GetValue(ruleset, r => new CompiledRuleset(r));
        var ctx = context ?? EvaluationContext.Empty;
        var request = Decide(compiled, ctx, recordPath, ToPacket(flow), null);
        if (request.Verdict != Verdict.Accept)
        {
            return new RoundTrip(request, null);
        }

        // The reply comes from the real responder (after DNAT) to the address the request left with (after SNAT);
        // conntrack undoes the source NAT after raw/mangle PREROUTING, so filter sees the original source.
        var responder = request.NatDestination ?? flow.Destination;
        var reply = new Packet
        {
            // A request the host took in (INPUT) is answered by the host itself: the reply starts at OUTPUT.
            In = ctx.IsLocal(Parse(responder)) == true ? "" : request.OutInterface ?? flow.OutInterface ?? "",
            PlannedOut = flow.InInterface ?? "",
            Protocol = Packet.ProtocolNumber(flow.Protocol),
            Source = Parse(responder),
            // Masqueraded to an address the evaluator was not told: raw sees the reply to it; taken as the source here.
            Destination = FlowSpec.TryParseIpv4(request.NatSource, out var masq) ? masq : Parse(flow.Source),
            SourcePort = flow.DestinationPort ?? 0,
            DestinationPort = flow.SourcePort ?? 0,
            IcmpType = flow.IcmpType is null || IcmpTypes.Parse(flow.IcmpType) == 8 ? 0 : IcmpTypes.Parse(flow.IcmpType) ?? 0,
            State = "ESTABLISHED",
            Dnatted = request.NatDestination is not null,
            Snatted = request.NatSource is not null,
        };
        var replyEval = Decide(compiled, ctx, recordPath, reply, Parse(flow.Source));
        return new RoundTrip(request, replyEval);
    }

    /// <summary>Unknown matches (e.g. an ipset's members) one evaluation may fork on: up to 2^this walks.</summary>
    private const int MaxForks = 6;

    /// <summary>
    /// One packet's fate. Where a match cannot be decided (an ipset whose members are not known, a match module the
    /// evaluator does not read; not whether an address is the host's, which would also change routing), the walk is run again assuming the match holds and assuming it does not, for up to
    /// <see cref="MaxForks"/> such matches; when every assumption gives the same verdict, NAT and output interface,
    /// that is the answer (the path shown is the first assumption's, the reason says so); otherwise the answer stays
    /// undetermined, naming the match. The forks keep no path and share one budget of <see cref="MaxSteps"/> rules;
    /// the first assumption is walked once more to show its path.
    /// </summary>
    private static Evaluation Decide(CompiledRuleset compiled, EvaluationContext ctx, bool record, Packet packet, uint? destinationAfterPrerouting)
    {
        var empty = new Dictionary<string, bool>(StringComparer.Ordinal);
        var walk = new Walk(compiled, ctx, record, empty, new StepBudget());
        var first = walk.Run(packet.Clone(), destinationAfterPrerouting);
        if (first.Verdict != Verdict.Undetermined || walk.Unknown is null)
        {
            return first;
        }

        // The forks keep no path (one budget for all of them); the first assumption's path is walked again for display.
        var budget = new StepBudget();
        var pending = new Stack<Dictionary<string, bool>>();
        pending.Push(new Dictionary<string, bool>(StringComparer.Ordinal) { [walk.Unknown] = false });
        pending.Push(new Dictionary<string, bool>(StringComparer.Ordinal) { [walk.Unknown] = true });
        Evaluation? decided = null;
        Dictionary<string, bool>? decidedBy = null;
        var leaves = 0;
        while (pending.TryPop(out var assumed))
        {
            var fork = new Walk(compiled, ctx, record: false, assumed, budget);
            var e = fork.Run(packet.Clone(), destinationAfterPrerouting);
            if (e.Verdict == Verdict.Undetermined && fork.Unknown is { } key && assumed.Count < MaxForks)
            {
                pending.Push(new Dictionary<string, bool>(assumed, StringComparer.Ordinal) { [key] = false });
                pending.Push(new Dictionary<string, bool>(assumed, StringComparer.Ordinal) { [key] = true });
                continue;
            }

            if (e.Verdict == Verdict.Undetermined || (decided is not null && !SameFate(decided, e)))
            {
                return first;
            }

            leaves++;
            (decided, decidedBy) = (decided ?? e, decidedBy ?? assumed);
        }

        var shown = record ? new Walk(compiled, ctx, record: true, decidedBy!, new StepBudget()).Run(packet.Clone(), destinationAfterPrerouting) : decided!;
        return shown with
        {
            Reason = $"decided whatever the undecidable matches are ({leaves} cases, one verdict); first: {first.Reason}",
        };
    }

    private static bool SameFate(Evaluation a, Evaluation b) =>
        a.Verdict == b.Verdict && a.NatSource == b.NatSource && a.NatDestination == b.NatDestination && a.OutInterface == b.OutInterface;

    /// <summary>The rules every walk of one evaluation may examine, together.</summary>
    private sealed class StepBudget
    {
        public int Used;
    }

    private static uint Parse(string a) => FlowSpec.TryParseIpv4(a, out var v) ? v : throw new ArgumentException($"'{a}' is not an IPv4 address");

    private static Packet ToPacket(FlowSpec flow)
    {
        if (flow.Validate() is { Count: > 0 } errors)
        {
            throw new ArgumentException(string.Join("; ", errors));
        }

        return new Packet
        {
            In = flow.InInterface ?? "",
            PlannedOut = flow.OutInterface ?? "",
            Source = Parse(flow.Source),
            Destination = Parse(flow.Destination),
            Protocol = Packet.ProtocolNumber(flow.Protocol),
            SourcePort = flow.SourcePort ?? (flow.Protocol == "icmp" ? 0 : 40000),
            DestinationPort = flow.DestinationPort ?? 0,
            IcmpType = flow.IcmpType is null ? 8 : IcmpTypes.Parse(flow.IcmpType) ?? 8,
            State = flow.State == ConnectionState.New ? "NEW" : "ESTABLISHED",
        };
    }

    private enum Outcome
    {
        Fallthrough,
        Return,
        Accept,
        Drop,
        Reject,
        Undetermined,
    }

    private readonly record struct ChainResult(Outcome Outcome, FirewallRule? Rule, string? Reason);

    /// <summary>One evaluation: the packet's walk through the hooks.</summary>
    private sealed class Walk(CompiledRuleset rs, EvaluationContext ctx, bool record, IReadOnlyDictionary<string, bool> assumed, StepBudget budget)
    {
        private readonly List<PathStep>? _path = record ? [] : null;

        /// <summary>The undecidable match this walk stopped at (rule and packet), to fork on; null when it did not stop at one.</summary>
        public string? Unknown { get; private set; }
        private string _hook = "";
        private string? _natSource;
        private string? _natDestination;

        public Evaluation Run(Packet p, uint? destinationAfterPrerouting)
        {
            RuleRef? accepted = null;
            var forward = true;
            var locallyGenerated = p.In.Length == 0 && ctx.IsLocal(p.Source) == true;
            foreach (var hook in locallyGenerated ? LocalHookOrder : HookOrder)
            {
                if (hook == "output")
                {
                    // A local socket's route is chosen before OUTPUT, so -o matches there.
                    p.Out = p.PlannedOut;
                }
                else if (hook == "forward" || hook == "input")
                {
                    // Conntrack undoes the reply's source NAT once PREROUTING is done.
                    if (destinationAfterPrerouting is { } d)
                    {
                        p.Destination = d;
                    }

                    forward = ctx.IsLocal(p.Destination) != true;
                    if ((hook == "forward") != forward)
                    {
                        continue;
                    }

                    // The routing decision: out where the flow says (a local destination goes up to INPUT instead).
                    p.Out = forward ? p.PlannedOut : "";
                }

                if (hook == "postrouting" && !forward)
                {
                    continue;
                }

                _hook = hook;
                foreach (var bc in rs.BaseChains(hook))
                {
                    // Every base chain entered costs a step, so many empty ones cannot multiply the forks' work.
                    if (++budget.Used > MaxSteps)
                    {
                        return Result(Verdict.Undetermined, null, p, $"the walk examined more than {MaxSteps:N0} rules and chains; the answer is not computed");
                    }

                    if (bc.IsNat && p.State != "NEW")
                    {
                        continue;
                    }

                    var r = RunChain(bc.Table, bc.Chain, p, 0);
                    switch (r.Outcome)
                    {
                        case Outcome.Drop or Outcome.Reject:
                            return Result(r.Outcome == Outcome.Drop ? Verdict.Drop : Verdict.Reject, Ref(bc, r.Rule), p, null);
                        case Outcome.Undetermined:
                            return Result(Verdict.Undetermined, r.Rule is null ? null : Ref(bc, r.Rule), p, r.Reason);
                        case Outcome.Accept when bc.IsFilterHook && r.Rule is not null:
                            accepted = Ref(bc, r.Rule);
                            break;
                        case Outcome.Accept when bc.IsFilterHook:
                            accepted ??= Ref(bc, null);
                            break;
                        default:
                            // Return or fall through at a base chain: its policy.
                            if (r.Outcome is Outcome.Fallthrough or Outcome.Return)
                            {
                                Step(bc.Table.Name, bc.Chain.Name, null, $"policy {bc.Chain.Policy}", true, null, bc.Chain.Policy);
                                if (bc.Chain.Policy is "DROP" or "drop")
                                {
                                    return Result(Verdict.Drop, Ref(bc, null), p, null);
                                }

                                if (bc.IsFilterHook)
                                {
                                    accepted ??= Ref(bc, null);
                                }
                            }

                            break;
                    }
                }
            }

            return Result(Verdict.Accept, accepted, p, null);
        }

        private static RuleRef Ref(BaseChain bc, FirewallRule? rule) => rule is null
            ? new RuleRef(bc.Table.Name, bc.Chain.Name, null, $"policy {bc.Chain.Policy}")
            : new RuleRef(rule.Table, rule.Chain, rule.Position, rule.Text);

        private Evaluation Result(Verdict v, RuleRef? deciding, Packet p, string? reason) =>
            new(v, deciding, (IReadOnlyList<PathStep>?)_path ?? [], _natSource, _natDestination, p.Out.Length > 0 ? p.Out : null, reason);

        private void Step(string table, string chain, int? position, string rule, bool matched, string? why, string? action)
        {
            if (_path is null || _path.Count > MaxRecordedSteps)
            {
                return;
            }

            _path.Add(_path.Count < MaxRecordedSteps
                ? new PathStep(_hook, table, chain, position, rule, matched, why, action)
                : new PathStep(_hook, table, chain, null, $"(the path is longer than {MaxRecordedSteps:N0} steps; the rest is not shown)", false, null, null));
        }

        private ChainResult RunChain(FirewallTable table, FirewallChain chain, Packet p, int depth)
        {
            if (depth > MaxDepth)
            {
                return new ChainResult(Outcome.Undetermined, null, $"jumps nest deeper than {MaxDepth} chains (a loop?)");
            }

            var candidates = rs.For(chain, p, all: record);
            var rules = candidates.Rules;
            var filters = candidates.Filters;
            for (var i = 0; i < rules.Length; i++)
            {
                if (++budget.Used > MaxSteps)
                {
                    return new ChainResult(Outcome.Undetermined, null,
                        $"the walk examined more than {MaxSteps:N0} rules (jumps that fan out, e.g. chains each jumping twice to the next); the answer is not computed");
                }

                if (!record && !filters[i].MayMatch(p))
                {
                    continue;
                }

                var cr = rules[i];
                var rule = cr.Rule;
                var verdict = Tri.True;
                Matcher? decisive = null;
                Matcher? unknownMatcher = null;
                var assumable = true;
                foreach (var m in cr.Matchers)
                {
                    var t = m.Test(p, ctx);
                    if (t == Tri.False)
                    {
                        verdict = Tri.False;
                        decisive = m;
                        break;
                    }

                    if (t == Tri.Unknown)
                    {
                        verdict = Tri.Unknown;
                        unknownMatcher ??= m;
                        assumable &= m.MayAssume;
                    }
                }

                if (verdict == Tri.False)
                {
                    if (record)
                    {
                        Step(table.Name, chain.Name, rule.Position, rule.Text, false, decisive!.Why(p, ctx), null);
                    }

                    continue;
                }

                var unknown = unknownMatcher?.Why(p, ctx);
                string? assumption = null;
                if (verdict == Tri.Unknown && cr.Kind is not (TargetKind.Unknown or TargetKind.Continue))
                {
                    // The same rule met by the same packet: one assumption for every meeting.
                    var key = string.Create(CultureInfo.InvariantCulture, $"{rule.Table}|{rule.Chain}|{rule.Position}|{p.In}|{p.Out}|{p.Source}|{p.Destination}|{p.SourcePort}|{p.DestinationPort}|{p.State}");
                    // An assumption about a local address would also decide routing: such a match stays undetermined.
                    if (assumable && assumed.TryGetValue(key, out var holds))
                    {
                        if (!holds)
                        {
                            Step(table.Name, chain.Name, rule.Position, rule.Text, false, $"{unknown}; assumed not to match", null);
                            continue;
                        }

                        verdict = Tri.True;
                        assumption = $"{unknown}; assumed to match";
                    }
                    else if (assumable)
                    {
                        Unknown = key;
                    }
                }

                if (verdict == Tri.Unknown || cr.Kind == TargetKind.Unknown)
                {
                    var reason = verdict == Tri.Unknown ? unknown : $"target '{rule.Target}' is not understood";
                    if (cr.Kind == TargetKind.Continue)
                    {
                        // A LOG or counter rule cannot change the packet's fate, whatever its match.
                        Step(table.Name, chain.Name, rule.Position, rule.Text, false, $"{reason}; its action does not decide, so the walk goes on", null);
                        continue;
                    }

                    Step(table.Name, chain.Name, rule.Position, rule.Text, false, reason, "undetermined");
                    return new ChainResult(Outcome.Undetermined, rule, $"{rule.Table} {rule.Chain} #{rule.Position.ToString(CultureInfo.InvariantCulture)}: {reason}");
                }

                var (kind, target) = (cr.Kind, cr.JumpTarget);
                if (kind == TargetKind.Vmap)
                {
                    (kind, target) = cr.VmapLookup(p);
                    if (kind == TargetKind.Unknown)
                    {
                        Step(table.Name, chain.Name, rule.Position, rule.Text, false, "the verdict map's key could not be read", "undetermined");
                        return new ChainResult(Outcome.Undetermined, rule, $"{rule.Table} {rule.Chain} #{rule.Position}: verdict map not understood");
                    }
                }

                Step(table.Name, chain.Name, rule.Position, rule.Text, true, assumption, target is null ? kind.ToString().ToUpperInvariant() : $"{kind.ToString().ToUpperInvariant()} {target}");
                switch (kind)
                {
                    case TargetKind.Continue:
                        continue;
                    case TargetKind.Accept:
                        return new ChainResult(Outcome.Accept, rule, null);
                    case TargetKind.Drop:
                        return new ChainResult(Outcome.Drop, rule, null);
                    case TargetKind.Reject:
                        return new ChainResult(Outcome.Reject, rule, null);
                    case TargetKind.Return:
                        return new ChainResult(Outcome.Return, rule, null);
                    case TargetKind.NoTrack:
                        p.State = "UNTRACKED";
                        continue;
                    case TargetKind.Jump or TargetKind.Goto:
                        {
                            if (table.FindChain(target!) is not { } next)
                            {
                                return new ChainResult(Outcome.Undetermined, rule, $"chain {target} is not in the ruleset");
                            }

                            var r = RunChain(table, next, p, depth + 1);
                            if (r.Outcome is Outcome.Fallthrough or Outcome.Return)
                            {
                                if (kind == TargetKind.Goto)
                                {
                                    return new ChainResult(Outcome.Return, rule, null);
                                }

                                continue;
                            }

                            return r;
                        }

                    case TargetKind.Dnat:
                        if (cr.NatAddress is { } to && FlowSpec.TryParseIpv4(to, out var dst))
                        {
                            p.Destination = dst;
                            p.Dnatted = true;
                            _natDestination = to;
                            if (cr.NatPort is { } port)
                            {
                                p.DestinationPort = port;
                            }

                            return new ChainResult(Outcome.Accept, rule, null);
                        }

                        return new ChainResult(Outcome.Undetermined, rule, $"DNAT target of {rule.Text} not understood");
                    case TargetKind.Snat or TargetKind.Masquerade:
                        {
                            var addr = kind == TargetKind.Snat ? cr.NatAddress : ctx.InterfaceAddresses.GetValueOrDefault(p.Out);
                            _natSource = addr ?? $"the address of {p.Out}";
                            p.Snatted = true;
                            return new ChainResult(Outcome.Accept, rule, null);
                        }

                    default:
                        return new ChainResult(Outcome.Undetermined, rule, $"target '{rule.Target}' is not understood");
                }
            }

            return new ChainResult(Outcome.Fallthrough, null, null);
        }
    }
}
