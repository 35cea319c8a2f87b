using System.Text.Json;
using Dashboard.App.Audit;
using Dashboard.Core.Changes;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Experiments;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.Host.Capture;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;

namespace Dashboard.App.Runs;

/// <summary>What one run acts on (its host), who audits it and where it keeps its files.</summary>
public sealed record RunTools(IRunHost Host, AuditLog Audit, string DataDirectory, ILogger Logger);

/// <summary>
/// One run, step by named step: provision (image, networks, containers), snapshot before, hold the variant's rules,
/// predict, start recording (captures, trace), probe, finish recording (stop, snapshot after, counter deltas), and
/// always clean up. Cancellation is honoured between steps, never inside a call that creates something on the host (a
/// network, a container, a rule, a capture): a request cut short can still complete at the engine after the clean-up
/// has looked, and leave something behind.
/// </summary>
public sealed class RunExecution(RunTools tools, DashboardDbContext db, Run run, ScenarioDefinition scenario, string tag, Action<string, double, RunStatus, List<string>> report)
{
    private readonly ScenarioVariant _variant = scenario.Variants.Single(v => v.Name == run.Variant);
    private readonly RunRecorder _recorder = new(db, run.Id, tools.DataDirectory);
    private readonly List<string> _steps = [];
    private readonly string _runKey = run.Id.ToString("N");
    private readonly Dictionary<string, ProvisionedNetwork> _networks = [];
    private readonly Dictionary<string, ProvisionedContainer> _containers = [];
    private readonly List<(IRunCapture Session, string Network)> _sessions = [];
    private readonly List<(bool? Succeeds, string? Rule)> _predictions = [];
    private IRunTrace? _trace;
    private FirewallSnapshot? _before;
    private FirewallBackend _backend;

    private double TotalSteps => 9.0 + scenario.Probes.Count + (_variant.Rules.Count > 0 ? 1 : 0);

    private string ShortId => _runKey[..8];

    /// <summary>A run acts for the user who started it.</summary>
    private Dashboard.App.Access.Actor RunActor => new(null, run.Author, false);

    public async Task ExecuteAsync(CancellationToken ct, CancellationToken stopping)
    {
        try
        {
            await CheckFitsAsync(ct);
            await ProvisionAsync(ct);
            await SnapshotBeforeAsync(ct);
            await HoldRulesAsync(ct);
            await PredictAsync(ct);
            await StartRecordingAsync(ct);
            await ProbeAsync(ct);
            await FinishRecordingAsync(ct);
            run.Status = RunStatus.Succeeded;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            run.Status = stopping.IsCancellationRequested ? RunStatus.Interrupted : RunStatus.Cancelled;
            run.Error = stopping.IsCancellationRequested ? "the dashboard stopped during the run" : $"cancelled at '{run.LastStep}'";
        }
        catch (Dashboard.App.Hosts.HostUnavailableException ex)
        {
            // The host's agent went away (or stopped answering): the run cannot go on there, nor clean up until it is back.
            run.Status = RunStatus.Interrupted;
            run.Error = $"{ex.Message} (the run was at '{run.LastStep}'); what it had recorded is kept, and {RunService.AwaitingAgent}";
        }
        catch (Exception ex) when (ex is ProvisioningException or TraceRejectedException or ScenarioException or ProbeRejectedException or CaptureRejectedException or FirewallUnavailableException or EngineUnavailableException or global::Docker.DotNet.DockerApiException or HttpRequestException or RulesetFormatException or IOException)
        {
            run.Status = RunStatus.Failed;
            run.Error = ex.Message.Length > 3900 ? ex.Message[..3900] : ex.Message;
        }
        finally
        {
            await CleanUpAsync();
        }
    }

    private async Task StepAsync(string text, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        _steps.Add(text);
        run.LastStep = text;
        await db.SaveChangesAsync(CancellationToken.None);
        report(text, Math.Min(0.99, _steps.Count / TotalSteps), RunStatus.Running, _steps);
    }

    /// <summary>
    /// Before anything is made: every chain the variant's rules go in exists on the host (Docker's layout differs by
    /// version: DOCKER-ISOLATION before 17.06, DOCKER-INTERNAL from 28). A variant that cannot apply says so and the
    /// run ends there, instead of failing half-way.
    /// </summary>
    private async Task CheckFitsAsync(CancellationToken ct)
    {
        if (_variant.Rules.Count == 0)
        {
            return;
        }

        await StepAsync("checking the variant's chains on the host", ct);
        var engine = await tools.Host.ReadEngineAsync(ct);
        var rules = (await tools.Host.ReadFirewallAsync(engine.FirewallBackend, ct)).Ruleset;
        var missing = _variant.Rules.Select(r => (r.Table, r.Chain)).Distinct().Where(t => rules.FindTable(t.Table)?.FindChain(t.Chain) is null).ToList();
        if (missing.Count > 0)
        {
            run.EngineVersion = engine.EngineVersion;
            run.FirewallBackend = engine.FirewallBackend.ToString();
            run.Layout = DockerLayoutDetector.Detect(rules).Kind.ToString();
            throw new ScenarioException([$"variant '{run.Variant}' cannot apply to host '{tools.Host.Name}' (Docker {engine.EngineVersion}, layout {run.Layout}): "
                + string.Join(", ", missing.Select(m => $"no chain {m.Chain} in table {m.Table}")) + "; nothing was created"]);
        }
    }

    private async Task ProvisionAsync(CancellationToken ct)
    {
        await StepAsync("checking the busybox image", ct);
        _recorder.Save(RunArtifactKind.Image, await tools.Host.EnsureImageAsync(ct));

        await StepAsync($"creating {scenario.Networks.Count} networks", ct);
        foreach (var n in scenario.Networks)
        {
            ct.ThrowIfCancellationRequested();
            _networks[n.Name] = await tools.Host.CreateNetworkAsync(_runKey, $"nlrun-{ShortId}-{n.Name}", n.Internal, n.Icc, CancellationToken.None);
        }

        await StepAsync($"starting {scenario.Containers.Count} containers", ct);
        foreach (var c in scenario.Containers)
        {
            ct.ThrowIfCancellationRequested();
            _containers[c.Name] = await tools.Host.RunContainerAsync(_runKey, $"nlrun-{ShortId}-{c.Name}", _networks[c.Network].Name, CancellationToken.None);
        }
    }

    private async Task SnapshotBeforeAsync(CancellationToken ct)
    {
        await StepAsync("reading rules and topology before", ct);
        var engine = await tools.Host.ReadEngineAsync(ct);
        _backend = engine.FirewallBackend;
        run.EngineVersion = engine.EngineVersion;
        run.FirewallBackend = engine.FirewallBackend.ToString();
        _before = await tools.Host.ReadFirewallAsync(engine.FirewallBackend, ct);
        run.Layout = DockerLayoutDetector.Detect(_before.Ruleset).Kind.ToString();
        _recorder.Save(RunArtifactKind.RulesetBefore, _before.RawText);
        _recorder.Save(RunArtifactKind.Topology, JsonSerializer.Serialize(new { networks = _networks.Values, containers = _containers.Values }, ScenarioDefinition.Json));
        await db.SaveChangesAsync(CancellationToken.None);
    }

    private async Task HoldRulesAsync(CancellationToken ct)
    {
        await StepAsync(_variant.Rules.Count == 0 ? "no rules to hold (baseline)" : $"inserting {_variant.Rules.Count} rules tagged {tag}", ct);
        var commands = new List<string>();
        foreach (var r in _variant.Rules)
        {
            var spec = new RuleSpec
            {
                Table = r.Table,
                Chain = r.Chain,
                Position = r.Position,
                Source = Resolve(r.Source),
                Destination = Resolve(r.Destination),
                Protocol = r.Protocol,
                DestinationPort = r.DestinationPort,
                Target = r.Target,
                Tag = tag,
            };
            ct.ThrowIfCancellationRequested();
            var result = await tools.Host.InsertRuleAsync(spec, CancellationToken.None);
            commands.Add($"{result.CommandLine} → {result.Message}");
            await tools.Audit.WriteAsync(RunActor, "run.rule-inserted", $"run {run.Id}", $"variant '{run.Variant}' holds a rule for the run", run.LabId, result.CommandLine, result.Message, result.Succeeded, host: run.Host, ct: CancellationToken.None);
            if (!result.Succeeded)
            {
                throw new ProvisioningException($"the variant's rule could not be inserted ({result.CommandLine}): {result.Message}");
            }
        }

        _recorder.Save(RunArtifactKind.Commands, string.Join('\n', commands));
    }

    /// <summary>Each probe's outcome as the rules now held predict it, and the predicted matrix between the scenario's networks.</summary>
    private async Task PredictAsync(CancellationToken ct)
    {
        await StepAsync("predicting the probes' outcome", ct);
        var held = await tools.Host.ReadFirewallAsync(_backend, ct);
        var context = new EvaluationContext { InterfaceAddresses = _networks.Values.ToDictionary(n => n.Bridge, n => n.Gateway) };
        foreach (var p in scenario.Probes)
        {
            var from = _containers[p.From];
            var to = _containers[p.To];
            var fromNet = scenario.Containers.Single(c => c.Name == p.From).Network;
            var toNet = scenario.Containers.Single(c => c.Name == p.To).Network;
            var flow = new FlowSpec { InInterface = _networks[fromNet].Bridge, OutInterface = _networks[toNet].Bridge, Source = from.Address, Destination = to.Address, Protocol = p.Kind == "tcp" ? "tcp" : "icmp", DestinationPort = p.Port };
            var rt = PacketEvaluator.Explain(held.Ruleset, flow, context, recordPath: false);
            var decided = rt.Request.Verdict != Verdict.Accept || rt.Reply is null || rt.Reply.Verdict == Verdict.Accept ? rt.Request.DecidingRule : rt.Reply.DecidingRule;
            var undetermined = rt.Request.Verdict == Verdict.Undetermined || rt.Reply?.Verdict == Verdict.Undetermined;
            _predictions.Add((undetermined ? null : rt.Succeeds, decided is null ? null : $"{decided.Table} {decided.Chain} {(decided.Position is { } pos ? "#" + pos : "policy")}: {decided.Rule}"));
        }

        // The predicted matrix between the scenario's networks (their first containers), kept with the run.
        var endpoints = scenario.Networks.Select(n =>
        {
            var members = scenario.Containers.Where(c => c.Network == n.Name).Select(c => _containers[c.Name]).ToList();
            var net = _networks[n.Name];
            return new MatrixEndpoint(n.Name, n.Name, net.Bridge, members.FirstOrDefault()?.Address ?? net.Gateway, members.FirstOrDefault()?.Name, members.Skip(1).FirstOrDefault()?.Address, members.Skip(1).FirstOrDefault()?.Name, members.Count == 0, net.Subnet);
        }).ToList();
        var matrix = IsolationMatrices.Build(held.Ruleset, endpoints, MatrixProbe.Ping, context);
        _recorder.Save(RunArtifactKind.Matrix, JsonSerializer.Serialize(matrix, ScenarioDefinition.Json));
    }

    private async Task StartRecordingAsync(CancellationToken ct)
    {
        await StepAsync($"capturing on {scenario.Captures.Count} bridges{(scenario.Trace ? ", tracing the first probe's flow" : "")}", ct);
        var owner = new Dashboard.Host.SessionOwner(null, run.Author, run.LabId, run.Id);
        foreach (var n in scenario.Captures)
        {
            ct.ThrowIfCancellationRequested();
            _sessions.Add((await tools.Host.StartCaptureAsync(_networks[n].Bridge, owner, CancellationToken.None), n));
        }

        if (scenario.Trace && scenario.Probes.Count > 0)
        {
            var first = scenario.Probes[0];
            var (src, dst) = (_containers[first.From], _containers[first.To]);
            var dstNet = _networks[scenario.Containers.Single(c => c.Name == first.To).Network];
            if (await tools.Host.TraceUnavailableReasonAsync(ct) is { } why)
            {
                _recorder.Save(RunArtifactKind.Traces, TraceArtifact.NotAvailable(why).ToJson());
            }
            else
            {
                ct.ThrowIfCancellationRequested();
                _trace = await tools.Host.StartTraceAsync(new TraceRequest(src.Address, dst.Address, first.Kind == "tcp" ? "tcp" : "icmp", [dstNet.Gateway], TimeSpan.FromMinutes(5), owner), CancellationToken.None);
            }
        }
    }

    private async Task ProbeAsync(CancellationToken ct)
    {
        var received = 0;
        var sent = 0;
        for (var i = 0; i < scenario.Probes.Count; i++)
        {
            var p = scenario.Probes[i];
            await StepAsync($"probe {i + 1}: {p.Kind} {p.From} → {p.To}", ct);
            var to = _containers[p.To];
            var result = p.Kind == "tcp"
                ? await tools.Host.TcpAsync(_containers[p.From].Name, to.Name, to.Address, p.Port!.Value, p.Count, p.TimeoutSeconds, ct)
                : await tools.Host.PingAsync(_containers[p.From].Name, to.Address, p.Count, p.TimeoutSeconds, ct);
            sent += result.Sent;
            received += result.Received;
            db.RunProbes.Add(new RunProbe
            {
                RunId = run.Id,
                Order = i,
                Kind = p.Kind,
                From = p.From,
                To = p.To,
                Address = to.Address,
                Port = p.Port,
                Sent = result.Sent,
                Received = result.Received,
                Predicted = _predictions[i].Succeeds,
                PredictedRule = _predictions[i].Rule,
                // A probe's output is a program's (nc may print NUL): PostgreSQL's text cannot hold NUL.
                Output = (result.Output.Length > 4000 ? result.Output[..4000] : result.Output).Replace('\0', '\uFFFD'),
            });
        }

        run.ProbesSent = sent;
        run.ProbesReceived = received;
        run.Outcome = $"{received} of {sent} replies";
        await db.SaveChangesAsync(CancellationToken.None);
    }

    private async Task FinishRecordingAsync(CancellationToken ct)
    {
        await StepAsync("stopping captures and trace, reading rules after", ct);
        await Task.Delay(300, ct);
        await _recorder.StopCapturesAsync(_sessions);
        _sessions.Clear();
        if (_trace is not null)
        {
            var traced = await _trace.StopAsync();
            _recorder.Save(RunArtifactKind.Traces, TraceArtifact.Traced(_trace.Request, _trace.Tag, traced).ToJson());
            _trace = null;
        }

        var after = await tools.Host.ReadFirewallAsync(_backend, ct);
        _recorder.Save(RunArtifactKind.RulesetAfter, after.RawText);
        _recorder.AddDeltas(_before!.Ruleset, after.Ruleset);
    }

    /// <summary>
    /// Whatever happened: captures stopped (their packets kept), the run's rules removed, what it created torn down.
    /// Each part is tried on its own, so one that fails (a capture the host no longer has) never keeps the run's rules
    /// or containers on the host.
    /// </summary>
    private async Task CleanUpAsync()
    {
        var cleanup = new List<string>();
        await CleanStepAsync(cleanup, "stopping captures", async () =>
        {
            if (_sessions.Count > 0)
            {
                var sessions = _sessions.ToList();
                _sessions.Clear();
                await _recorder.StopCapturesAsync(sessions);
            }
        });
        await CleanStepAsync(cleanup, "stopping the trace", async () =>
        {
            if (_trace is { } trace)
            {
                _trace = null;
                await trace.StopAsync();
            }
        });
        await CleanStepAsync(cleanup, "removing the run's rules", async () =>
        {
            foreach (var r in await tools.Host.DeleteTaggedAsync(tag, CancellationToken.None))
            {
                cleanup.Add($"{r.CommandLine} → {r.Message}");
                await tools.Audit.WriteAsync(RunActor, "run.rule-removed", $"run {run.Id}", $"the run ended ({run.Status}); its rule removed", run.LabId, r.CommandLine, r.Message, r.Succeeded, host: run.Host, ct: CancellationToken.None);
            }
        });
        if (!run.KeepResources)
        {
            await CleanStepAsync(cleanup, "removing its containers and networks", async () => cleanup.AddRange(await tools.Host.RemoveAsync(_runKey, CancellationToken.None)));
        }

        _recorder.Save(RunArtifactKind.Cleanup, string.Join('\n', cleanup));
        run.EndedAt = DateTimeOffset.UtcNow;
        _steps.Add(run.Status.ToString().ToLowerInvariant());
        await db.SaveChangesAsync(CancellationToken.None);

        // The run's end in the audit, as the run page shows it: its status, what its probes got, how long, any error.
        var duration = (run.EndedAt.Value - run.StartedAt).TotalSeconds;
        var ended = string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"run of variant '{run.Variant}' of '{run.ExperimentName}' ended {run.Status.ToString().ToLowerInvariant()} after {duration:0.0} s: {(run.ProbesSent > 0 ? $"{run.ProbesReceived} of {run.ProbesSent} probe replies" : "its probes did not finish")}{(run.Error is { } e ? "; " + e : "")}");
        report(run.Status == RunStatus.Succeeded ? "done" : run.Error ?? run.Status.ToString(), 1, run.Status, _steps);
        await tools.Audit.WriteAsync(RunActor, "run.finished", $"run {run.Id}", ended, run.LabId, result: string.Join('\n', cleanup), succeeded: run.Status == RunStatus.Succeeded, host: run.Host, ct: CancellationToken.None);
    }

    private async Task CleanStepAsync(List<string> cleanup, string what, Func<Task> step)
    {
        try
        {
            await step();
        }
        catch (Dashboard.App.Hosts.HostUnavailableException ex)
        {
            tools.Logger.LogWarning("run {Run} cleanup waits for host {Host}: {Error}", run.Id, tools.Host.Name, ex.Message);
            cleanup.Add($"{what}: not done: {ex.Message}; {RunService.AwaitingAgent}");
            run.Error ??= $"cleanup waits for the host: {ex.Message}; {RunService.AwaitingAgent}";
        }
        catch (Exception ex)
        {
            tools.Logger.LogError(ex, "run {Run} cleanup ({What}) failed; the next start removes what is left", run.Id, what);
            cleanup.Add($"{what} failed: {ex.Message}");
            run.Error ??= $"cleanup failed ({what}): {ex.Message}";
        }
    }

    /// <summary>A variant rule's end: <c>net:NAME</c> is the run's network's subnet, <c>ctr:NAME</c> its container's address.</summary>
    private string? Resolve(string? end) => end switch
    {
        null => null,
        _ when end.StartsWith("net:", StringComparison.Ordinal) => _networks[end[4..]].Subnet,
        _ when end.StartsWith("ctr:", StringComparison.Ordinal) => _containers[end[4..]].Address + "/32",
        _ => end,
    };
}
