using System.Collections.Concurrent;
using System.Net;
using System.Text.RegularExpressions;
using Dashboard.Core.Firewall;
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
/// run's (<c>nlrun-&lt;first 8 of the run key&gt;-…</c>), rules must carry the run's tag and match lab addresses only
/// (172.16.0.0/12, no interface, no negation), captures run only on the run's bridges and probes only from its containers; removal goes by the
/// run's labels and tag, never anything else.
/// </summary>
public sealed partial class AgentSteps(
    LabProvisioner provisioner,
    DockerTopologyReader topology,
    HostFirewallReader firewall,
    IptablesRuleWriter writer,
    CaptureService captures,
    ContainerProbe probe,
    ILogger<AgentSteps> logger)
{
    private static readonly IPNetwork LabRange = IPNetwork.Parse("172.16.0.0/12");

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

    public async Task<AgentStepReply> HandleAsync(AgentStep command)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (Refusal(command) is { } why)
        {
            logger.LogWarning("run step {Action} refused: {Why}", command.Action, why);
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
        catch (Exception ex) when (ex is ProvisioningException or CaptureRejectedException or FirewallUnavailableException or EngineUnavailableException or RulesetFormatException
            or Docker.DotNet.DockerApiException or HttpRequestException or IOException or OperationCanceledException or ArgumentException)
        {
            logger.LogWarning("run step {Action} for run {Run} failed: {Error}", command.Action, command.RunKey, ex.Message);
            return new AgentStepReply(Failed: ex.Message);
        }
    }

    /// <summary>Why the command is not one this agent carries out, or null.</summary>
    private string? Refusal(AgentStep c)
    {
        if (c.Action is AgentStepAction.Reconcile)
        {
            return c.TagPrefix is null || !RunTagPrefix().IsMatch(c.TagPrefix) ? "reconciliation needs the dashboard's run tag prefix (netlab:run-<instance>-)"
                : c.Keep is { Count: > 10_000 } || c.Keep?.Any(k => !RunKeyPattern().IsMatch(k)) == true ? "the runs to keep must be run keys (32 hex digits)"
                : null;
        }

        if (c.Action is AgentStepAction.EnsureImage or AgentStepAction.ReadEngine or AgentStepAction.ReadFirewall)
        {
            return null;
        }

        if (c.Action is AgentStepAction.ChangeInsert or AgentStepAction.ChangeDeleteTagged or AgentStepAction.ChangeDeleteOne)
        {
            var tag = c.Action == AgentStepAction.ChangeInsert ? c.Rule?.Tag : c.Tag;
            return tag is null || !ChangeTag().IsMatch(tag) ? "a change's rule carries its change's tag (netlab:change-<instance>-<id>)"
                : c.Action != AgentStepAction.ChangeInsert ? null
                : c.Rule!.Validate() is { Count: > 0 } errors ? "the rule is not valid: " + string.Join("; ", errors.Select(e => $"{e.Key}: {e.Value}"))
                : c.Rule.Target == "TRACE" ? "a change holds no TRACE rule (traces are the dashboard's own, short-lived)"
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
            AgentStepAction.CreateNetwork => OwnName(c.Name, own, "network"),
            AgentStepAction.RunContainer => OwnName(c.Name, own, "container") ?? (c.Network is null || !c.Network.StartsWith(own, StringComparison.Ordinal) ? "a run's container joins one of the run's own networks" : null),
            AgentStepAction.InsertRule => RuleRefusal(c),
            AgentStepAction.DeleteTagged => TagRefusal(c.Tag, c.RunKey),
            AgentStepAction.StartCapture => state is null || c.Interface is null || !state.Bridges.Contains(c.Interface) ? $"'{Cut(c.Interface)}' is not a bridge of this run: runs capture on their own bridges only" : null,
            AgentStepAction.StopCapture => state is null || c.Capture is null || !state.Captures.ContainsKey(c.Capture) ? $"this run has no capture '{Cut(c.Capture)}'" : null,
            AgentStepAction.Tcp => state is null || c.Container is null || !state.Containers.Contains(c.Container) ? $"'{Cut(c.Container)}' is not a container of this run" : null,
            AgentStepAction.RemoveRun => null,
            _ => $"unknown run step {c.Action}",
        };
    }

    private static string? OwnName(string? name, string own, string what) =>
        name is not null && name.StartsWith(own, StringComparison.Ordinal) && RunName().IsMatch(name) ? null : $"a run's {what} is named {own}<name> (letters, digits, '_', '.', '-')";

    private static string? TagRefusal(string? tag, string runKey) =>
        tag is not null && RuleTag.IsDashboardComment(tag) && tag.StartsWith(RuleTag.Prefix + "run-", StringComparison.Ordinal) && tag.EndsWith("-" + runKey, StringComparison.Ordinal) && tag.Length <= 80
            ? null : "a run's rules carry the run's own tag (netlab:run-<instance>-<run key>)";

    private static string? RuleRefusal(AgentStep c)
    {
        if (c.Rule is not { } rule)
        {
            return "InsertRule needs the rule";
        }

        if (rule.Validate() is { Count: > 0 } errors)
        {
            return "the rule is not valid: " + string.Join("; ", errors.Select(e => $"{e.Key}: {e.Value}"));
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
            if (end is not null && !(IPNetwork.TryParse(end.Contains('/', StringComparison.Ordinal) ? end : end + "/32", out var n) && n.PrefixLength >= 12 && LabRange.Contains(n.BaseAddress)))
            {
                return $"'{Cut(end)}' is outside 172.16.0.0/12: a run's rules match lab addresses only";
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
                State(c.RunKey).Bridges.Add(network.Bridge);
                return new AgentStepReply(Network: network);
            case AgentStepAction.RunContainer:
                var container = await provisioner.RunContainerAsync(c.RunKey, c.Name!, c.Network!, ct).ConfigureAwait(false);
                State(c.RunKey).Containers.Add(container.Name);
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
                State(c.RunKey).Captures.TryRemove(c.Capture!, out var stopping);
                await stopping!.StopAsync().ConfigureAwait(false);
                var pcap = await File.ReadAllBytesAsync(stopping.PcapPath, ct).ConfigureAwait(false);
                captures.Purge();
                return new AgentStepReply(Pcap: pcap.Length <= AgentProtocol.MaxRunPcapBytes + (64 * 1024) ? pcap : pcap[..(int)AgentProtocol.MaxRunPcapBytes], KernelDrops: stopping.Stats.DroppedByKernel);
            case AgentStepAction.Tcp:
                return new AgentStepReply(Probe: await probe.TcpAsync(c.Container!, c.Target ?? "", c.Address ?? "", c.Port, c.Count, c.TimeoutSeconds, ct).ConfigureAwait(false));
            case AgentStepAction.RemoveRun:
                return new AgentStepReply(Removed: await RemoveRunAsync(c.RunKey, ct).ConfigureAwait(false));
            case AgentStepAction.ChangeInsert:
                var applied = await writer.InsertAsync(c.Rule!, ct).ConfigureAwait(false);
                logger.LogInformation("change: {Command} → {Result}", applied.CommandLine, applied.Message);
                return new AgentStepReply(Rule: applied);
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

    /// <summary>The run's captures stopped, its rules (by its tag's run key) and labelled resources removed.</summary>
    private async Task<List<string>> RemoveRunAsync(string runKey, CancellationToken ct)
    {
        var removed = new List<string>();
        if (_runs.TryRemove(runKey, out var state))
        {
            foreach (var s in state.Captures.Values)
            {
                await s.StopAsync().ConfigureAwait(false);
            }

            captures.Purge();
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
                foreach (var s in state.Captures.Values)
                {
                    await s.StopAsync().ConfigureAwait(false);
                }
            }
        }

        captures.Purge();
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

    private static string Cut(string? s) => s is null ? "" : s.Length <= 64 ? s : s[..64] + "…";

    private sealed class RunState
    {
        public ConcurrentBag<string> Bridges { get; } = [];

        public ConcurrentBag<string> Containers { get; } = [];

        public ConcurrentDictionary<string, CaptureSession> Captures { get; } = new(StringComparer.Ordinal);
    }
}
