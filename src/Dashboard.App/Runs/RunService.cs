using System.Collections.Concurrent;
using System.Text.Json;
using System.Threading.Channels;
using Dashboard.Core.Changes;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Experiments;
using Dashboard.Core.Firewall;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.Host.Capture;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;
using Dashboard.App.Contracts;
using Dashboard.App.Live;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Dashboard.App.Runs;

/// <summary>
/// Runs experiments one at a time: provision what the scenario needs (labelled networks and busybox containers),
/// snapshot rules and topology, hold the variant's rules (tagged with the run), predict, capture and trace, probe,
/// snapshot again, record everything, and remove what it added, also when the run fails, is cancelled, or (at the next
/// start) when the dashboard was killed mid-run. Progress goes to the live feed.
/// </summary>
/// <summary>The run queue is full: nothing was queued; try again when runs have finished.</summary>
public sealed class RunQueueFullException(int capacity) : Exception($"{capacity} runs are already waiting: try again when some have finished");

public sealed class RunService(
    IServiceScopeFactory scopes,
    LabProvisioner provisioner,
    HostFirewallReader firewall,
    DockerTopologyReader topologyReader,
    IptablesRuleWriter writer,
    CaptureService captures,
    TraceService traces,
    ContainerProbe probe,
    LiveFeed feed,
    Dashboard.App.Audit.AuditLog audit,
    IOptions<Dashboard.Host.DockerHostOptions> hostOptions,
    IOptions<DataOptions> dataOptions,
    IConfiguration configuration,
    ILogger<RunService> logger) : BackgroundService
{
    /// <summary>Decoded packets stored per capture; the pcap keeps all of them.</summary>
    public const int MaxStoredPacketsPerCapture = RunPackets.MaxStoredPerCapture;

    public const string BuiltInSeedName = "Seed: two networks, c2 pings c1";

    /// <summary>Runs waiting at most (configuration <c>Runs:QueueCapacity</c>, 20 by default); one more is refused at once (429), never left waiting.</summary>
    public int QueueCapacity { get; } = Math.Clamp(configuration.GetValue("Runs:QueueCapacity", 20), 1, 1000);

    private readonly Channel<Guid> _queue = Channel.CreateBounded<Guid>(new BoundedChannelOptions(Math.Clamp(configuration.GetValue("Runs:QueueCapacity", 20), 1, 1000)) { FullMode = BoundedChannelFullMode.Wait });
    private readonly ConcurrentDictionary<Guid, CancellationTokenSource> _cancels = new();
    private readonly ConcurrentDictionary<Guid, RunProgress> _progress = new();
    private readonly ConcurrentDictionary<Guid, int> _labs = new();
    private readonly string _instance = hostOptions.Value.InstanceId;

    /// <summary>The rule tag of a run: <c>netlab:run-&lt;instance&gt;-&lt;id&gt;</c>.</summary>
    public string TagOf(Guid runId) => RuleTag.For($"run-{_instance}-{runId:N}");

    public RunProgress? Progress(Guid runId) => _progress.GetValueOrDefault(runId);

    /// <summary>Interrupted runs found (and cleaned up after) at start-up.</summary>
    public IReadOnlyList<Guid> Interrupted { get; private set; } = [];

    /// <summary>Queues a run for a signed-in user: needs the Operator role in the experiment's lab; audited.</summary>
    public async Task<Guid> StartAsync(Dashboard.App.Access.Actor actor, Guid experimentId, string variant, bool keepResources = false, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(actor);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        var labId = await db.Experiments.Where(e => e.Id == experimentId).Select(e => (int?)e.LabId).SingleOrDefaultAsync(ct)
            ?? throw new Dashboard.App.Access.LabAccessException(Dashboard.App.Access.AccessDenial.NotFound, $"experiment {experimentId} does not exist or is in a lab you are not a member of");
        await scope.ServiceProvider.GetRequiredService<Dashboard.App.Labs.LabAccess>().RequireAsync(actor, labId, Dashboard.Data.Entities.LabRole.Operator, ct);
        var id = await StartAsync(experimentId, variant, actor.Name, keepResources, ct);
        await scope.ServiceProvider.GetRequiredService<Dashboard.App.Audit.AuditLog>().WriteAsync(actor, "run.started", $"run {id}", $"run of variant '{variant}' started", labId, ct: ct);
        return id;
    }

    /// <summary>Queues a run of one variant; returns its id at once (the run is recorded as Running from now on).</summary>
    public async Task<Guid> StartAsync(Guid experimentId, string variant, string author, bool keepResources = false, CancellationToken ct = default)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        var experiment = await db.Experiments.SingleOrDefaultAsync(e => e.Id == experimentId, ct) ?? throw new ScenarioException([$"no experiment {experimentId}"]);
        var scenario = ScenarioDefinition.Parse(experiment.ScenarioJson);
        if (scenario.Variants.All(v => v.Name != variant))
        {
            throw new ScenarioException([$"experiment {experiment.Name} has no variant '{variant}' (it has {string.Join(", ", scenario.Variants.Select(v => v.Name))})"]);
        }

        var run = new Run
        {
            Id = Guid.NewGuid(),
            LabId = experiment.LabId,
            ExperimentId = experiment.Id,
            ExperimentName = experiment.Name,
            Variant = variant,
            Status = RunStatus.Running,
            Author = author,
            StartedAt = DateTimeOffset.UtcNow,
            Host = hostOptions.Value.Name,
            KeepResources = keepResources,
            LastStep = "queued",
        };
        db.Runs.Add(run);
        db.RunArtifacts.Add(new RunArtifact { RunId = run.Id, Kind = RunArtifactKind.Scenario, Content = experiment.ScenarioJson });
        await db.SaveChangesAsync(ct);
        _cancels[run.Id] = new CancellationTokenSource();
        _labs[run.Id] = run.LabId;
        if (!_queue.Writer.TryWrite(run.Id))
        {
            run.Status = RunStatus.Failed;
            run.Error = $"not started: {QueueCapacity} runs were already waiting";
            run.EndedAt = DateTimeOffset.UtcNow;
            await db.SaveChangesAsync(CancellationToken.None);
            _cancels.TryRemove(run.Id, out _);
            throw new RunQueueFullException(QueueCapacity);
        }

        Report(run.Id, "queued", 0, RunStatus.Running, []);
        return run.Id;
    }

    /// <summary>Asks a queued or running run to stop; it records what it collected and cleans up.</summary>
    public bool Cancel(Guid runId)
    {
        if (_cancels.TryGetValue(runId, out var cts))
        {
            cts.Cancel();
            return true;
        }

        return false;
    }

    /// <summary>Makes sure each lab has the built-in seed experiment.</summary>
    public static async Task EnsureBuiltInsAsync(DashboardDbContext db, CancellationToken ct = default)
    {
        foreach (var lab in await db.Labs.ToListAsync(ct))
        {
            if (!await db.Experiments.AnyAsync(e => e.LabId == lab.Id && e.Name == BuiltInSeedName, ct))
            {
                db.Experiments.Add(new Experiment
                {
                    Id = Guid.NewGuid(),
                    LabId = lab.Id,
                    Name = BuiltInSeedName,
                    Description = "The seed experiment: c2 on net2 pings c1 on net1. Isolated, then with two ACCEPT rules in DOCKER-USER, or in the seed's form at the head of the isolation chain.",
                    ScenarioJson = ScenarioDefinition.Seed.ToJson(),
                    BuiltIn = true,
                    CreatedBy = "built-in",
                    CreatedAt = DateTimeOffset.UtcNow,
                    UpdatedAt = DateTimeOffset.UtcNow,
                });
            }
        }

        await db.SaveChangesAsync(ct);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await RecoverAsync(stoppingToken);
        await foreach (var runId in _queue.Reader.ReadAllAsync(stoppingToken))
        {
            var cts = _cancels.GetOrAdd(runId, _ => new CancellationTokenSource());
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cts.Token, stoppingToken);
            try
            {
                await ExecuteRunAsync(runId, linked.Token, stoppingToken);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "run {Run} failed outside its own handling", runId);
            }
            finally
            {
                _cancels.TryRemove(runId, out _);
                cts.Dispose();
            }
        }
    }

    /// <summary>Runs left Running by a dashboard that died are marked Interrupted; their rules, containers and networks are removed.</summary>
    private async Task RecoverAsync(CancellationToken ct)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
            await EnsureBuiltInsAsync(db, ct);
            var stale = await db.Runs.Where(r => r.Status == RunStatus.Running).ToListAsync(ct);
            foreach (var r in stale)
            {
                r.Status = RunStatus.Interrupted;
                r.EndedAt ??= DateTimeOffset.UtcNow;
                r.Error = $"the dashboard stopped while the run was at '{r.LastStep}'; what it had recorded is kept, and what it had created was removed at the next start";
            }

            await db.SaveChangesAsync(ct);
            Interrupted = [.. stale.Select(r => r.Id)];
            if (await RunPackets.DecodeLegacyRowsAsync(db, dataOptions.Value.ResolveDirectory(), logger, ct) is > 0 and var redecoded)
            {
                logger.LogInformation("{Count} captures of earlier runs decoded again from their pcaps (header fields kept from now on)", redecoded);
            }

            var keep = (await db.Runs.Where(r => r.KeepResources).Select(r => r.Id).ToListAsync(ct)).Select(id => id.ToString("N")).ToHashSet();
            foreach (var result in await writer.DeleteTaggedWhereAsync(c => c.StartsWith(RuleTag.Prefix + $"run-{_instance}-", StringComparison.Ordinal), ct))
            {
                logger.LogWarning("leftover run rule removed: {Command} ({Result})", result.CommandLine, result.Message);
            }

            foreach (var removed in await provisioner.RemoveAsync(null, keep, ct))
            {
                logger.LogWarning("leftover run resource removed: {What}", removed);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogError(ex, "interrupted runs could not be reconciled");
        }
    }

    private void Report(Guid runId, string step, double fraction, RunStatus status, List<string> steps)
    {
        var p = new RunProgress(runId, step, fraction, status, [.. steps], _labs.GetValueOrDefault(runId));
        _progress[runId] = p;
        feed.RunUpdated(p);
    }

    /// <summary>
    /// One run. Cancellation is honoured between steps, never inside a call that creates something on the host (a
    /// network, a container, a rule, a capture): a request cut short can still complete at the engine after the
    /// clean-up has looked, and leave something behind.
    /// </summary>
    private async Task ExecuteRunAsync(Guid runId, CancellationToken ct, CancellationToken stopping)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        var run = await db.Runs.SingleAsync(r => r.Id == runId, CancellationToken.None);
        var scenario = ScenarioDefinition.Parse((await db.RunArtifacts.SingleAsync(a => a.RunId == runId && a.Kind == RunArtifactKind.Scenario, CancellationToken.None)).Content);
        var variant = scenario.Variants.Single(v => v.Name == run.Variant);
        var steps = new List<string>();
        var totalSteps = 9.0 + scenario.Probes.Count;
        var tag = TagOf(runId);
        var runKey = runId.ToString("N");
        var shortId = runKey[..8];
        var networks = new Dictionary<string, ProvisionedNetwork>();
        var containers = new Dictionary<string, ProvisionedContainer>();
        var sessions = new List<(CaptureSession Session, string Network)>();
        TraceSession? trace = null;
        FirewallSnapshot? before = null;

        async Task Step(string text)
        {
            ct.ThrowIfCancellationRequested();
            steps.Add(text);
            run.LastStep = text;
            await db.SaveChangesAsync(CancellationToken.None);
            Report(runId, text, Math.Min(0.99, steps.Count / totalSteps), RunStatus.Running, steps);
        }

        void Save(string kind, string content) => db.RunArtifacts.Add(new RunArtifact { RunId = runId, Kind = kind, Content = content });

        try
        {
            await Step("checking the busybox image");
            Save(RunArtifactKind.Image, await provisioner.EnsureImageAsync(ct));

            await Step($"creating {scenario.Networks.Count} networks");
            foreach (var n in scenario.Networks)
            {
                ct.ThrowIfCancellationRequested();
                networks[n.Name] = await provisioner.CreateNetworkAsync(runKey, $"nlrun-{shortId}-{n.Name}", n.Internal, n.Icc, CancellationToken.None);
            }

            await Step($"starting {scenario.Containers.Count} containers");
            foreach (var c in scenario.Containers)
            {
                ct.ThrowIfCancellationRequested();
                containers[c.Name] = await provisioner.RunContainerAsync(runKey, $"nlrun-{shortId}-{c.Name}", networks[c.Network].Name, CancellationToken.None);
            }

            await Step("reading rules and topology before");
            var topology = await topologyReader.ReadAsync(ct);
            run.EngineVersion = topology.Engine.EngineVersion;
            run.FirewallBackend = topology.Engine.FirewallBackend.ToString();
            before = await firewall.ReadAsync(topology.Engine.FirewallBackend, ct);
            run.Layout = DockerLayoutDetector.Detect(before.Ruleset).Kind.ToString();
            Save(RunArtifactKind.RulesetBefore, before.RawText);
            Save(RunArtifactKind.Topology, JsonSerializer.Serialize(new { networks = networks.Values, containers = containers.Values }, ScenarioDefinition.Json));
            await db.SaveChangesAsync(CancellationToken.None);

            await Step(variant.Rules.Count == 0 ? "no rules to hold (baseline)" : $"inserting {variant.Rules.Count} rules tagged {tag}");
            var commands = new List<string>();
            foreach (var r in variant.Rules)
            {
                var spec = new RuleSpec
                {
                    Table = r.Table,
                    Chain = r.Chain,
                    Position = r.Position,
                    Source = Resolve(r.Source, networks, containers),
                    Destination = Resolve(r.Destination, networks, containers),
                    Protocol = r.Protocol,
                    DestinationPort = r.DestinationPort,
                    Target = r.Target,
                    Tag = tag,
                };
                ct.ThrowIfCancellationRequested();
                var result = await writer.InsertAsync(spec, CancellationToken.None);
                commands.Add($"{result.CommandLine} → {result.Message}");
                await audit.WriteAsync(RunActor(run), "run.rule-inserted", $"run {runId}", $"variant '{run.Variant}' holds a rule for the run", run.LabId, result.CommandLine, result.Message, result.Succeeded, CancellationToken.None);
                if (!result.Succeeded)
                {
                    throw new ProvisioningException($"the variant's rule could not be inserted ({result.CommandLine}): {result.Message}");
                }
            }

            Save(RunArtifactKind.Commands, string.Join('\n', commands));

            await Step("predicting the probes' outcome");
            var held = await firewall.ReadAsync(topology.Engine.FirewallBackend, ct);
            var context = new EvaluationContext { InterfaceAddresses = networks.Values.ToDictionary(n => n.Bridge, n => n.Gateway) };
            var predictions = new List<(bool? Succeeds, string? Rule)>();
            foreach (var p in scenario.Probes)
            {
                var from = containers[p.From];
                var to = containers[p.To];
                var fromNet = scenario.Containers.Single(c => c.Name == p.From).Network;
                var toNet = scenario.Containers.Single(c => c.Name == p.To).Network;
                var flow = new FlowSpec { InInterface = networks[fromNet].Bridge, OutInterface = networks[toNet].Bridge, Source = from.Address, Destination = to.Address, Protocol = p.Kind == "tcp" ? "tcp" : "icmp", DestinationPort = p.Port };
                var rt = PacketEvaluator.Explain(held.Ruleset, flow, context, recordPath: false);
                var decided = rt.Request.Verdict != Verdict.Accept || rt.Reply is null || rt.Reply.Verdict == Verdict.Accept ? rt.Request.DecidingRule : rt.Reply.DecidingRule;
                var undetermined = rt.Request.Verdict == Verdict.Undetermined || rt.Reply?.Verdict == Verdict.Undetermined;
                predictions.Add((undetermined ? null : rt.Succeeds, decided is null ? null : $"{decided.Table} {decided.Chain} {(decided.Position is { } pos ? "#" + pos : "policy")}: {decided.Rule}"));
            }

            // The predicted matrix between the scenario's networks (their first containers), kept with the run.
            var endpoints = scenario.Networks.Select(n =>
            {
                var members = scenario.Containers.Where(c => c.Network == n.Name).Select(c => containers[c.Name]).ToList();
                var net = networks[n.Name];
                return new MatrixEndpoint(n.Name, n.Name, net.Bridge, members.FirstOrDefault()?.Address ?? net.Gateway, members.FirstOrDefault()?.Name, members.Skip(1).FirstOrDefault()?.Address, members.Skip(1).FirstOrDefault()?.Name, members.Count == 0, net.Subnet);
            }).ToList();
            var matrix = IsolationMatrices.Build(held.Ruleset, endpoints, MatrixProbe.Ping, context);
            Save(RunArtifactKind.Matrix, JsonSerializer.Serialize(matrix, ScenarioDefinition.Json));

            await Step($"capturing on {scenario.Captures.Count} bridges{(scenario.Trace ? ", tracing the first probe's flow" : "")}");
            foreach (var n in scenario.Captures)
            {
                ct.ThrowIfCancellationRequested();
                sessions.Add((await captures.StartAsync(new CaptureRequest(networks[n].Bridge, TimeLimit: TimeSpan.FromMinutes(5), ByteLimit: 256L * 1024 * 1024, Owner: new Dashboard.Host.SessionOwner(null, run.Author, run.LabId, runId)), CancellationToken.None), n));
            }

            if (scenario.Trace && scenario.Probes.Count > 0)
            {
                var first = scenario.Probes[0];
                var (src, dst) = (containers[first.From], containers[first.To]);
                var dstNet = networks[scenario.Containers.Single(c => c.Name == first.To).Network];
                if (await traces.UnavailableReasonAsync(ct) is { } why)
                {
                    Save(RunArtifactKind.Traces, TraceArtifact.NotAvailable(why).ToJson());
                }
                else
                {
                    ct.ThrowIfCancellationRequested();
                    trace = await traces.StartAsync(new TraceRequest(src.Address, dst.Address, first.Kind == "tcp" ? "tcp" : "icmp", [dstNet.Gateway], TimeSpan.FromMinutes(5), new Dashboard.Host.SessionOwner(null, run.Author, run.LabId, runId)), CancellationToken.None);
                }
            }

            var received = 0;
            var sent = 0;
            for (var i = 0; i < scenario.Probes.Count; i++)
            {
                var p = scenario.Probes[i];
                await Step($"probe {i + 1}: {p.Kind} {p.From} → {p.To}");
                var to = containers[p.To];
                var result = p.Kind == "tcp"
                    ? await probe.TcpAsync(containers[p.From].Name, to.Name, to.Address, p.Port!.Value, p.Count, p.TimeoutSeconds, ct)
                    : await probe.PingAsync(containers[p.From].Name, to.Address, p.Count, p.TimeoutSeconds, ct);
                sent += result.Sent;
                received += result.Received;
                db.RunProbes.Add(new RunProbe
                {
                    RunId = runId,
                    Order = i,
                    Kind = p.Kind,
                    From = p.From,
                    To = p.To,
                    Address = to.Address,
                    Port = p.Port,
                    Sent = result.Sent,
                    Received = result.Received,
                    Predicted = predictions[i].Succeeds,
                    PredictedRule = predictions[i].Rule,
                    Output = result.Output.Length > 4000 ? result.Output[..4000] : result.Output,
                });
            }

            run.ProbesSent = sent;
            run.ProbesReceived = received;
            run.Outcome = $"{received} of {sent} replies";
            await db.SaveChangesAsync(CancellationToken.None);

            await Step("stopping captures and trace, reading rules after");
            await Task.Delay(300, ct);
            await StopCapturesAsync(db, runId, sessions);
            sessions.Clear();
            if (trace is not null)
            {
                await traces.StopAsync(trace);
                Save(RunArtifactKind.Traces, TraceArtifact.Traced(trace.Request, trace.Tag, trace.Packets).ToJson());
                trace = null;
            }

            var after = await firewall.ReadAsync(topology.Engine.FirewallBackend, ct);
            Save(RunArtifactKind.RulesetAfter, after.RawText);
            AddDeltas(db, runId, before.Ruleset, after.Ruleset);
            run.Status = RunStatus.Succeeded;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            run.Status = stopping.IsCancellationRequested ? RunStatus.Interrupted : RunStatus.Cancelled;
            run.Error = stopping.IsCancellationRequested ? "the dashboard stopped during the run" : $"cancelled at '{run.LastStep}'";
        }
        catch (Exception ex) when (ex is ProvisioningException or TraceRejectedException or ScenarioException or ProbeRejectedException or CaptureRejectedException or FirewallUnavailableException or EngineUnavailableException or global::Docker.DotNet.DockerApiException or HttpRequestException or RulesetFormatException or IOException)
        {
            run.Status = RunStatus.Failed;
            run.Error = ex.Message.Length > 3900 ? ex.Message[..3900] : ex.Message;
        }
        finally
        {
            // Whatever happened: captures stopped (their packets kept), the run's rules removed, what it created torn down.
            var cleanup = new List<string>();
            try
            {
                if (sessions.Count > 0)
                {
                    await StopCapturesAsync(db, runId, sessions);
                }

                if (trace is not null)
                {
                    await traces.StopAsync(trace);
                }

                foreach (var r in await writer.DeleteTaggedAsync(tag, CancellationToken.None))
                {
                    cleanup.Add($"{r.CommandLine} → {r.Message}");
                    await audit.WriteAsync(RunActor(run), "run.rule-removed", $"run {runId}", $"the run ended ({run.Status}); its rule removed", run.LabId, r.CommandLine, r.Message, r.Succeeded, CancellationToken.None);
                }

                if (!run.KeepResources)
                {
                    cleanup.AddRange(await provisioner.RemoveAsync(runKey, null, CancellationToken.None));
                }
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "run {Run} cleanup failed; the next start removes what is left", runId);
                cleanup.Add("cleanup failed: " + ex.Message);
                run.Error ??= "cleanup failed: " + ex.Message;
            }

            Save(RunArtifactKind.Cleanup, string.Join('\n', cleanup));
            run.EndedAt = DateTimeOffset.UtcNow;
            steps.Add(run.Status.ToString().ToLowerInvariant());
            await db.SaveChangesAsync(CancellationToken.None);
            Report(runId, run.Status == RunStatus.Succeeded ? "done" : run.Error ?? run.Status.ToString(), 1, run.Status, steps);
        }
    }

    /// <summary>A run acts for the user who started it.</summary>
    private static Dashboard.App.Access.Actor RunActor(Run run) => new(null, run.Author, false);

    private static string? Resolve(string? end, Dictionary<string, ProvisionedNetwork> networks, Dictionary<string, ProvisionedContainer> containers) => end switch
    {
        null => null,
        _ when end.StartsWith("net:", StringComparison.Ordinal) => networks[end[4..]].Subnet,
        _ when end.StartsWith("ctr:", StringComparison.Ordinal) => containers[end[4..]].Address + "/32",
        _ => end,
    };

    private async Task StopCapturesAsync(DashboardDbContext db, Guid runId, List<(CaptureSession Session, string Network)> sessions)
    {
        var folder = Path.Combine(dataOptions.Value.ResolveDirectory(), "runs", runId.ToString("N"));
        Directory.CreateDirectory(folder);
        foreach (var (s, network) in sessions)
        {
            await s.StopAsync();
            var file = $"{s.Request.Interface}.pcap";
            File.Copy(s.PcapPath, Path.Combine(folder, file), overwrite: true);
            long total;
            List<RunPacket> rows;
            await using (var stream = File.OpenRead(s.PcapPath))
            {
                (total, rows) = await RunPackets.DecodeAsync(stream, runId, s.Request.Interface, MaxStoredPacketsPerCapture);
            }

            db.RunPackets.AddRange(rows);
            var stored = rows.Count;
            db.RunCaptures.Add(new RunCapture { RunId = runId, Interface = s.Request.Interface, Network = network, PcapFile = Path.Combine("runs", runId.ToString("N"), file), Packets = total, Stored = stored, KernelDrops = s.Stats.DroppedByKernel });
        }

        await db.SaveChangesAsync(CancellationToken.None);
    }

    private static void AddDeltas(DashboardDbContext db, Guid runId, Ruleset before, Ruleset after)
    {
        RuleClassifier.Classify(after);
        var old = before.Rules.ToDictionary(RuleId.Of, r => r);
        var seen = new HashSet<RuleId>();
        foreach (var r in after.Rules)
        {
            var id = RuleId.Of(r);
            seen.Add(id);
            var had = old.GetValueOrDefault(id);
            var dp = had is null ? (long)r.Packets : (long)r.Packets - (long)had.Packets;
            var db2 = had is null ? (long)r.Bytes : (long)r.Bytes - (long)had.Bytes;
            if (had is null || dp != 0)
            {
                db.RunRuleDeltas.Add(new RunRuleDelta { RunId = runId, Table = r.Table, Chain = r.Chain, Position = r.Position, Rule = r.Text, Owner = r.Owner.ToString(), DeltaPackets = dp, DeltaBytes = db2, Change = had is null ? "added" : null });
            }
        }

        foreach (var (id, r) in old.Where(kv => !seen.Contains(kv.Key)))
        {
            db.RunRuleDeltas.Add(new RunRuleDelta { RunId = runId, Table = r.Table, Chain = r.Chain, Position = r.Position, Rule = r.Text, Owner = r.Owner.ToString(), Change = "removed" });
        }
    }
}
