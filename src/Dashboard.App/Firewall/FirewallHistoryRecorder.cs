using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using Dashboard.App.Access;
using Dashboard.App.Audit;
using Dashboard.App.Contracts;
using Dashboard.App.Hosts;
using Dashboard.App.Live;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Dashboard.App.Firewall;

/// <summary>
/// Records every structural change of every host's firewall (the local collector's and each agent's) with its cause, from
/// the rulesets the live feeds publish. Reads are coalesced per host (a burst becomes one comparison against the last
/// one recorded, so nothing is lost, only merged), compared off the collector's thread and written in one batch per read.
/// Changes from outside raise an alert: an audit entry, the hub message and the banner of that host's pages.
/// A checkpoint of the whole structure is written at the first read of each host and every
/// <see cref="FirewallHistoryOptions.CheckpointEvery"/> changes; at start a difference from what the history last knew
/// is recorded as <see cref="ChangeCause.Unobserved"/>.
/// </summary>
public sealed class FirewallHistoryRecorder(
    LiveFeed local,
    HostDirectory hosts,
    IDbContextFactory<DashboardDbContext> dbs,
    FirewallHistoryQueries queries,
    AuditLog audit,
    IOptions<FirewallHistoryOptions> options,
    ILogger<FirewallHistoryRecorder> logger) : BackgroundService
{
    /// <summary>Who the audit names for a change nobody known made.</summary>
    public static readonly Actor Outside = new(null, "outside the dashboard", false);

    private readonly FirewallHistoryOptions _options = options.Value;
    private readonly ConcurrentDictionary<string, HostHistoryState> _states = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (Ruleset Ruleset, DateTimeOffset At)> _latest = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _topologies = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _engineUp = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, List<OutsideChangeAlert>> _alerts = new(StringComparer.Ordinal);
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private static readonly TimeSpan AlertInterval = TimeSpan.FromSeconds(1);

    // The loop's own (never touched by the feeds' callbacks).
    private readonly Dictionary<string, List<FirewallChangeDto>> _outsideHeld = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _lastAlert = new(StringComparer.Ordinal);
    private readonly List<IDisposable> _subscriptions = [];
    private readonly HashSet<string> _followed = new(StringComparer.Ordinal);
    private long _recorded;

    /// <summary>Changes written since start (all hosts).</summary>
    public long Recorded => Interlocked.Read(ref _recorded);

    /// <summary>Raised after a batch is written (tests and the benchmark wait on it).</summary>
    public event Action<string, IReadOnlyList<FirewallChangeDto>>? Written;

    /// <summary>Outside changes of a host still shown to pages opened now, newest first.</summary>
    public IReadOnlyList<OutsideChangeAlert> RecentAlerts(string host)
    {
        if (!_alerts.TryGetValue(host, out var list))
        {
            return [];
        }

        var since = DateTimeOffset.UtcNow - _options.AlertShownFor;
        lock (list)
        {
            return [.. list.Where(a => a.DecidedAt >= since).OrderByDescending(a => a.DecidedAt)];
        }
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (!_options.Enabled)
        {
            return Task.CompletedTask;
        }

        Follow(local);
        hosts.Added += OnAdded;
        foreach (var h in hosts.Remotes)
        {
            Follow(h.Feed);
        }

        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        hosts.Added -= OnAdded;
        lock (_subscriptions)
        {
            _subscriptions.ForEach(s => s.Dispose());
            _subscriptions.Clear();
        }

        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    private void OnAdded(RemoteHost h) => Follow(h.Feed);

    private void Follow(LiveFeed feed)
    {
        lock (_subscriptions)
        {
            if (!_followed.Add(feed.Host))
            {
                return;
            }

            _subscriptions.Add(feed.Subscribe([LiveTopic.Firewall, LiveTopic.Topology, LiveTopic.Status], OnEvent));
        }

        // What the feed already holds is the baseline (the collector may have published before this service started).
        if (feed.Topology is { } t)
        {
            _topologies[feed.Host] = Signature(t);
        }

        if (feed.Ruleset is { } r && feed.RulesetReadAt is { } at)
        {
            _latest.TryAdd(feed.Host, (r, at));
            _wake.Writer.TryWrite(true);
        }
    }

    private void OnEvent(LiveEvent e)
    {
        switch (e)
        {
            case FirewallChangedEvent f:
                _latest[f.Host] = (f.Ruleset, f.ReadAt);
                _wake.Writer.TryWrite(true);
                break;
            case TopologyChangedEvent t:
                // The engine's networks or containers changed: Docker writes its rules around such a change. A refresh
                // that finds the same networks and containers (an exec, a health check) is not activity.
                var signature = Signature(t.Topology);
                if (_topologies.TryGetValue(t.Host, out var before) && before != signature)
                {
                    StateOf(t.Host).EngineActive(DateTimeOffset.UtcNow);
                }

                _topologies[t.Host] = signature;
                break;
            case StatusChangedEvent s:
                // The engine coming back (a restart) rewrites its rules.
                var up = s.Status.EngineAvailable;
                if (_engineUp.TryGetValue(s.Host, out var was) && !was && up)
                {
                    StateOf(s.Host).EngineActive(DateTimeOffset.UtcNow);
                }

                _engineUp[s.Host] = up;
                break;
        }
    }

    /// <summary>What Docker's rules depend on: networks (bridge, subnets, options) and containers (state, endpoints), not their status text.</summary>
    internal static string Signature(HostTopology t)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var n in t.Networks.OrderBy(n => n.Id, StringComparer.Ordinal))
        {
            sb.Append(n.Id).Append('|').Append(n.BridgeName).Append('|').Append(n.Internal).Append(n.Icc).Append(n.EnableIpv6);
            foreach (var s in n.Subnets)
            {
                sb.Append('|').Append(s.Subnet);
            }

            sb.Append('\n');
        }

        foreach (var c in t.Containers.OrderBy(c => c.Id, StringComparer.Ordinal))
        {
            sb.Append(c.Id).Append('|').Append(c.State);
            foreach (var ep in c.Endpoints)
            {
                sb.Append('|').Append(ep.NetworkId).Append('=').Append(ep.Ipv4Address).Append(',').Append(ep.Ipv6Address);
            }

            sb.Append('\n');
        }

        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(sb.ToString())));
    }

    private HostHistoryState StateOf(string host) => _states.GetOrAdd(host, _ => new HostHistoryState(_options.DockerWindow));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Enabled)
        {
            return;
        }

        var nextPrune = DateTimeOffset.UtcNow + TimeSpan.FromMinutes(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                using (var tick = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
                {
                    tick.CancelAfter(TimeSpan.FromMilliseconds(250));
                    try
                    {
                        await _wake.Reader.WaitToReadAsync(tick.Token).ConfigureAwait(false);
                        _wake.Reader.TryRead(out _);
                    }
                    catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                    {
                        // The tick: waiting changes may be due.
                    }
                }

                foreach (var host in _latest.Keys)
                {
                    if (_latest.TryRemove(host, out var read))
                    {
                        await ObserveAsync(host, read.Ruleset, read.At).ConfigureAwait(false);
                    }
                }

                var now = DateTimeOffset.UtcNow;
                foreach (var (host, state) in _states)
                {
                    if (state.Due(now) is { Count: > 0 } due)
                    {
                        await WriteAsync(host, due).ConfigureAwait(false);
                    }
                }

                if (_outsideHeld.Count > 0)
                {
                    await FlushHeldAlertsAsync(now).ConfigureAwait(false);
                }

                if (now >= nextPrune)
                {
                    nextPrune = now + TimeSpan.FromHours(1);
                    await PruneAsync(now - _options.Retention, stoppingToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // A database hiccup must not end the history: the next read is compared with the last one observed.
                logger.LogError(ex, "firewall history: recording failed");
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Compares one read with the last one of its host and records what changed (the first read becomes a checkpoint).</summary>
    private async Task ObserveAsync(string host, Ruleset ruleset, DateTimeOffset at)
    {
        var shape = RulesetShape.Of(ruleset);
        var state = StateOf(host);
        if (state.Shape is null)
        {
            state.Baseline(shape);
            var known = await queries.LatestShapeAsync(host).ConfigureAwait(false);
            if (known is not null)
            {
                var missed = RulesetChanges.Compare(known, shape);
                if (missed.Count > 0)
                {
                    await WriteAsync(host, [.. missed.Select(c => new DecidedChange(c, at, ChangeCause.Unobserved, "changed while the dashboard was not reading this host"))]).ConfigureAwait(false);
                }
            }

            await CheckpointAsync(host, shape, at).ConfigureAwait(false);
            return;
        }

        var decided = state.Observe(shape, at);
        if (decided.Count > 0)
        {
            await WriteAsync(host, decided).ConfigureAwait(false);
        }

        if (state.SinceCheckpoint >= _options.CheckpointEvery)
        {
            await CheckpointAsync(host, shape, at).ConfigureAwait(false);
        }
    }

    private async Task CheckpointAsync(string host, RulesetShape shape, DateTimeOffset at)
    {
        await using var db = await dbs.CreateDbContextAsync().ConfigureAwait(false);
        db.FirewallCheckpoints.Add(new FirewallCheckpoint { Host = host, At = at, RuleCount = shape.RuleCount, Shape = ShapeJson.Write(shape) });
        await db.SaveChangesAsync().ConfigureAwait(false);
        StateOf(host).SinceCheckpoint = 0;
    }

    private async Task WriteAsync(string host, IReadOnlyList<DecidedChange> decided)
    {
        var now = DateTimeOffset.UtcNow;
        var records = decided.Select(d => new FirewallChangeRecord
        {
            Host = host,
            At = d.At,
            RecordedAt = now,
            Family = d.Change.Family.ToString(),
            Table = Cut(d.Change.Table, 64)!,
            Chain = Cut(d.Change.Chain, 128)!,
            Kind = d.Change.Kind.ToString(),
            RuleKey = d.Change.Key,
            RuleText = d.Change.Text,
            Owner = d.Change.Owner?.ToString(),
            Comment = Cut(d.Change.Comment, 512),
            PositionBefore = d.Change.PositionBefore,
            PositionAfter = d.Change.PositionAfter,
            PolicyBefore = Cut(d.Change.PolicyBefore, 32),
            PolicyAfter = Cut(d.Change.PolicyAfter, 32),
            Cause = d.Cause.ToString(),
            CauseDetail = Cut(d.Detail, 256),
        }).ToList();
        await using (var db = await dbs.CreateDbContextAsync().ConfigureAwait(false))
        {
            db.FirewallChanges.AddRange(records);
            await db.SaveChangesAsync().ConfigureAwait(false);
        }

        StateOf(host).SinceCheckpoint += records.Count;
        Interlocked.Add(ref _recorded, records.Count);
        var dtos = records.Select(FirewallChangeDto.From).ToList();
        Written?.Invoke(host, dtos);

        var outside = dtos.Where(d => d.Cause == nameof(ChangeCause.Outside)).ToList();
        if (outside.Count > 0)
        {
            // At most one alert (audit entry, hub message, banner) a second per host: a script changing rules in a loop
            // gets its changes gathered, not an audit entry per read.
            var held = _outsideHeld.GetValueOrDefault(host);
            if (held is null && (!_lastAlert.TryGetValue(host, out var last) || now - last >= AlertInterval))
            {
                await AlertAsync(host, outside, now).ConfigureAwait(false);
            }
            else
            {
                (held ??= _outsideHeld[host] = []).AddRange(outside);
            }
        }

        var unobserved = dtos.Count(d => d.Cause == nameof(ChangeCause.Unobserved));
        if (unobserved > 0)
        {
            await audit.WriteAsync(Actor.System, "firewall.unobserved", $"host {host}",
                $"{unobserved} firewall change(s) on host '{host}' made while the dashboard was not reading it: {Summary(dtos.Where(d => d.Cause == nameof(ChangeCause.Unobserved)).ToList())}", host: host).ConfigureAwait(false);
        }
    }

    /// <summary>Outside changes held back while the host's last alert is less than <see cref="AlertInterval"/> old.</summary>
    private async Task FlushHeldAlertsAsync(DateTimeOffset now)
    {
        foreach (var (host, held) in _outsideHeld.ToList())
        {
            if (!_lastAlert.TryGetValue(host, out var last) || now - last >= AlertInterval)
            {
                _outsideHeld.Remove(host);
                await AlertAsync(host, held, now).ConfigureAwait(false);
            }
        }
    }

    private async Task AlertAsync(string host, List<FirewallChangeDto> outside, DateTimeOffset now)
    {
        _lastAlert[host] = now;
        var alert = new OutsideChangeAlert(Guid.NewGuid(), host, outside.Min(d => d.At), now, outside.Count, [.. outside.Take(OutsideChangeAlert.MaxListed)]);
        var list = _alerts.GetOrAdd(host, _ => []);
        lock (list)
        {
            list.Add(alert);
            list.RemoveAll(a => a.DecidedAt < now - _options.AlertShownFor);
            if (list.Count > 50)
            {
                list.RemoveRange(0, list.Count - 50);
            }
        }

        (hosts.FeedOf(host) ?? local).FirewallChangedOutside(alert);
        await audit.WriteAsync(Outside, "firewall.outside", $"host {host}",
            $"{outside.Count} firewall change(s) on host '{host}' made outside the dashboard (neither Docker's nor the dashboard's), read at {alert.At.ToString("O", CultureInfo.InvariantCulture)}: {Summary(outside)}",
            host: host).ConfigureAwait(false);
    }

    private static string Summary(List<FirewallChangeDto> changes)
    {
        var lines = changes.Take(10).Select(d => d.Line).ToList();
        if (changes.Count > lines.Count)
        {
            lines.Add($"… and {changes.Count - lines.Count} more (firewall history)");
        }

        return string.Join("; ", lines);
    }

    /// <summary>Drops changes older than the cut, after writing a checkpoint at the cut so the ruleset from then on stays rebuildable.</summary>
    public async Task PruneAsync(DateTimeOffset cutoff, CancellationToken ct)
    {
        List<string> hostsWithHistory;
        await using (var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false))
        {
            hostsWithHistory = await db.FirewallCheckpoints.Select(c => c.Host).Distinct().ToListAsync(ct).ConfigureAwait(false);
        }

        foreach (var host in hostsWithHistory)
        {
            await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
            if (!await db.FirewallCheckpoints.AnyAsync(c => c.Host == host && c.At < cutoff, ct).ConfigureAwait(false))
            {
                continue;
            }

            var shape = await queries.ShapeAtAsync(host, cutoff, ct).ConfigureAwait(false);
            if (shape is null)
            {
                continue;
            }

            db.FirewallCheckpoints.Add(new FirewallCheckpoint { Host = host, At = cutoff, RuleCount = shape.RuleCount, Shape = ShapeJson.Write(shape) });
            await db.SaveChangesAsync(ct).ConfigureAwait(false);
            var changes = await db.FirewallChanges.Where(c => c.Host == host && c.At <= cutoff).ExecuteDeleteAsync(ct).ConfigureAwait(false);
            var checkpoints = await db.FirewallCheckpoints.Where(c => c.Host == host && c.At < cutoff).ExecuteDeleteAsync(ct).ConfigureAwait(false);
            logger.LogInformation("firewall history of {Host}: {Changes} changes and {Checkpoints} checkpoints older than {Cutoff} removed", host, changes, checkpoints, cutoff);
        }
    }

    private static string? Cut(string? s, int max) => s is null || s.Length <= max ? s : s[..max];
}
