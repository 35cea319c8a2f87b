using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Host.Tests.Oracle;

/// <summary>
/// The evaluator against the kernel. Each dump (the real Docker dumps of <c>../shared/fixtures</c>, real 26.1.5 and
/// 28.5.2 dumps from engines run here by scripts/lab-engine.sh, and dumps written from moby's source for the layouts
/// no engine here has, together one per layout the detector knows) is loaded, with each variant users try (<see cref="OracleVariants"/>),
/// into a scratch router namespace, and probed with real packets: every ordered pair of its networks and the outside
/// client, one network's two endpoints across its bridge (br_netfilter on), each endpoint to the host, the host to each
/// endpoint, TCP between two networks, and each published port from outside and from the other networks. The
/// evaluator's request verdict must equal whether the request arrived, its reply verdict whether the reply came back,
/// and the rule it says decided (the request's, or the one that drops the reply) must be one the packets met (its
/// counter moved in the router). No expectation is written by hand: the kernel decides. A disagreement prints both
/// paths; every case prints an "agreement:" line (see README, Kernel oracle).
/// </summary>
[Trait("Category", "RealHost")]
public partial class KernelOracleTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>The dump's published ports: <c>-A DOCKER ! -i BRIDGE -p tcp -m tcp --dport PORT -j DNAT --to-destination ADDRESS:PORT</c>.</summary>
    private static IEnumerable<(int Port, string Target, int TargetPort)> PublishedPorts(string dump) =>
        Dnat().Matches(dump).Concat(NftDnat().Matches(dump)).Select(m => (int.Parse(m.Groups["port"].Value, CultureInfo.InvariantCulture), m.Groups["to"].Value, int.Parse(m.Groups["toport"].Value, CultureInfo.InvariantCulture))).Distinct();

    [GeneratedRegex(@"-A DOCKER (?:! -i \S+ )?-p tcp -m tcp --dport (?<port>\d+) -j DNAT --to-destination (?<to>[\d.]+):(?<toport>\d+)")]
    private static partial Regex Dnat();

    /// <summary>Docker 29's nftables form: <c>iifname != "BRIDGE" tcp dport PORT counter dnat to ADDRESS:PORT</c>.</summary>
    [GeneratedRegex(@"iifname != ""\S+"" tcp dport (?<port>\d+) .*dnat to (?<to>[\d.]+):(?<toport>\d+)")]
    private static partial Regex NftDnat();

    /// <summary>
    /// One dump, as dumped and (where <paramref name="variants"/>) with every generated variant, each in its own
    /// router namespace, probed at once (the probes mostly wait for a reply that does not come).
    /// </summary>
    [SkippableTheory]
    [InlineData("shared/iptables/docker-17-seed-isolated.save", true)]
    [InlineData("shared/iptables/docker-17-seed-accept.save", false)]
    [InlineData("shared/iptables/docker-20.10-two-networks-isolated.save", true)]
    [InlineData("shared/iptables/docker-20.10-two-networks-docker-user-accept.save", false)]
    [InlineData("shared/iptables/docker-20.10-two-networks-stage1-accept.save", false)]
    [InlineData("core/iptables/docker-20.10-plain-internal-noicc.save", true)]
    [InlineData("shared/iptables/docker-28.5-bridge1-published-port.save", true)]
    [InlineData("core/iptables/docker-26.1.5-two-networks-published-port.save", true)]
    [InlineData("core/iptables/docker-28.0-two-networks-published-port.save", true)]
    [InlineData("core/iptables/docker-28.0.1-two-networks-published-port.save", true)]
    [InlineData("core/iptables/docker-28.5.2-two-networks-published-port.save", true)]
    [InlineData("core/iptables/docker-29-iptables-two-networks-published-port.save", true)]
    [InlineData("core/nft/docker-29-bridge1-published-port.nft", true)]
    public async Task EveryVariantOfTheDump_TheEvaluatorSaysWhatTheKernelDoes(string fixture, bool variants)
    {
        Dashboard.TestSupport.RealHost.Require();
        var dump = Read(fixture);
        var cases = variants ? OracleVariants.Of(dump) : [new OracleCase("as dumped", dump)];
        var sets = IpSetsOf(fixture);
        var results = await Task.WhenAll(cases.Select(c => AgreeAsync(c, sets)));
        foreach (var r in results)
        {
            output.WriteLine(r.Log);
        }

        foreach (var r in results)
        {
            output.WriteLine($"agreement: {Path.GetFileName(fixture)} | {r.Layout} | {r.Variant} | {r.Probes} probes | {r.Probes - r.Disagreements.Count} agreed | {r.Disagreements.Count} disagreed");
        }

        foreach (var d in results.SelectMany(r => r.Disagreements.Select(d => $"DISAGREEMENT [{r.Variant}] {d}")))
        {
            output.WriteLine(d);
        }

        Assert.All(results, r => Assert.True(r.Probes >= 4, $"{r.Variant}: {r.Probes} probes"));
        Assert.Empty(results.SelectMany(r => r.Disagreements.Select(d => $"[{r.Variant}] {d}")));
    }

    /// <summary>
    /// Docker 28.0.0 matches the ipset docker-ext-bridges-v4, whose members no dump holds. Told nothing about the
    /// sets, the evaluator must say "undetermined" wherever membership decides, and there the kernel shows both
    /// outcomes occur: one router holds the set as Docker fills it (every network's subnet), another the same set
    /// empty. Where the evaluator does answer, its answer must hold for both routers.
    /// </summary>
    [SkippableFact]
    public async Task SetMembersUnknown_UndeterminedExactlyWhereTheKernelShowsBothOutcomes()
    {
        Dashboard.TestSupport.RealHost.Require();
        const string fixture = "core/iptables/docker-28.0-two-networks-published-port.save";
        var dump = Read(fixture);
        var sets = IpSetsOf(fixture) ?? throw new InvalidOperationException("the 28.0.0 fixture has no ipset file");
        await using var full = await KernelOracle.BuildAsync(dump, sets);
        await using var empty = await KernelOracle.BuildAsync(dump, sets.ToDictionary(kv => kv.Key, _ => (IReadOnlyList<string>)[]));
        var ruleset = IptablesSaveReader.Read(dump, TableFamily.Ipv4);
        var setsUnknown = new EvaluationContext { InterfaceAddresses = full.Context.InterfaceAddresses, LocalAddresses = full.Context.LocalAddresses };
        var (undetermined, determined) = (0, 0);
        var failures = new List<string>();
        foreach (var probe in ProbesOf(full, dump))
        {
            var predicted = PacketEvaluator.Explain(ruleset, probe.Flow, setsUnknown);
            var outcomes = await Task.WhenAll(probe.Send(full), probe.Send(empty));
            var (withMembers, withoutMembers) = (outcomes[0], outcomes[1]);
            string Seen(KernelVerdict k) => $"request {(k.RequestArrived ? "delivered" : "not delivered")}, reply {(k.ReplyArrived ? "back" : "not back")}";
            output.WriteLine($"{probe.Where}: predicted {predicted.Outcome}; kernel with the set filled: {Seen(withMembers)}; with it empty: {Seen(withoutMembers)}");
            var differ = withMembers.RequestArrived != withoutMembers.RequestArrived || withMembers.ReplyArrived != withoutMembers.ReplyArrived;
            if (predicted.Request.Verdict == Verdict.Undetermined || predicted.Reply?.Verdict == Verdict.Undetermined)
            {
                undetermined++;
                if (!differ)
                {
                    failures.Add($"{probe.Where}: undetermined ({predicted.Request.Reason ?? predicted.Reply?.Reason}), but the kernel did the same with the set filled and empty: {Seen(withMembers)}");
                }
            }
            else
            {
                determined++;
                var (request, reply) = Delivers(predicted, probe);
                foreach (var (name, kernel) in new[] { ("filled", withMembers), ("empty", withoutMembers) })
                {
                    if (request != kernel.RequestArrived || reply != kernel.ReplyArrived)
                    {
                        failures.Add($"{probe.Where}: predicted {predicted.Outcome} without the set's members, but with the set {name} the kernel: {Seen(kernel)}");
                    }
                }
            }
        }

        output.WriteLine($"agreement: {Path.GetFileName(fixture)} | set members unknown | {undetermined + determined} probes | {determined} determined and held with the set filled and empty | {undetermined} undetermined, both outcomes seen for {undetermined - failures.Count(f => f.Contains("undetermined", StringComparison.Ordinal))}");
        Assert.True(undetermined >= 1, "no probe depended on the set: the case shows nothing");
        Assert.Empty(failures);
    }

    /// <summary>
    /// The generated variants add their tagged rules and nothing else: without the tagged lines each is the dump
    /// itself (nftables: the dump, then a table of the variant's own). So no variant is the dump under another name,
    /// and none loses a rule of the dump.
    /// </summary>
    [Theory]
    [InlineData("shared/iptables/docker-17-seed-isolated.save", 2)]
    [InlineData("shared/iptables/docker-20.10-two-networks-isolated.save", 5)]
    [InlineData("shared/iptables/docker-28.5-bridge1-published-port.save", 5)]
    [InlineData("core/nft/docker-29-bridge1-published-port.nft", 3)]
    public void TheVariants_AddTheirTaggedRulesAndNothingElse(string fixture, int expected)
    {
        var dump = Read(fixture);
        var cases = OracleVariants.Of(dump);
        Assert.Equal(expected, cases.Count);
        Assert.Equal(cases.Count, cases.Select(c => c.Variant).Distinct().Count());
        foreach (var c in cases.Skip(1))
        {
            Assert.Contains(OracleVariants.Tag, c.Dump, StringComparison.Ordinal);
            if (OracleVariants.IsNftables(dump))
            {
                Assert.StartsWith(dump, c.Dump, StringComparison.Ordinal);
            }
            else
            {
                Assert.Equal(dump, string.Join('\n', c.Dump.Split('\n').Where(l => !l.Contains(OracleVariants.Tag, StringComparison.Ordinal))));
            }
        }
    }

    /// <summary>A fixture by its place: <c>shared/…</c> in ../shared/fixtures, <c>core/…</c> in the Core tests' fixtures. Probes use lab addresses only: TEST-NET-1 (192.0.2.0/24) moves into 172.16.0.0/12.</summary>
    internal static string Read(string fixture) => File.ReadAllText(FixturePath(fixture)).Replace("192.0.2.", "172.31.250.", StringComparison.Ordinal);

    private static string FixturePath(string fixture)
    {
        var (root, relative) = (fixture[..fixture.IndexOf('/', StringComparison.Ordinal)], fixture[(fixture.IndexOf('/', StringComparison.Ordinal) + 1)..]);
        return root == "shared" ? TestPaths.Shared(relative) : TestPaths.CoreFixture(relative);
    }

    /// <summary>The IPv4 ipsets a fixture's dump uses, from the <c>ipset save</c> file beside it (<c>add NAME MEMBER</c> lines of <c>family inet</c> sets); none when there is no such file.</summary>
    internal static IReadOnlyDictionary<string, IReadOnlyList<string>>? IpSetsOf(string fixture)
    {
        var file = Path.ChangeExtension(FixturePath(fixture), ".ipset");
        if (!File.Exists(file))
        {
            return null;
        }

        var lines = File.ReadAllLines(file).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        var v4 = lines.Where(l => l is ["create", _, _, "family", "inet", ..]).Select(l => l[1]).ToHashSet(StringComparer.Ordinal);
        return v4.ToDictionary(n => n, n => (IReadOnlyList<string>)[.. lines.Where(l => l is ["add", _, _] && l[1] == n).Select(l => l[2])], StringComparer.Ordinal);
    }

    internal sealed record CaseResult(string Variant, string Layout, int Probes, IReadOnlyList<string> Disagreements, string Log);

    /// <summary>One probe: where it goes, the flow the evaluator is asked about, and how the oracle sends it.</summary>
    internal sealed record OracleProbe(string Where, FlowSpec Flow, Func<KernelOracle, Task<KernelVerdict>> Send, string? ExpectedNat = null);

    /// <summary>
    /// The probes of a dump: every ordered pair of its networks and the outside client, one network's two endpoints
    /// across its bridge, each endpoint to the host (its own gateway and the next network's), the host to each
    /// endpoint, TCP between the first two networks, and each published port from every other network and outside.
    /// The same for every oracle built from the dump (the networks are the dump's).
    /// </summary>
    internal static IEnumerable<OracleProbe> ProbesOf(KernelOracle oracle, string dump)
    {
        var nodes = oracle.Networks.Append(oracle.Outside).ToList();
        foreach (var from in nodes)
        {
            foreach (var to in nodes.Where(n => n != from))
            {
                yield return new($"{from.Bridge} {from.Endpoint} → {to.Bridge} {to.Endpoint}",
                    new FlowSpec { InInterface = from.Bridge, OutInterface = to.Bridge, Source = from.Endpoint, Destination = to.Endpoint },
                    o => o.PingAsync(from, to));
            }
        }

        foreach (var (n, i) in oracle.Networks.Select((n, i) => (n, i)))
        {
            // Across one bridge: bridged, not routed; with br_netfilter on it meets FORWARD with -i and -o the bridge.
            yield return new($"{n.Bridge} {n.Peer} → {n.Endpoint} (same bridge)",
                new FlowSpec { InInterface = n.Bridge, OutInterface = n.Bridge, Source = n.Peer, Destination = n.Endpoint },
                o => o.PingAsync(n, n, fromPeer: true));

            // To the host: its own gateway, and another network's gateway (INPUT, in on this bridge).
            foreach (var gateway in new[] { n, nodes[(i + 1) % nodes.Count] })
            {
                yield return new($"{n.Bridge} {n.Endpoint} → host {gateway.Gateway}",
                    new FlowSpec { InInterface = n.Bridge, Source = n.Endpoint, Destination = gateway.Gateway },
                    o => o.PingRouterAsync(n, gateway));
            }
        }

        // From the host (OUTPUT, from its address on that bridge).
        foreach (var to in nodes)
        {
            yield return new($"host {to.Gateway} → {to.Bridge} {to.Endpoint}",
                new FlowSpec { OutInterface = to.Bridge, Source = to.Gateway, Destination = to.Endpoint },
                o => o.PingFromRouterAsync(to));
        }

        // TCP between the first two networks, both ways (nothing published: the port the listener holds).
        foreach (var (from, to) in new[] { (oracle.Networks[0], oracle.Networks[1]), (oracle.Networks[1], oracle.Networks[0]) })
        {
            yield return new($"{from.Bridge} {from.Endpoint} → {to.Bridge} {to.Endpoint}:80/tcp",
                new FlowSpec { InInterface = from.Bridge, OutInterface = to.Bridge, Source = from.Endpoint, Destination = to.Endpoint, Protocol = "tcp", DestinationPort = 80 },
                o => o.ConnectAsync(from, to.Endpoint, 80, to, 80));
        }

        // Published ports (a DNAT in the dump): a TCP connection to the host's address at the published port, from
        // outside Docker's networks (as from the host's NIC) and from each other network through its own gateway.
        foreach (var (port, target, targetPort) in PublishedPorts(dump))
        {
            var listener = oracle.Networks.Single(n => n.Endpoint == target);
            foreach (var from in nodes.Where(n => n != listener))
            {
                yield return new($"{from.Bridge} {from.Endpoint} → host {from.Gateway}:{port}/tcp (published, to {target}:{targetPort})",
                    new FlowSpec { InInterface = from.Bridge, OutInterface = listener.Bridge, Source = from.Endpoint, Destination = from.Gateway, Protocol = "tcp", DestinationPort = port },
                    o => o.ConnectAsync(from, from.Gateway, port, listener, targetPort),
                    ExpectedNat: target);
            }
        }
    }

    /// <summary>Whether the evaluator's round trip says the request reaches where the probe observes it (through the DNAT the probe expects) and the reply comes back.</summary>
    internal static (bool Request, bool Reply) Delivers(RoundTrip predicted, OracleProbe probe)
    {
        var request = predicted.Request.Verdict == Verdict.Accept && predicted.Request.NatDestination == probe.ExpectedNat;
        return (request, request && predicted.Reply?.Verdict == Verdict.Accept);
    }

    internal static async Task<CaseResult> AgreeAsync(OracleCase c, IReadOnlyDictionary<string, IReadOnlyList<string>>? ipSets = null)
    {
        await using var oracle = await KernelOracle.BuildAsync(c.Dump, ipSets);
        var ruleset = oracle.Nftables ? oracle.Loaded! : IptablesSaveReader.Read(c.Dump, TableFamily.Ipv4);
        var context = oracle.Context;
        var log = new StringBuilder($"== {c.Variant}\n");
        var disagreements = new List<string>();
        var probes = 0;
        foreach (var probe in ProbesOf(oracle, c.Dump))
        {
            var predicted = PacketEvaluator.Explain(ruleset, probe.Flow, context);
            var kernel = await probe.Send(oracle);
            probes++;
            var tracedRequest = oracle.TracedDecision(kernel, probe.Flow.Source, probe.Flow.Destination);
            log.AppendLine($"{probe.Where}: predicted {predicted.Outcome}{(predicted.Request.NatDestination is { } nat ? $" (DNAT to {nat})" : "")} by {Describe(predicted.Request.DecidingRule)}; kernel: request {(kernel.RequestArrived ? "delivered" : "not delivered")}, reply {(kernel.ReplyArrived ? "back" : "not back")}{(tracedRequest is { } tr ? $"; traced: decided by {Describe(tr.Decision)}" : "")}");
            var (requestPredicted, replyPredicted) = Delivers(predicted, probe);
            string? why = null;
            if (predicted.Request.Verdict == Verdict.Undetermined || predicted.Reply?.Verdict == Verdict.Undetermined)
            {
                why = $"undetermined ({predicted.Request.Reason ?? predicted.Reply?.Reason}) although the router's addresses and sets are known";
            }
            else if (requestPredicted != kernel.RequestArrived)
            {
                why = $"request predicted {predicted.Request.Verdict}{(predicted.Request.NatDestination is { } n ? $" with DNAT to {n}" : "")} by {Describe(predicted.Request.DecidingRule)}; the kernel {(kernel.RequestArrived ? "delivered it" : "did not deliver it")}";
            }
            else if (replyPredicted != kernel.ReplyArrived)
            {
                why = $"reply predicted {predicted.Reply?.Verdict} by {Describe(predicted.Reply?.DecidingRule)}; the kernel {(kernel.ReplyArrived ? "delivered it" : "did not deliver it")}";
            }
            else if (predicted.Request.DecidingRule is { Position: not null } rule && !kernel.Met(rule))
            {
                why = $"the request's deciding rule {Describe(rule)} is not among the rules the kernel's counters say the packets met";
            }
            else if (predicted.Reply is { Verdict: Verdict.Drop or Verdict.Reject, DecidingRule: { Position: not null } replyRule } && !kernel.Met(replyRule))
            {
                why = $"the rule said to drop the reply, {Describe(replyRule)}, is not among the rules the kernel's counters say the packets met";
            }

            why ??= TraceDisagrees(oracle, predicted, probe, kernel, tracedRequest);
            if (why is not null)
            {
                disagreements.Add($"{probe.Where}: {why}\n  evaluator's path:\n{PathOf(predicted)}\n  kernel's path (counters that moved):\n{kernel.Path}");
            }
        }

        var layout = DockerLayoutDetector.Detect(ruleset).Description;
        return new CaseResult(c.Variant, layout, probes, disagreements, log.ToString());
    }

    /// <summary>
    /// The kernel's trace against the evaluator: the rule (or policy) that decided the request, as the trace monitor
    /// reported it (xtables-monitor: the last verdict in filter, or a DROP anywhere; nft: the first drop, or the last
    /// accept of the filter hooks' chains), must be the evaluator's deciding rule; the same for the reply when there
    /// is one (the first packet from the responder to the address the request left with).
    /// </summary>
    private static string? TraceDisagrees(KernelOracle oracle, RoundTrip predicted, OracleProbe probe, KernelVerdict kernel, (RuleRef? Decision, string Path)? tracedRequest)
    {
        if (tracedRequest is not { } request)
        {
            return "the kernel's trace holds no packet of the request";
        }

        if (!SameDecision(predicted.Request.DecidingRule, request.Decision))
        {
            return $"the trace says the request was decided by {Describe(request.Decision)}, the evaluator by {Describe(predicted.Request.DecidingRule)}\n  kernel's trace:\n{request.Path}";
        }

        if (predicted.Reply is not { } reply)
        {
            return null;
        }

        // No reply packet: nothing answered (a published port's RETURN leaves the host without a listener).
        var responder = predicted.Request.NatDestination ?? probe.Flow.Destination;
        var to = predicted.Request.NatSource ?? probe.Flow.Source;
        return oracle.TracedDecision(kernel, responder, to) is { } back && !SameDecision(reply.DecidingRule, back.Decision)
            ? $"the trace says the reply was decided by {Describe(back.Decision)}, the evaluator by {Describe(reply.DecidingRule)}\n  kernel's trace:\n{back.Path}"
            : null;
    }

    private static bool SameDecision(RuleRef? evaluator, RuleRef? traced) =>
        evaluator?.Table == traced?.Table && evaluator?.Chain == traced?.Chain && evaluator?.Position == traced?.Position;

    private static string Describe(RuleRef? rule) => rule is null ? "(no rule)" : $"{rule.Table} {rule.Chain} {(rule.Position is { } p ? $"#{p}" : "policy")} ({rule.Rule})";

    private static string PathOf(RoundTrip predicted) =>
        string.Join('\n', predicted.Request.Path.Select(s => ("request", s)).Concat((predicted.Reply?.Path ?? []).Select(s => ("reply", s)))
            .Where(x => x.s.Matched)
            .Select(x => $"    {x.Item1} {x.s.Hook} {x.s.Table} {x.s.Chain} {(x.s.Position is { } p ? $"#{p}" : "")}: {x.s.Rule}{(x.s.Action is { } a ? $" → {a}" : "")}"));
}
