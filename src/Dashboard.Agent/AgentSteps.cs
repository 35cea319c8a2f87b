using System.Collections.Concurrent;
using System.Net;
using System.Text.RegularExpressions;
using Dashboard.Core.Changes;
using Dashboard.Core.Experiments;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host;
using Dashboard.Host.Agents;
using Dashboard.Host.Capture;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;
using Microsoft.Extensions.Logging;

namespace Dashboard.Agent;

/// <summary>
/// The steps of a run, and of an approved change, the dashboard asks this agent to carry out
/// (<see cref="AgentProtocol.Step"/>), each with the same Host-layer code the dashboard runs for its own host. A change's
/// rule must carry a change tag and be valid; approval is the dashboard's (two people, audited there). The agent trusts nothing in a command: names must be the
/// run's (<c>nlrun-&lt;first 8 of the run key&gt;-…</c>), rules must carry the run's tag, go where a scenario's variant
/// may put them and match the run's own subnets only (no interface, no negation), captures run only on the run's bridges and probes only from its containers; removal goes by the
/// run's labels and tag, never anything else.
/// </summary>
public sealed partial class AgentSteps(
    LabProvisioner provisioner,
    DockerTopologyReader topology,
    HostFirewallReader firewall,
    IptablesRuleWriter writer,
    CaptureService captures,
    TraceService traces,
    ContainerProbe probe,
    ILogger<AgentSteps> logger)
{

    /// <summary>What each run made through this agent (bridges, containers, captures), by run key.</summary>
    private readonly ConcurrentDictionary<string, RunState> _runs = new(StringComparer.Ordinal);

    [GeneratedRegex("^[0-9a-f]{32}$", RegexOptions.CultureInvariant)]
    private static partial Regex RunKeyPattern();

    [GeneratedRegex("^nlrun-[0-9a-f]{8}-[A-Za-z0-9_.-]{1,48}$", RegexOptions.CultureInvariant)]
    private static partial Regex RunName();

    [GeneratedRegex("^netlab:run-[a-z0-9]{1,16}-$", RegexOptions.CultureInvariant)]
    private static partial Regex RunTagPrefix();

    [GeneratedRegex("^netlab:change-[a-z0-9]{1,16}-[0-9]{1,10}$", RegexOptions.CultureInvariant)]
    private static partial Regex ChangeTag();

    [GeneratedRegex("^netlab:change-[a-z0-9]{1,16}-[0-9]{1,10}-staged$", RegexOptions.CultureInvariant)]
    private static partial Regex StagedChangeTag();

    /// <summary>The most change rules (tagged netlab:change-…) the agent holds at once: the dashboard's own cap.</summary>
    public const int MaxChangeRules = ChangeRule.MaxPerHost;

    /// <summary>The most runs the agent holds resources for at once (each with its networks and containers).</summary>
    public const int MaxRuns = 16;

    public async Task<AgentStepReply> HandleAsync(AgentStep command)
    {
        if (command is null)
        {
            return new AgentStepReply(Refused: "no step");
        }

        string? why;
        try
        {
            why = Refusal(command);
        }
        catch (Exception ex) when (ex is ArgumentException or NullReferenceException or FormatException)
        {
            why = "the step is malformed: " + ex.Message;
        }

        if (why is not null)
        {
            logger.LogWarning("step {Action} refused: {Why}", command.Action, why);
            return new AgentStepReply(Refused: why);
        }

        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            return await DoAsync(command, deadline.Token).ConfigureAwait(false);
        }
        catch (ProbeRejectedException ex)
        {
            return new AgentStepReply(Refused: ex.Message);
        }
        catch (Exception ex) when (ex is ProvisioningException or CaptureRejectedException or TraceRejectedException or FirewallUnavailableException or EngineUnavailableException or RulesetFormatException
            or Docker.DotNet.DockerApiException or HttpRequestException or IOException or OperationCanceledException or ArgumentException)
        {
            logger.LogWarning("step {Action} (run {Run}) failed: {Error}", command.Action, command.RunKey, ex.Message);
            return new AgentStepReply(Failed: ex.Message);
        }
    }

    /// <summary>Why the command is not one this agent carries out, or null.</summary>
    private string? Refusal(AgentStep c)
    {
        if (c.Action is AgentStepAction.Reconcile)
        {
            return c.TagPrefix is null || !RunTagPrefix().IsMatch(c.TagPrefix) ? "reconciliation needs the dashboard's run tag prefix (netlab:run-<instance>-)"
                : c.Keep is { Count: > 10_000 } || c.Keep?.Any(k => k is null || !RunKeyPattern().IsMatch(k)) == true ? "the runs to keep must be run keys (32 hex digits)"
                : null;
        }

        if (c.Action is AgentStepAction.EnsureImage or AgentStepAction.ReadEngine or AgentStepAction.ReadFirewall or AgentStepAction.TraceAvailable)
        {
            return null;
        }

        if (c.Action is AgentStepAction.ChangeInsert or AgentStepAction.ChangeDeleteTagged or AgentStepAction.ChangeDeleteOne or AgentStepAction.ChangeStage or AgentStepAction.ChangePromote)
        {
            // The same rules a change may hold on the dashboard's own host (ChangeRule: tables, targets, fields), by the
            // agent's own check; the approval by two people is the dashboard's. A staged rule's tag ends in -staged.
            var staged = c.Tag is not null && StagedChangeTag().IsMatch(c.Tag);
            return c.Tag is null || !(ChangeTag().IsMatch(c.Tag) || staged) ? "a change's rule carries its change's tag (netlab:change-<instance>-<id>, or …-staged while it is staged)"
                : c.Action is AgentStepAction.ChangeStage && !staged ? "ChangeStage takes the change's staged tag (…-staged)"
                : (c.Action is AgentStepAction.ChangeInsert or AgentStepAction.ChangePromote) && staged ? $"{c.Action} takes the change's own tag, not its staged tag"
                : c.Action is not (AgentStepAction.ChangeInsert or AgentStepAction.ChangeStage or AgentStepAction.ChangePromote) ? null
                : c.Change is null ? $"{c.Action} needs the change's rule"
                : c.Change.Validate() is { Count: > 0 } errors ? "the change's rule is not valid: " + string.Join("; ", errors.Select(e => $"{e.Key}: {e.Value}"))
                : null;
        }

        if (c.RunKey is null || !RunKeyPattern().IsMatch(c.RunKey))
        {
            return "a run step needs the run's key (32 hex digits)";
        }

        var own = $"nlrun-{c.RunKey[..8]}-";
        var state = _runs.GetValueOrDefault(c.RunKey);
        return c.Action switch
        {
            AgentStepAction.CreateNetwork => OwnName(c.Name, own, "network")
                ?? (state is null && _runs.Count >= MaxRuns ? $"{MaxRuns} runs already hold resources on this host: wait for one to end" : null)
                ?? (state is { Networks.Count: >= 16 } ? "a run has at most 16 networks" : null),
            AgentStepAction.RunContainer => OwnName(c.Name, own, "container")
                ?? (state is null || c.Network is null || !state.Networks.ContainsKey(c.Network) ? "a run's container joins one of the run's own networks" : null)
                ?? (state is { Containers.Count: >= 32 } ? "a run has at most 32 containers" : null),
            AgentStepAction.InsertRule => state is null ? "a run's rules come after its networks and containers" : RuleRefusal(c, state),
            AgentStepAction.DeleteTagged => TagRefusal(c.Tag, c.RunKey),
            AgentStepAction.StartCapture => state is null || c.Interface is null || !state.Bridges.Contains(c.Interface) ? $"'{Cut(c.Interface)}' is not a bridge of this run: runs capture on their own bridges only" : null,
            AgentStepAction.StopCapture => state is null || c.Capture is null || !state.Captures.ContainsKey(c.Capture) ? $"this run has no capture '{Cut(c.Capture)}'" : null,
            AgentStepAction.StartTrace => state is null || c.Trace is null ? "a run traces its own flow, once its networks exist"
                : new[] { c.Trace.Source, c.Trace.Destination }.Concat(c.Trace.ReplyDestinations ?? []).FirstOrDefault(a => !state.Owns(a)) is { } foreign
                    ? $"'{Cut(foreign)}' is not an address of this run's containers or gateways: a run traces its own flows only" : null,
            AgentStepAction.StopTrace => state is null || c.Capture is null || !state.Traces.ContainsKey(c.Capture) ? $"this run has no trace '{Cut(c.Capture)}'" : null,
            AgentStepAction.Tcp => state is null || c.Container is null || !state.Containers.ContainsKey(c.Container) ? $"'{Cut(c.Container)}' is not a container of this run"
                : c.Target is null || !state.Containers.ContainsKey(c.Target) || c.Address is null || state.Containers[c.Target] != c.Address ? "a run's TCP probe goes to one of its own containers, at its address" : null,
            AgentStepAction.RemoveRun => null,
            _ => $"unknown run step {c.Action}",
        };
    }

    private static string? OwnName(string? name, string own, string what) =>
        name is not null && name.StartsWith(own, StringComparison.Ordinal) && RunName().IsMatch(name) ? null : $"a run's {what} is named {own}<name> (letters, digits, '_', '.', '-')";

    private static string? TagRefusal(string? tag, string runKey) =>
        tag is not null && RuleTag.IsDashboardComment(tag) && tag.StartsWith(RuleTag.Prefix + "run-", StringComparison.Ordinal) && tag.EndsWith("-" + runKey, StringComparison.Ordinal) && tag.Length <= 80
            ? null : "a run's rules carry the run's own tag (netlab:run-<instance>-<run key>)";

    private static string? RuleRefusal(AgentStep c, RunState state)
    {
        if (c.Rule is not { } rule)
        {
            return "InsertRule needs the rule";
        }

        if (rule.Validate() is { Count: > 0 } errors)
        {
            return "the rule is not valid: " + string.Join("; ", errors.Select(e => $"{e.Key}: {e.Value}"));
        }

        // Where a scenario's variant may put its rules (the scenario's own check, made again here).
        if (rule.Table != "filter" || !ScenarioDefinition.VariantChains.Contains(rule.Chain, StringComparer.Ordinal) || rule.Target is not ("ACCEPT" or "DROP" or "RETURN"))
        {
            return $"a run's rules go in table filter, in {string.Join(", ", ScenarioDefinition.VariantChains)}, with ACCEPT, DROP or RETURN; not {Cut(rule.Table)} {Cut(rule.Chain)} {Cut(rule.Target)}";
        }

        if (TagRefusal(rule.Tag, c.RunKey) is { } tag)
        {
            return tag;
        }

        if (rule.Target == "TRACE" || rule.IsIpv6)
        {
            return "a run holds IPv4 ACCEPT, DROP, REJECT, RETURN or LOG rules";
        }

        if (rule.Source is null && rule.Destination is null)
        {
            return "a run's rule matches a lab source or destination (inside 172.16.0.0/12): a rule for every address is not a run's";
        }

        if (rule.InInterface is not null || rule.OutInterface is not null || rule.NegateSource || rule.NegateDestination)
        {
            return "a run's rule matches lab addresses, not interfaces or negations";
        }

        foreach (var end in new[] { rule.Source, rule.Destination })
        {
            if (end is not null && !(IPNetwork.TryParse(end.Contains('/', StringComparison.Ordinal) ? end : end + "/32", out var n) && LabSubnetAllocator.IsInsideLabRange(n)))
            {
                return $"'{Cut(end)}' is outside 172.16.0.0/12: a run's rules match lab addresses only";
            }

            if (end is not null && !state.Covers(IPNetwork.Parse(end.Contains('/', StringComparison.Ordinal) ? end : end + "/32")))
            {
                return $"'{Cut(end)}' is not inside this run's own networks: a run's rules match its own addresses only";
            }
        }

        return null;
    }

    private async Task<AgentStepReply> DoAsync(AgentStep c, CancellationToken ct)
    {
        switch (c.Action)
        {
            case AgentStepAction.EnsureImage:
                return new AgentStepReply(Text: await provisioner.EnsureImageAsync(ct).ConfigureAwait(false));
            case AgentStepAction.ReadEngine:
                return new AgentStepReply(Engine: (await topology.ReadAsync(ct).ConfigureAwait(false)).Engine);
            case AgentStepAction.ReadFirewall:
                var engine = c.Backend ?? (await topology.ReadAsync(ct).ConfigureAwait(false)).Engine.FirewallBackend;
                var snapshot = await firewall.ReadAsync(engine, ct).ConfigureAwait(false);
                return new AgentStepReply(Firewall: AgentFirewall.From(snapshot.Ruleset, snapshot));
            case AgentStepAction.CreateNetwork:
                var network = await provisioner.CreateNetworkAsync(c.RunKey, c.Name!, c.Internal, c.Icc, ct).ConfigureAwait(false);
                var made = State(c.RunKey);
                made.Bridges.Add(network.Bridge);
                made.Networks[network.Name] = (IPNetwork.Parse(network.Subnet), network.Gateway);
                return new AgentStepReply(Network: network);
            case AgentStepAction.RunContainer:
                var container = await provisioner.RunContainerAsync(c.RunKey, c.Name!, c.Network!, ct).ConfigureAwait(false);
                State(c.RunKey).Containers[container.Name] = container.Address;
                return new AgentStepReply(Container: container);
            case AgentStepAction.InsertRule:
                var inserted = await writer.InsertAsync(c.Rule!, ct).ConfigureAwait(false);
                logger.LogInformation("run {Run}: {Command} → {Result}", c.RunKey, inserted.CommandLine, inserted.Message);
                return new AgentStepReply(Rule: inserted);
            case AgentStepAction.DeleteTagged:
                return new AgentStepReply(Rules: await writer.DeleteTaggedAsync(c.Tag!, ct).ConfigureAwait(false));
            case AgentStepAction.StartCapture:
                var session = await captures.StartAsync(new CaptureRequest(c.Interface!, TimeLimit: TimeSpan.FromMinutes(5), ByteLimit: AgentProtocol.MaxRunPcapBytes, Owner: new SessionOwner(null, "agent", null, null)), ct).ConfigureAwait(false);
                State(c.RunKey).Captures[session.Id] = session;
                return new AgentStepReply(Capture: session.Id);
            case AgentStepAction.StopCapture:
                if (!State(c.RunKey).Captures.TryRemove(c.Capture!, out var stopping))
                {
                    return new AgentStepReply(Refused: $"this run has no capture '{Cut(c.Capture)}' (stopped already)");
                }

                await stopping.StopAsync().ConfigureAwait(false);
                var pcap = await File.ReadAllBytesAsync(stopping.PcapPath, ct).ConfigureAwait(false);
                captures.Purge();
                return new AgentStepReply(Pcap: pcap.Length <= AgentProtocol.MaxRunPcapBytes + (64 * 1024) ? pcap : pcap[..(int)AgentProtocol.MaxRunPcapBytes], KernelDrops: stopping.Stats.DroppedByKernel);
            case AgentStepAction.TraceAvailable:
                return new AgentStepReply(Text: await traces.UnavailableReasonAsync(ct).ConfigureAwait(false) ?? "");
            case AgentStepAction.StartTrace:
                // TraceService checks the rest: addresses inside Docker networks only, its own limits and tags.
                var limit = c.Trace!.TimeLimit is { } t && t < TimeSpan.FromMinutes(5) ? t : TimeSpan.FromMinutes(5);
                var trace = await traces.StartAsync(c.Trace with { TimeLimit = limit, Owner = new SessionOwner(null, "agent", null, null) }, ct).ConfigureAwait(false);
                State(c.RunKey).Traces[trace.Id] = trace;
                return new AgentStepReply(Capture: trace.Id, Text: trace.Tag);
            case AgentStepAction.StopTrace:
                if (!State(c.RunKey).Traces.TryRemove(c.Capture!, out var traced))
                {
                    return new AgentStepReply(Refused: $"this run has no trace '{Cut(c.Capture)}' (stopped already)");
                }

                await traces.StopAsync(traced).ConfigureAwait(false);
                return new AgentStepReply(Traced: traced.Packets);
            case AgentStepAction.Tcp:
                return new AgentStepReply(Probe: await probe.TcpAsync(c.Container!, c.Target ?? "", c.Address ?? "", c.Port, c.Count, c.TimeoutSeconds, ct).ConfigureAwait(false));
            case AgentStepAction.RemoveRun:
                return new AgentStepReply(Removed: await RemoveRunAsync(c.RunKey, ct).ConfigureAwait(false));
            case AgentStepAction.ChangeInsert or AgentStepAction.ChangeStage:
                if (ChangeRule.CountOn(await writer.FindAllTaggedAsync(ct).ConfigureAwait(false)) >= MaxChangeRules)
                {
                    return new AgentStepReply(Refused: $"this host holds {MaxChangeRules} change rules already: revert some first");
                }

                // A staged rule is the change's match with no target (it only counts), under its …-staged tag.
                var spec = c.Action == AgentStepAction.ChangeStage ? c.Change!.ToStagedSpec(c.Tag!) : c.Change!.ToSpec(c.Tag!);
                var applied = await writer.InsertAsync(spec, ct).ConfigureAwait(false);
                logger.LogInformation("change {Action}: {Command} → {Result}", c.Action, applied.CommandLine, applied.Message);
                return new AgentStepReply(Rule: applied);
            case AgentStepAction.ChangePromote:
                var promoted = await StagedRules.PromoteAsync(writer, c.Change!, c.Tag!, ct).ConfigureAwait(false);
                logger.LogInformation("change promoted: {Command} → {Result}", promoted.CommandLine, promoted.Message);
                return new AgentStepReply(Rule: promoted);
            case AgentStepAction.ChangeDeleteTagged:
                var deleted = await writer.DeleteTaggedAsync(c.Tag!, ct).ConfigureAwait(false);
                logger.LogInformation("change rule {Tag} removed: {Count} command(s)", c.Tag, deleted.Count);
                return new AgentStepReply(Rules: deleted);
            case AgentStepAction.ChangeDeleteOne:
                var copies = await writer.FindTaggedAsync(c.Tag!, ct).ConfigureAwait(false);
                return new AgentStepReply(Rules: copies.Count == 0 ? [] : [await writer.DeleteRuleAsync(copies[^1], ct).ConfigureAwait(false)]);
            case AgentStepAction.Reconcile:
                return new AgentStepReply(Removed: await ReconcileAsync(c.TagPrefix!, c.Keep ?? [], ct).ConfigureAwait(false));
            default:
                return new AgentStepReply(Refused: $"unknown run step {c.Action}");
        }
    }

    private RunState State(string runKey) => _runs.GetOrAdd(runKey, _ => new RunState());

    /// <summary>What a run made, as CreateNetwork and RunContainer record it (for tests of the checks that follow).</summary>
    internal void Remember(string runKey, ProvisionedNetwork network, params ProvisionedContainer[] containers)
    {
        var state = State(runKey);
        state.Bridges.Add(network.Bridge);
        state.Networks[network.Name] = (IPNetwork.Parse(network.Subnet), network.Gateway);
        foreach (var c in containers)
        {
            state.Containers[c.Name] = c.Address;
        }
    }

    /// <summary>The run's captures stopped, its rules (by its tag's run key) and labelled resources removed.</summary>
    private async Task<List<string>> RemoveRunAsync(string runKey, CancellationToken ct)
    {
        var removed = new List<string>();
        if (_runs.TryRemove(runKey, out var state))
        {
            await StopAllAsync(state).ConfigureAwait(false);
        }

        foreach (var r in await writer.DeleteTaggedWhereAsync(t => t.StartsWith(RuleTag.Prefix + "run-", StringComparison.Ordinal) && t.EndsWith("-" + runKey, StringComparison.Ordinal), ct).ConfigureAwait(false))
        {
            removed.Add($"{r.CommandLine} → {r.Message}");
        }

        removed.AddRange(await provisioner.RemoveAsync(runKey, null, ct).ConfigureAwait(false));
        logger.LogInformation("run {Run} removed: {Removed}", runKey, removed.Count == 0 ? "nothing left" : string.Join("; ", removed));
        return removed;
    }

    /// <summary>After the dashboard lost track of runs (it restarted, or this agent did): every rule with its run tag prefix and every run resource not kept.</summary>
    private async Task<List<string>> ReconcileAsync(string tagPrefix, IReadOnlyList<string> keep, CancellationToken ct)
    {
        var kept = keep.ToHashSet(StringComparer.Ordinal);
        var removed = new List<string>();
        foreach (var key in _runs.Keys.Where(k => !kept.Contains(k)).ToList())
        {
            if (_runs.TryRemove(key, out var state))
            {
                await StopAllAsync(state).ConfigureAwait(false);
            }
        }

        foreach (var r in await writer.DeleteTaggedWhereAsync(t => t.StartsWith(tagPrefix, StringComparison.Ordinal) && !kept.Contains(t[tagPrefix.Length..]), ct).ConfigureAwait(false))
        {
            removed.Add($"{r.CommandLine} → {r.Message}");
        }

        removed.AddRange(await provisioner.RemoveAsync(null, kept, ct).ConfigureAwait(false));
        if (removed.Count > 0)
        {
            logger.LogWarning("reconciled: {Removed}", string.Join("; ", removed));
        }

        return removed;
    }

    /// <summary>A run's captures and traces stopped (its TRACE rules removed with them).</summary>
    private async Task StopAllAsync(RunState state)
    {
        foreach (var s in state.Captures.Values)
        {
            await s.StopAsync().ConfigureAwait(false);
        }

        foreach (var t in state.Traces.Values)
        {
            await traces.StopAsync(t).ConfigureAwait(false);
        }

        captures.Purge();
    }

    private static string Cut(string? s) => AgentMessageCheck.Cut(s);

    private sealed class RunState
    {
        public ConcurrentBag<string> Bridges { get; } = [];

        /// <summary>The run's networks by name: subnet and gateway.</summary>
        public ConcurrentDictionary<string, (IPNetwork Subnet, string Gateway)> Networks { get; } = new(StringComparer.Ordinal);

        /// <summary>The run's containers by name: their address.</summary>
        public ConcurrentDictionary<string, string> Containers { get; } = new(StringComparer.Ordinal);

        /// <summary>Whether <paramref name="n"/> lies inside one of the run's own subnets.</summary>
        public bool Covers(IPNetwork n) => Networks.Values.Any(x => n.PrefixLength >= x.Subnet.PrefixLength && x.Subnet.Contains(n.BaseAddress));

        /// <summary>Whether <paramref name="address"/> is one of the run's containers' or gateways'.</summary>
        public bool Owns(string? address) => address is not null && (Containers.Values.Contains(address, StringComparer.Ordinal) || Networks.Values.Any(x => x.Gateway == address));

        public ConcurrentDictionary<string, CaptureSession> Captures { get; } = new(StringComparer.Ordinal);

        public ConcurrentDictionary<string, TraceSession> Traces { get; } = new(StringComparer.Ordinal);
    }
}
