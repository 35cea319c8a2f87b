using System.Collections.Concurrent;
using System.Threading.Channels;
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
/// start) when the dashboard was killed mid-run. Progress goes to the live feed. A run acts on one host: the
/// dashboard's own or an agent's (<see cref="AgentRunHost"/>); each host has its own queue, so one experiment run on
/// several hosts at once runs on all of them side by side. This class is the queues (start, cancel, progress,
/// recovery at start-up and when an agent connects); one run's steps are <see cref="RunExecution"/>'s, what it keeps
/// <see cref="RunRecorder"/>'s.
/// </summary>
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
    Dashboard.App.Hosts.HostDirectory hosts,
    Dashboard.App.Hosts.IAgentCommands agents,
    IOptions<Dashboard.Host.DockerHostOptions> hostOptions,
    IOptions<DataOptions> dataOptions,
    IConfiguration configuration,
    Dashboard.App.Replicas.IDutyLease lease,
    ILogger<RunService> logger) : BackgroundService
{
    /// <summary>Decoded packets stored per capture; the pcap keeps all of them.</summary>
    public const int MaxStoredPacketsPerCapture = RunPackets.MaxStoredPerCapture;

    public const string BuiltInSeedName = "Seed: two networks, c2 pings c1";

    /// <summary>Runs waiting at most (configuration <c>Runs:QueueCapacity</c>, 20 by default); one more is refused at once (429), never left waiting.</summary>
    public int QueueCapacity { get; } = Math.Clamp(configuration.GetValue("Runs:QueueCapacity", 20), 1, 1000);

    private readonly Dictionary<string, Channel<Guid>> _queues = new(StringComparer.Ordinal);
    private readonly List<Task> _workers = [];
    private readonly TaskCompletionSource<CancellationToken> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _waiting;
    private readonly ConcurrentDictionary<Guid, CancellationTokenSource> _cancels = new();
    private readonly ConcurrentDictionary<Guid, RunProgress> _progress = new();
    private readonly ConcurrentDictionary<Guid, int> _labs = new();
    private readonly string _instance = hostOptions.Value.InstanceId;

    /// <summary>The rule tag of a run: <c>netlab:run-&lt;instance&gt;-&lt;id&gt;</c>.</summary>
    public string TagOf(Guid runId) => RuleTag.For($"run-{_instance}-{runId:N}");

    public RunProgress? Progress(Guid runId) => _progress.GetValueOrDefault(runId);

    /// <summary>Progress of a run another replica runs (relayed with Redis), answered here as that replica reported it.</summary>
    public void ObserveRelayed(RunProgress progress)
    {
        ArgumentNullException.ThrowIfNull(progress);
        if (!_cancels.ContainsKey(progress.RunId))
        {
            _progress[progress.RunId] = progress;
        }
    }

    /// <summary>Interrupted runs found (and cleaned up after) at start-up.</summary>
    public IReadOnlyList<Guid> Interrupted { get; private set; } = [];

    /// <summary>The dashboard's own host, as runs record it.</summary>
    public string LocalHost => hostOptions.Value.Name;

    /// <summary>Queues a run for a signed-in user on one host (null: the dashboard's own): needs the Operator role in the experiment's lab; audited.</summary>
    public async Task<Guid> StartAsync(Dashboard.App.Access.Actor actor, Guid experimentId, string variant, bool keepResources = false, CancellationToken ct = default, string? host = null) =>
        (await StartOnHostsAsync(actor, experimentId, variant, [host ?? LocalHost], keepResources, ct))[0].Id;

    /// <summary>
    /// Queues one run of the variant on each host (at most 16, each named once), side by side: every host is checked
    /// before any run is queued (known, its agent connected now, and one the lab may use), so a bad name or a
    /// disconnected host queues nothing. Needs the Operator role in the experiment's lab; each run is audited with its host.
    /// </summary>
    public async Task<IReadOnlyList<(string Host, Guid Id)>> StartOnHostsAsync(Dashboard.App.Access.Actor actor, Guid experimentId, string variant, IReadOnlyList<string> onHosts, bool keepResources = false, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(actor);
        ArgumentNullException.ThrowIfNull(onHosts);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        var labId = await db.Experiments.Where(e => e.Id == experimentId).Select(e => (int?)e.LabId).SingleOrDefaultAsync(ct)
            ?? throw new Dashboard.App.Access.LabAccessException(Dashboard.App.Access.AccessDenial.NotFound, $"experiment {experimentId} does not exist or is in a lab you are not a member of");
        var access = scope.ServiceProvider.GetRequiredService<Dashboard.App.Labs.LabAccess>();
        await access.RequireAsync(actor, labId, Dashboard.Data.Entities.LabRole.Operator, ct);
        CheckHosts(onHosts);
        foreach (var host in onHosts)
        {
            if (await access.HostRefusalAsync(labId, host, ct) is { } why)
            {
                await scope.ServiceProvider.GetRequiredService<Dashboard.App.Audit.AuditLog>().WriteAsync(actor, "run.refused", $"host {host}", why, labId, succeeded: false, host: host, ct: CancellationToken.None);
                throw new Dashboard.App.Access.LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, why);
            }
        }

        var started = new List<(string, Guid)>();
        foreach (var host in onHosts)
        {
            var id = await StartAsync(experimentId, variant, actor.Name, keepResources, ct, host);
            await scope.ServiceProvider.GetRequiredService<Dashboard.App.Audit.AuditLog>().WriteAsync(actor, "run.started", $"run {id}", $"run of variant '{variant}' started on host '{host}'", labId, host: host, ct: ct);
            started.Add((host, id));
        }

        return started;
    }

    /// <summary>The hosts a run may start on: the dashboard's own, or an agent's that is connected now.</summary>
    private void CheckHosts(IReadOnlyList<string> onHosts)
    {
        if (onHosts.Count is 0 or > 16 || onHosts.Any(h => string.IsNullOrWhiteSpace(h) || h.Length > 200) || onHosts.Distinct(StringComparer.Ordinal).Count() != onHosts.Count)
        {
            throw new ScenarioException(["hosts: name 1 to 16 hosts, each once (the dashboard's own is '" + LocalHost + "')"]);
        }

        foreach (var host in onHosts.Where(h => h != LocalHost))
        {
            switch (hosts.Remote(host))
            {
                case null:
                    throw new Dashboard.App.Hosts.HostUnavailableException(hosts.NoSuchHost(host));
                case { State: not Dashboard.App.Hosts.AgentState.Connected } h:
                    throw new Dashboard.App.Hosts.HostUnavailableException($"host '{h.Name}' is {h.State.ToString().ToLowerInvariant()}: its agent must be connected to start a run there");
            }
        }
    }

    /// <summary>Queues a run of one variant on a host (null: the dashboard's own); returns its id at once (the run is recorded as Running from now on).</summary>
    public async Task<Guid> StartAsync(Guid experimentId, string variant, string author, bool keepResources = false, CancellationToken ct = default, string? host = null)
    {
        host ??= LocalHost;
        CheckHosts([host]);
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
            Host = host,
            KeepResources = keepResources,
            LastStep = QueuedStep,
        };
        db.Runs.Add(run);
        db.RunArtifacts.Add(new RunArtifact { RunId = run.Id, Kind = RunArtifactKind.Scenario, Content = experiment.ScenarioJson });
        if (lease.HeldSince is null)
        {
            // Another replica holds the run queue: the run is recorded as queued, and that replica takes it from the database.
            await QueueForHolderAsync(db, run, ct);
            return run.Id;
        }

        // Known as this process's before it is stored, so the queue's pick-up from the database never takes it a second time.
        _cancels[run.Id] = new CancellationTokenSource();
        _labs[run.Id] = run.LabId;
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch
        {
            _cancels.TryRemove(run.Id, out _);
            throw;
        }

        if (Interlocked.Increment(ref _waiting) > QueueCapacity)
        {
            Interlocked.Decrement(ref _waiting);
            run.Status = RunStatus.Failed;
            run.Error = $"not started: {QueueCapacity} runs were already waiting";
            run.EndedAt = DateTimeOffset.UtcNow;
            await db.SaveChangesAsync(CancellationToken.None);
            _cancels.TryRemove(run.Id, out _);
            throw new RunQueueFullException(QueueCapacity);
        }

        QueueOf(host).Writer.TryWrite(run.Id);
        Report(run.Id, QueuedStep, 0, RunStatus.Running, []);
        return run.Id;
    }

    /// <summary>The host's queue, and its worker (one run at a time per host), made on first use.</summary>
    private Channel<Guid> QueueOf(string host)
    {
        lock (_queues)
        {
            if (!_queues.TryGetValue(host, out var queue))
            {
                queue = Channel.CreateUnbounded<Guid>(new UnboundedChannelOptions { SingleReader = true });
                _queues[host] = queue;
                _workers.Add(Task.Run(() => WorkAsync(host, queue)));
            }

            return queue;
        }
    }

    /// <summary>
    /// Asks a queued or running run to stop; it records what it collected and cleans up. A run of another replica's
    /// queue (replicas on PostgreSQL) is asked through the database: that replica sees it within <see cref="PollEvery"/>.
    /// </summary>
    public async Task<bool> CancelAsync(Guid runId, CancellationToken ct = default)
    {
        var here = _cancels.TryGetValue(runId, out var cts);
        if (here)
        {
            cts!.Cancel();
        }

        if (!lease.Shared)
        {
            return here;
        }

        // Replicas: asked in the database too, so a run this replica only queued is not started by the next holder.

        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        var now = DateTimeOffset.UtcNow;
        return await db.Runs.Where(r => r.Id == runId && r.Status == RunStatus.Running && r.CancelRequestedAt == null)
            .ExecuteUpdateAsync(u => u.SetProperty(r => r.CancelRequestedAt, now), ct) > 0 || here;
    }

    /// <summary>How often the replica holding the run queue looks for runs queued, or cancelled, through another replica.</summary>
    public static readonly TimeSpan PollEvery = TimeSpan.FromSeconds(1);

    /// <summary>A run started through a replica without the queue: stored as queued (within the queue's capacity, counted in the database).</summary>
    private async Task QueueForHolderAsync(DashboardDbContext db, Run run, CancellationToken ct)
    {
        var waiting = await db.Runs.CountAsync(r => r.Status == RunStatus.Running && r.LastStep == QueuedStep, ct);
        if (waiting >= QueueCapacity)
        {
            throw new RunQueueFullException(QueueCapacity);
        }

        await db.SaveChangesAsync(ct);
    }

    /// <summary>The step a run is at until its host's queue starts it.</summary>
    public const string QueuedStep = "queued";

    /// <summary>The step of a run its queue has claimed (replicas) and not begun yet.</summary>
    public const string StartingStep = "starting";

    /// <summary>Whether this process queues or runs the run now.</summary>
    public bool RunsHere(Guid runId) => _cancels.ContainsKey(runId);

    /// <summary>
    /// With replicas, the holder of the run queue takes the runs other replicas stored as queued, and cancels those
    /// another replica was asked to cancel (<see cref="CancelAsync"/>).
    /// </summary>
    private async Task PickUpAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        var found = await db.Runs.Where(r => r.Status == RunStatus.Running && (r.LastStep == QueuedStep || r.CancelRequestedAt != null))
            .Select(r => new { r.Id, r.Host, r.LabId, r.LastStep, Cancel = r.CancelRequestedAt != null }).ToListAsync(ct);
        foreach (var r in found)
        {
            if (_cancels.TryGetValue(r.Id, out var known))
            {
                if (r.Cancel && !known.IsCancellationRequested)
                {
                    known.Cancel();
                }

                continue;
            }

            if (r.LastStep != QueuedStep)
            {
                // Begun by a replica that is gone: recovery marks it when this replica takes the duties, never a second start.
                continue;
            }

            var cts = new CancellationTokenSource();
            if (r.Cancel)
            {
                cts.Cancel();
            }

            if (!_cancels.TryAdd(r.Id, cts))
            {
                cts.Dispose();
                continue;
            }

            _labs[r.Id] = r.LabId;
            Interlocked.Increment(ref _waiting);
            QueueOf(r.Host ?? LocalHost).Writer.TryWrite(r.Id);
            logger.LogInformation("run {Run} queued through another replica taken into the queue of host {Host}", r.Id, r.Host ?? LocalHost);
        }
    }

    private static readonly SemaphoreSlim BuiltInsGate = new(1, 1);

    /// <summary>
    /// Makes sure each lab has the built-in seed experiment. Callers race at start-up (the queue's recovery, a first
    /// list of experiments): one at a time in this process, and a seed another process stored first is taken as done.
    /// </summary>
    public static async Task EnsureBuiltInsAsync(DashboardDbContext db, CancellationToken ct = default)
    {
        await BuiltInsGate.WaitAsync(ct);
        try
        {
            await AddMissingBuiltInsAsync(db, ct);
        }
        catch (DbUpdateException)
        {
            // Unique (lab, name): someone else stored it meanwhile. Forget ours; theirs is the same seed.
            foreach (var entry in db.ChangeTracker.Entries<Experiment>().Where(e => e.State == EntityState.Added).ToList())
            {
                entry.State = EntityState.Detached;
            }
        }
        finally
        {
            BuiltInsGate.Release();
        }
    }

    private static async Task AddMissingBuiltInsAsync(DashboardDbContext db, CancellationToken ct)
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
        // A singleton duty: with replicas, only the one holding the lease recovers and runs the queues.
        await lease.WaitAsync(stoppingToken);
        await RecoverAsync(stoppingToken);
        hosts.Connected += OnAgentConnected;
        foreach (var connected in hosts.Remotes.Where(h => h.State == Dashboard.App.Hosts.AgentState.Connected))
        {
            // Connected while this service recovered: reconciled now (twice is harmless).
            OnAgentConnected(connected);
        }

        _started.TrySetResult(stoppingToken);
        try
        {
            if (!lease.Shared)
            {
                await Task.Delay(Timeout.Infinite, stoppingToken);
            }

            using var poll = new PeriodicTimer(PollEvery);
            do
            {
                try
                {
                    await PickUpAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning("runs queued through other replicas not read: {Error}", ex.Message);
                }
            }
            while (await poll.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            hosts.Connected -= OnAgentConnected;
            Task[] workers;
            lock (_queues)
            {
                workers = [.. _workers];
            }

            await Task.WhenAll(workers);
        }
    }

    private readonly ConcurrentDictionary<string, SemaphoreSlim> _hostBusy = new(StringComparer.Ordinal);

    /// <summary>Held by a run on the host for its whole length, and by the host's reconciliation: one never removes what the other is making.</summary>
    private SemaphoreSlim BusyOf(string host) => _hostBusy.GetOrAdd(host, _ => new SemaphoreSlim(1, 1));

    /// <summary>One host's runs, one at a time, once recovery at start-up is done.</summary>
    private async Task WorkAsync(string host, Channel<Guid> queue)
    {
        var stoppingToken = await _started.Task;
        try
        {
            await foreach (var runId in queue.Reader.ReadAllAsync(stoppingToken))
            {
                Interlocked.Decrement(ref _waiting);
                var cts = _cancels.GetOrAdd(runId, _ => new CancellationTokenSource());
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cts.Token, stoppingToken);
                var busy = BusyOf(host);
                await busy.WaitAsync(stoppingToken);
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
                    busy.Release();
                    _cancels.TryRemove(runId, out _);
                    cts.Dispose();
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>What an agent's host still holds of runs this dashboard no longer runs is removed when the agent connects.</summary>
    private void OnAgentConnected(Dashboard.App.Hosts.RemoteHost host) => _ = ReconcileHostAsync(host.Name);

    /// <summary>
    /// Sent to a host's agent when it connects (after a restart of either side or a lost link): every rule with this
    /// dashboard's run tag prefix and every run resource on the host is removed, except those of runs running there
    /// now and runs kept on purpose. Interrupted runs waiting for it say so; anything removed is audited.
    /// </summary>
    public async Task<IReadOnlyList<string>> ReconcileHostAsync(string host, CancellationToken ct = default)
    {
        var busy = BusyOf(host);
        var held = false;
        try
        {
            // Let the agent's snapshot through first, and a run on the host end (its own clean-up comes first).
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            await busy.WaitAsync(ct);
            held = true;
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
            var keep = await db.Runs.Where(r => r.Host == host && (r.Status == RunStatus.Running || r.KeepResources)).Select(r => r.Id).ToListAsync(ct);
            var reply = await agents.StepAsync(host, new Dashboard.Host.Agents.AgentStep(Dashboard.Host.Agents.AgentStepAction.Reconcile, "", Keep: [.. keep.Select(k => k.ToString("N"))], TagPrefix: RuleTag.Prefix + $"run-{_instance}-"), TimeSpan.FromMinutes(3), ct);
            if ((reply.Refused ?? reply.Failed) is { } problem)
            {
                logger.LogWarning("host {Host}: runs not reconciled: {Problem}", host, problem);
                await audit.WriteAsync(Dashboard.App.Access.Actor.System, "run.reconciled", $"host {host}", "what earlier runs left on the host could not be removed", null, "reconcile", problem, false, host, CancellationToken.None);
                return [];
            }

            var removed = reply.Removed ?? [];
            var waiting = await db.Runs.Where(r => r.Host == host && r.Error != null && r.Error.Contains(AwaitingAgent)).ToListAsync(ct);
            foreach (var r in waiting)
            {
                r.Error = r.Error!.Replace(AwaitingAgent, $"what it had created was removed when the host's agent connected again ({DateTimeOffset.UtcNow:u})", StringComparison.Ordinal);
            }

            await db.SaveChangesAsync(CancellationToken.None);
            if (removed.Count > 0)
            {
                logger.LogWarning("host {Host}: leftovers of runs removed: {Removed}", host, string.Join("; ", removed));
                await audit.WriteAsync(Dashboard.App.Access.Actor.System, "run.reconciled", $"host {host}", $"{removed.Count} leftovers of earlier runs removed when the agent connected", null, "reconcile", string.Join("\n", removed), true, host, CancellationToken.None);
            }

            return removed;
        }
        catch (Exception ex) when (ex is Dashboard.App.Hosts.HostUnavailableException or DbUpdateException or OperationCanceledException)
        {
            logger.LogWarning("host {Host}: runs not reconciled: {Error}", host, ex.Message);
            return [];
        }
        finally
        {
            if (held)
            {
                busy.Release();
            }
        }
    }

    /// <summary>Said by a run whose host's agent went away: reconciliation replaces it when the agent is back.</summary>
    public const string AwaitingAgent = "what it had created is removed when the host's agent connects again";

    /// <summary>Runs left Running by a dashboard that died are marked Interrupted; their rules, containers and networks are removed.</summary>
    private async Task RecoverAsync(CancellationToken ct)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
            await EnsureBuiltInsAsync(db, ct);
            // With replicas, runs still queued (none of their steps began) are taken up by the queue instead.
            var stale = await db.Runs.Where(r => r.Status == RunStatus.Running && !(lease.Shared && r.LastStep == QueuedStep)).ToListAsync(ct);
            foreach (var r in stale)
            {
                r.Status = RunStatus.Interrupted;
                r.EndedAt ??= DateTimeOffset.UtcNow;
                r.Error = r.Host is null || r.Host == LocalHost
                    ? $"the dashboard stopped while the run was at '{r.LastStep}'; what it had recorded is kept, and what it had created was removed at the next start"
                    : $"the dashboard stopped while the run was at '{r.LastStep}' on host '{r.Host}'; what it had recorded is kept, and {AwaitingAgent}";
            }

            await db.SaveChangesAsync(ct);
            Interrupted = [.. stale.Select(r => r.Id)];
            foreach (var r in stale)
            {
                _labs[r.Id] = r.LabId;
                Report(r.Id, r.LastStep ?? QueuedStep, 1, RunStatus.Interrupted, []);
            }

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

    /// <summary>One run, from its record to its clean-up (see <see cref="RunExecution"/>).</summary>
    private async Task ExecuteRunAsync(Guid runId, CancellationToken ct, CancellationToken stopping)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        if (lease.Shared && await db.Runs.Where(r => r.Id == runId && r.Status == RunStatus.Running && r.LastStep == QueuedStep)
                .ExecuteUpdateAsync(u => u.SetProperty(r => r.LastStep, StartingStep), CancellationToken.None) == 0)
        {
            // Replicas: the run is claimed in the database before anything is made, so two holders (a lease lost
            // without knowing it yet) never both start it; one that is not queued any more is not started again.
            logger.LogWarning("run {Run} not started: it is no longer queued (another replica took it, or it ended)", runId);
            return;
        }

        var run = await db.Runs.SingleAsync(r => r.Id == runId, CancellationToken.None);
        if (run.Status != RunStatus.Running)
        {
            // Ended meanwhile (another replica's recovery, a cancel before it started): nothing to run.
            return;
        }

        var scenario = ScenarioDefinition.Parse((await db.RunArtifacts.SingleAsync(a => a.RunId == runId && a.Kind == RunArtifactKind.Scenario, CancellationToken.None)).Content);
        IRunHost host = run.Host is null || run.Host == LocalHost
            ? new LocalRunHost(LocalHost, provisioner, firewall, topologyReader, writer, captures, traces, probe)
            : new AgentRunHost(run.Host, runId.ToString("N"), agents);
        var tools = new RunTools(host, audit, dataOptions.Value.ResolveDirectory(), logger);
        await new RunExecution(tools, db, run, scenario, TagOf(runId), (step, fraction, status, steps) => Report(runId, step, fraction, status, steps)).ExecuteAsync(ct, stopping);
    }
}
