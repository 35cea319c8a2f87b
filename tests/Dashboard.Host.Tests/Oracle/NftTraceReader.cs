using System.Globalization;
using System.Text.RegularExpressions;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;

namespace Dashboard.Host.Tests.Oracle;

/// <summary>One step of a packet's path as <c>nft -a monitor trace</c> printed it: the base chain being evaluated, the chain, the rule's position (by handle) or the policy, and the verdict.</summary>
internal sealed record NftTraceStep(string BaseChain, string Table, string Chain, int? Position, string Verdict);

/// <summary>
/// Reads <c>nft -a monitor trace</c> output for the kernel oracle's nftables dumps: a <c>packet:</c> line opens each
/// base chain's evaluation of a packet (<c>trace id ID ip TABLE CHAIN packet: … ip saddr S ip daddr D … ip id N …</c>),
/// then <c>rule … # handle H (verdict V)</c> and <c>policy V</c> lines of that trace id; positions come from the
/// handles of the ruleset the kernel listed after loading the dump.
/// </summary>
internal static partial class NftTraceReader
{
    [GeneratedRegex(@"^trace id (?<id>[0-9a-f]+) ip (?<table>\S+) (?<chain>\S+) packet: .*?ip saddr (?<src>[\d.]+) ip daddr (?<dst>[\d.]+) .*?ip id (?<ipid>\d+)")]
    private static partial Regex PacketLine();

    [GeneratedRegex(@"^trace id (?<id>[0-9a-f]+) ip (?<table>\S+) (?<chain>\S+) rule .* # handle (?<handle>\d+) \(verdict (?<verdict>[^)]+)\)")]
    private static partial Regex RuleLine();

    [GeneratedRegex(@"^trace id (?<id>[0-9a-f]+) ip (?<table>\S+) (?<chain>\S+) policy (?<verdict>\S+)")]
    private static partial Regex PolicyLine();

    /// <summary>
    /// The steps of the first packet from <paramref name="source"/> to <paramref name="destination"/> (as first seen),
    /// in order. The kernel gives a packet a new trace id at each hook; its source address and IP id stay (until
    /// POSTROUTING's SNAT, after every filter), so they tie the hooks together.
    /// </summary>
    public static IReadOnlyList<NftTraceStep>? PathOf(IEnumerable<string> lines, Ruleset loaded, string source, string destination)
    {
        string? ipId = null;
        string? id = null;
        string? baseChain = null;
        var steps = new List<NftTraceStep>();
        foreach (var line in lines)
        {
            if (PacketLine().Match(line) is { Success: true } pm)
            {
                if (ipId is null && pm.Groups["src"].Value == source && pm.Groups["dst"].Value == destination)
                {
                    ipId = pm.Groups["ipid"].Value;
                }

                if (ipId is not null && pm.Groups["src"].Value == source && pm.Groups["ipid"].Value == ipId)
                {
                    id = pm.Groups["id"].Value;
                    baseChain = $"{pm.Groups["table"].Value} {pm.Groups["chain"].Value}";
                }
            }
            else if (id is not null && RuleLine().Match(line) is { Success: true } rm && rm.Groups["id"].Value == id)
            {
                var (table, chain) = (rm.Groups["table"].Value, rm.Groups["chain"].Value);
                var handle = long.Parse(rm.Groups["handle"].Value, CultureInfo.InvariantCulture);
                var position = loaded.Rules.FirstOrDefault(r => r.Table == table && r.Chain == chain && r.Handle == handle)?.Position;
                steps.Add(new NftTraceStep(baseChain!, table, chain, position, rm.Groups["verdict"].Value));
            }
            else if (id is not null && PolicyLine().Match(line) is { Success: true } po && po.Groups["id"].Value == id)
            {
                steps.Add(new NftTraceStep(baseChain!, po.Groups["table"].Value, po.Groups["chain"].Value, null, po.Groups["verdict"].Value));
            }
        }

        return id is null ? null : steps;
    }

    /// <summary>
    /// What decided the packet, by the evaluator's rule: the first drop anywhere; else, over the base chains of the
    /// filter hooks (forward, input, output) in the order they ran, the last rule that accepted, or failing one, the
    /// first such chain's policy.
    /// </summary>
    public static RuleRef? Decision(IReadOnlyList<NftTraceStep> steps, Ruleset loaded)
    {
        if (steps.FirstOrDefault(s => s.Verdict is "drop" or "reject") is { } drop)
        {
            return Ref(drop);
        }

        RuleRef? accepted = null;
        foreach (var evaluation in steps.GroupBy(s => s.BaseChain))
        {
            var parts = evaluation.Key.Split(' ');
            var chain = loaded.FindTable(parts[0])?.FindChain(parts[1]);
            if (chain is not { Type: "filter", Hook: "forward" or "input" or "output" })
            {
                continue;
            }

            if (evaluation.LastOrDefault(s => s.Verdict == "accept" && s.Position is not null) is { } rule)
            {
                accepted = Ref(rule);
            }
            else if (evaluation.LastOrDefault(s => s is { Position: null, Verdict: "accept" }) is { } policy)
            {
                accepted ??= Ref(policy);
            }
        }

        return accepted;
    }

    private static RuleRef Ref(NftTraceStep s) => new(s.Table, s.Chain, s.Position, s.Position is null ? $"policy {s.Verdict}" : $"rule #{s.Position}");
}
