using System.Diagnostics;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;
using Dashboard.Host.Processes;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Dashboard.Host.Collector;

/// <summary>
/// The host collector. Reads the firewall with counters at a target rate under a duty-cycle cap, diffs each read
/// against the previous one by rule identity and publishes only what changed; refreshes the topology when Docker
/// events say something changed (the Engine API is not polled); reports outages as states and recovers by itself.
/// </summary>
public sealed class HostCollector(
    DockerTopologyReader topologyReader,
    HostFirewallReader firewallReader,
    IDockerClient docker,
    ICollectorSink sink,
    IOptions<CollectorOptions> options,
    IOptions<DockerHostOptions> hostOptions,
    ILogger<HostCollector> logger,
    CollectorReadObserver? readObserver = null,
    ICollectorDuty? duty = null) : BackgroundService
{
    private readonly CollectorOptions _options = options.Value;
    private readonly string _host = hostOptions.Value.Name;
    private readonly object _gate = new();
    private readonly Queue<(long At, TimeSpan Took, TimeSpan Cpu)> _reads = new(); // Stopwatch timestamps: rates must not jump with the wall clock
    private CollectorStatus _status = CollectorStatus.Starting(hostOptions.Value.Name, options.Value.TargetRateHz) with
    {
        WatchedRateHz = Math.Max(options.Value.TargetRateHz, options.Value.WatchedRateHz),
        MaxDutyCycle = options.Value.MaxDutyCycle,
    };
    private HostTopology? _topology;
    private HostTopology? _classifiedWith;
    private Ruleset? _previous;
    private readonly SemaphoreSlim _topologyDirty = new(0);

    public CollectorStatus Status
    {
        get
        {
            lock (_gate)
            {
                return _status;
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (duty is not null)
        {
            // Another replica reads the host meanwhile and its reads reach this one's sink: say nothing until this one reads.
            await duty.WaitAsync(stoppingToken).ConfigureAwait(false);
        }

        sink.StatusChanged(Status);
        await Task.WhenAll(
            Task.Run(() => TopologyLoopAsync(stoppingToken), stoppingToken),
            Task.Run(() => EventsLoopAsync(stoppingToken), stoppingToken),
            Task.Run(() => FirewallLoopAsync(stoppingToken), stoppingToken)).ConfigureAwait(false);
    }

    private long? _lastStatusSent; // Stopwatch timestamp

    /// <summary>Applies a status change; publishes it at once when health changed, else at most once a second.</summary>
    private void Update(Func<CollectorStatus, CollectorStatus> change)
    {
        CollectorStatus next;
        bool send;
        lock (_gate)
        {
            var before = _status;
            next = change(before) with { UpdatedAt = DateTimeOffset.UtcNow };
            _status = next;
            var healthChanged = before.EngineAvailable != next.EngineAvailable || before.FirewallAvailable != next.FirewallAvailable
                || before.EngineError != next.EngineError || before.FirewallError != next.FirewallError
                || before.Layout?.Kind != next.Layout?.Kind || before.Backend != next.Backend;
            send = healthChanged || _lastStatusSent is not { } last || Stopwatch.GetElapsedTime(last) >= TimeSpan.FromSeconds(1);
            if (send)
            {
                _lastStatusSent = Stopwatch.GetTimestamp();
            }
        }

        if (send)
        {
            sink.StatusChanged(next);
        }
    }

    /// <summary>Reads the topology at start, whenever events mark it dirty, and every retry delay while the engine is down.</summary>
    private async Task TopologyLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var topology = await topologyReader.ReadAsync(ct).ConfigureAwait(false);
                Volatile.Write(ref _topology, topology);
                sink.TopologyChanged(topology);
                if (!Status.EngineAvailable || Status.Backend != topology.Engine.FirewallBackend)
                {
                    Update(s => s with { EngineAvailable = true, EngineError = null, Backend = topology.Engine.FirewallBackend });
                }

                // Wait for an event, then let a burst of events settle into one refresh.
                await _topologyDirty.WaitAsync(ct).ConfigureAwait(false);
                await Task.Delay(_options.TopologyDebounce, ct).ConfigureAwait(false);
                while (_topologyDirty.CurrentCount > 0)
                {
                    await _topologyDirty.WaitAsync(ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (EngineUnavailableException ex)
            {
                ReportEngineDown(ex.Message);
                await DelayAsync(_options.RetryDelay, ct).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "topology read failed");
                Update(s => s with { EngineAvailable = false, EngineError = ex.Message });
                await DelayAsync(_options.RetryDelay, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Follows Docker's event stream (containers and networks); each event marks the topology dirty. Reconnects after outages.</summary>
    private async Task EventsLoopAsync(CancellationToken ct)
    {
        var parameters = new ContainerEventsParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["type"] = new Dictionary<string, bool> { ["container"] = true, ["network"] = true },
            },
        };
        var progress = new Progress<Message>(_ => _topologyDirty.Release());
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await docker.System.MonitorEventsAsync(parameters, progress, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogDebug(ex, "Docker event stream ended");
            }

            // The stream ended: the engine restarted or went away. Refresh once it answers again.
            _topologyDirty.Release();
            await DelayAsync(_options.RetryDelay, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Logs and publishes an engine outage once per distinct reason, not on every retry.</summary>
    private void ReportEngineDown(string error)
    {
        if (Status.EngineAvailable || Status.EngineError != error)
        {
            logger.LogWarning("Docker engine unavailable: {Error}", error);
            Update(s => s with { EngineAvailable = false, EngineError = error });
        }
    }

    private void ReportFirewallDown(string error)
    {
        if (Status.FirewallAvailable || Status.FirewallError != error)
        {
            logger.LogWarning("firewall unreadable: {Error}", error);
            Update(s => s with { FirewallAvailable = false, FirewallError = error });
        }
    }

    private async Task FirewallLoopAsync(CancellationToken ct)
    {
        var minPeriod = TimeSpan.FromSeconds(1 / Math.Max(0.1, _options.TargetRateHz));
        var watchedPeriod = TimeSpan.FromSeconds(1 / Math.Max(Math.Max(0.1, _options.TargetRateHz), _options.WatchedRateHz));
        var pacing = new ReadPacing();
        while (!ct.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            TimeSpan cost;
            try
            {
                cost = await ReadFirewallOnceAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (FirewallUnavailableException ex)
            {
                ReportFirewallDown(ex.Message);
                await DelayAsync(_options.RetryDelay, ct).ConfigureAwait(false);
                continue;
            }

            // Duty cycle: reading stays under MaxDutyCycle, paced by what reads typically cost in CPU time, not by one slow
            // read nor by the wall time a busy machine makes them wait. While someone watches, the floor is the watched
            // rate's period; someone starting to watch during a longer wait cuts it short (checked every watched period),
            // so a page opened is served at the faster rate at once.
            pacing.Add(cost);
            while (!ct.IsCancellationRequested)
            {
                var watched = sink.CounterWatchers > 0;
                var wait = pacing.Period(watched ? watchedPeriod : minPeriod, _options.MaxDutyCycle, Status.DutyCycle) - Stopwatch.GetElapsedTime(started);
                if (wait <= TimeSpan.Zero)
                {
                    break;
                }

                await DelayAsync(watched || wait < watchedPeriod ? wait : watchedPeriod, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>One read, diff and publication; returns its CPU cost (the tools' and ours), or its wall time where the kernel's CPU clocks are unavailable.</summary>
    private async Task<TimeSpan> ReadFirewallOnceAsync(CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var topology = Volatile.Read(ref _topology);
        var childrenBefore = CpuTime.ReapedChildren();
        var snapshot = await firewallReader.ReadAsync(topology?.Engine.FirewallBackend ?? Status.Backend, ct).ConfigureAwait(false);
        var childrenCpu = CpuTime.ReapedChildren() - childrenBefore;
        var ownBefore = CpuTime.CurrentThread();
        var ruleset = snapshot.Ruleset;
        var diff = CounterDelta.Compare(_previous, ruleset);
        var structureChanged = _previous is null || diff.StructureChanged || !ReferenceEquals(topology, _classifiedWith);
        if (structureChanged)
        {
            RuleClassifier.Classify(ruleset, topology?.Networks, topology?.Containers);
            _classifiedWith = topology;
            sink.FirewallChanged(ruleset, snapshot);
        }

        // Counters that moved are published even when the same read also changed the structure.
        if (diff.Counters.Count > 0 || diff.Policies.Count > 0)
        {
            sink.CountersChanged(new CountersUpdate(_host, snapshot.ReadAt, diff.Counters, diff.Policies));
        }

        _previous = ruleset;
        var elapsed = sw.Elapsed;
        readObserver?.Completed(_host, elapsed);
        var ownCpu = CpuTime.CurrentThread() - ownBefore;
        var cost = childrenCpu + snapshot.ParseCpu + ownCpu ?? elapsed;
        var now = Stopwatch.GetTimestamp();
        _reads.Enqueue((now, elapsed, cost));
        while (_reads.Count > 1 && Stopwatch.GetElapsedTime(_reads.Peek().At, now) > TimeSpan.FromSeconds(10))
        {
            _reads.Dequeue();
        }

        // Over the last 10 s: reads per second, the share of one core's time the reads cost (what the cap bounds), and
        // the share of wall time they took (larger when other work keeps the CPUs busy).
        var first = _reads.Peek();
        var sinceFirst = Stopwatch.GetElapsedTime(first.At, now);
        var span = (sinceFirst + first.Took).TotalSeconds;
        var achieved = _reads.Count > 1 ? (_reads.Count - 1) / sinceFirst.TotalSeconds : 0;
        var duty = span > 0 ? _reads.Sum(r => r.Cpu.TotalSeconds) / span : 0;
        var wallDuty = span > 0 ? _reads.Sum(r => r.Took.TotalSeconds) / span : 0;
        var layout = structureChanged ? DockerLayoutDetector.Detect(ruleset) : Status.Layout;
        Update(s => s with
        {
            FirewallAvailable = true,
            FirewallError = null,
            Layout = layout,
            AchievedRateHz = achieved,
            LastReadMilliseconds = elapsed.TotalMilliseconds,
            DutyCycle = duty,
            LastReadCpuMilliseconds = cost.TotalMilliseconds,
            WallDutyCycle = wallDuty,
            Reads = s.Reads + 1,
            CounterWatchers = sink.CounterWatchers,
            RuleCount = ruleset.RuleCount,
            LastReadAt = snapshot.ReadAt,
        });
        return cost;
    }


    private static async Task DelayAsync(TimeSpan delay, CancellationToken ct)
    {
        try
        {
            await Task.Delay(delay, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public override void Dispose()
    {
        _topologyDirty.Dispose();
        base.Dispose();
    }
}
