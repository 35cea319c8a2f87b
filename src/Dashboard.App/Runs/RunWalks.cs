using System.Text.Json;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Experiments;
using Dashboard.Core.Firewall;
using Dashboard.Host.Docker;

namespace Dashboard.App.Runs;

/// <summary>
/// A run's first probe as the packet's walk: predicted from the rules the run held (its "ruleset-after", read before its
/// rules were removed) and traced by the kernel during the probe, drawn alike; where they part is said.
/// </summary>
public sealed record RunWalks(string Probe, PacketWalk Predicted, PacketWalk? PredictedReply, PacketWalk? Traced, PacketWalk? TracedReply, string? Disagreement, IReadOnlyList<string> From, IReadOnlyList<string> To)
{
    /// <summary>The scenario's name of something the run made (nlrun-&lt;run&gt;-&lt;name&gt;).</summary>
    private static string Scenario(string made) => made.StartsWith("nlrun-", StringComparison.Ordinal) && made.IndexOf('-', 6) is > 0 and var i ? made[(i + 1)..] : made;

    private sealed record Topology(IReadOnlyList<ProvisionedNetwork>? Networks, IReadOnlyList<ProvisionedContainer>? Containers);

    /// <summary>The walks, or null when the run kept what they need no more (no topology or rules, or a probe of another kind).</summary>
    public static RunWalks? Of(Dashboard.Data.Entities.RunProbe? probe, string? topologyJson, string? rulesetText, IReadOnlyList<TracedPacket> traced)
    {
        if (probe is null || topologyJson is null || rulesetText is null)
        {
            return null;
        }

        Topology? topology;
        Ruleset ruleset;
        try
        {
            topology = JsonSerializer.Deserialize<Topology>(topologyJson, ScenarioDefinition.Json);
            ruleset = RulesetReader.Read(rulesetText);
        }
        catch (Exception ex) when (ex is JsonException or RulesetFormatException)
        {
            return null;
        }

        // The run named what it made nlrun-<run>-<the scenario's name>; a probe names the scenario's containers.
        ProvisionedContainer? Made(string name) => topology?.Containers?.FirstOrDefault(c => c.Name == name || c.Name.EndsWith("-" + name, StringComparison.Ordinal));
        var from = Made(probe.From);
        var to = Made(probe.To);
        var fromNet = topology?.Networks?.FirstOrDefault(n => n.Name == from?.Network);
        var toNet = topology?.Networks?.FirstOrDefault(n => n.Name == to?.Network);
        if (from is null || to is null || fromNet is null || toNet is null)
        {
            return null;
        }

        var flow = new FlowSpec { InInterface = fromNet.Bridge, OutInterface = toNet.Bridge, Source = from.Address, Destination = to.Address, Protocol = probe.Kind == "tcp" ? "tcp" : "icmp", DestinationPort = probe.Port };
        if (flow.Validate().Count > 0)
        {
            return null;
        }

        var context = new EvaluationContext { InterfaceAddresses = topology!.Networks!.ToDictionary(n => n.Bridge, n => n.Gateway) };
        var (request, reply) = PacketWalk.Predicted(PacketEvaluator.Explain(ruleset, flow, context), flow, ruleset);
        var address = (string i) => context.InterfaceAddresses.GetValueOrDefault(i);
        // The first request traced (a connection's first packet: the only one that goes through the nat chains, as predicted).
        var tracedRequest = traced.FirstOrDefault(p => p.Source == from.Address && p.Decision is not null) is { } q ? PacketWalk.Observed(q, ruleset, "request", address) : null;
        var tracedReply = traced.LastOrDefault(p => p.Source == to.Address && p.Decision is not null) is { } r ? PacketWalk.Observed(r, ruleset, "reply", address) : null;
        return new RunWalks($"{probe.Kind} {probe.From} → {probe.To}", request, reply, tracedRequest, tracedReply,
            tracedRequest is null ? null : PacketWalk.Disagreement(request, tracedRequest),
            [probe.From, from.Address, Scenario(fromNet.Name), fromNet.Bridge], [probe.To, to.Address, Scenario(toNet.Name), toNet.Bridge]);
    }
}
