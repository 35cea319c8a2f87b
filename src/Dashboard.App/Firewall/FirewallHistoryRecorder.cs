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
    IOptions<Dashboard.Host.DockerHostOptions> hostOptions,
    Dashboard.App.Replicas.IDutyLease lease,
    ILogger<FirewallHistoryRecorder> logger) : BackgroundService
{
    /// <summary>Who the audit names for a change nobody known made.</summary>
    public static readonly Actor Outside = new(null, "outside the dashboard", false);

    private readonly FirewallHistoryOptions _options = options.Value;
    private readonly ConcurrentDictionary<string, HostHistoryState> _states = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (Ruleset Ruleset, DateTimeOffset At)> _latest = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Dictionary<string, (string Description, string[] Tokens)>> _topologies = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _engineUp = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _unseen = new(StringComparer.Ordinal);
    private readonly string _instance = hostOptions.Value.InstanceId;
    private int _pruning;
    private readonly ConcurrentDictionary<string, List<OutsideChangeAlert>> _alerts = new(StringComparer.Ordinal);
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private static readonly TimeSpan AlertInterval = TimeSpan.FromSeconds(1);

    // The loop's own (never touched by the feeds' callbacks).
    private readonly Dictionary<string, List<FirewallChangeDto>> _outsideHeld = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _lastAlert = new(StringComparer.Ordinal);
    private readonly List<(string Host, DecidedChange Change, DateTimeOffset Due)> _verify = [];
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

    /// <summary>Starts following the feeds: at start-up, or with replicas when this one takes the duties (a fresh baseline, as after a restart).</summary>
    private void FollowAll()
    {
        Follow(local);
        hosts.Added += OnAdded;
        foreach (var h in hosts.Remotes)
        {
            Follow(h.Feed);
        }
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
            _topologies[feed.Host] = Describe(t);
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
                // The engine's networks or containers changed: Docker writes its rules around such a change, naming
                // what changed. A refresh that finds the same networks and containers (an exec, a health check) is not
                // activity. Stamped when the topology was read (not later, when it arrived), if that clock is plausible.
                var now = DateTimeOffset.UtcNow;
                var described = Describe(t.Topology);
                if (_topologies.TryGetValue(t.Host, out var before) && Changed(before, described) is { Count: > 0 } tokens)
                {
                    var readAt = t.Topology.ReadAt;
                    var at = readAt < now && now - readAt < TimeSpan.FromSeconds(30) ? readAt : now;
                    StateOf(t.Host).EngineActive(new EngineActivity(at, tokens));
                }

                _topologies[t.Host] = described;
                break;
            case StatusChangedEvent s:
                // The engine coming back (a restart) rewrites its rules; a firewall that could not be read hid what changed meanwhile.
                var up = s.Status.EngineAvailable;
                if (_engineUp.TryGetValue(s.Host, out var was) && !was && up)
                {
                    StateOf(s.Host).EngineActive(new EngineActivity(DateTimeOffset.UtcNow, null));
                }

                _engineUp[s.Host] = up;
                if (!s.Status.FirewallAvailable && s.Status.FirewallError is not null)
                {
                    _unseen[s.Host] = "changed while the host's firewall could not be read";
                }

                break;
        }
    }

    /// <summary>
    /// What Docker's rules depend on, per network and container id: a description (bridge, subnets, options; state,
    /// endpoints; not the status text) and the words its rules would name (bridge, subnets; addresses).
    /// </summary>
    internal static Dictionary<string, (string Description, string[] Tokens)> Describe(HostTopology t)
    {
        var map = new Dictionary<string, (string, string[])>(StringComparer.Ordinal);
        foreach (var n in t.Networks)
        {
            var subnets = n.Subnets.Select(x => x.Subnet).ToArray();
            map["n:" + n.Id] = ($"{n.BridgeName}|{n.Internal}|{n.Icc}|{n.EnableIpv6}|{string.Join(',', subnets)}",
                [.. subnets, .. n.BridgeName is { } b ? new[] { b } : []]);
        }

        foreach (var c in t.Containers)
        {
            var addresses = c.Endpoints.SelectMany(e => new[] { e.Ipv4Address, e.Ipv6Address }).OfType<string>().Where(a => a.Length > 0).ToArray();
            map["c:" + c.Id] = ($"{c.State}|{string.Join(',', c.Endpoints.Select(e => $"{e.NetworkId}={e.Ipv4Address},{e.Ipv6Address}"))}", addresses);
        }

        return map;
    }

    /// <summary>The words of everything that appeared, went or changed between two topologies (both sides' words).</summary>
    internal static HashSet<string> Changed(Dictionary<string, (string Description, string[] Tokens)> before, Dictionary<string, (string Description, string[] Tokens)> after)
    {
        var tokens = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (id, now) in after)
        {
            if (!before.TryGetValue(id, out var was) || was.Description != now.Description)
            {
                tokens.UnionWith(now.Tokens);
                if (was.Tokens is not null)
                {
                    tokens.UnionWith(was.Tokens);
                }

                tokens.Add(id); // something changed even when it names nothing (a container without an address)
            }
        }

        foreach (var (id, was) in before)
        {
            if (!after.ContainsKey(id))
            {
                tokens.UnionWith(was.Tokens);
                tokens.Add(id);
            }
        }

        return tokens;
    }

    private HostHistoryState StateOf(string host) => _states.GetOrAdd(host, h => new HostHistoryState(_options.DockerWindow, owner => IsOwnTag(h, owner)));

    /// <summary>
    /// This dashboard's own tags: its instance's changes (staged ones too), runs and traces. An agent tags its traces with
    /// its own instance, so on an agent's host any trace tag is the dashboard's (it asked for it).
    /// </summary>
    private bool IsOwnTag(string host, string owner) =>
        owner.StartsWith($"change-{_instance}-", StringComparison.Ordinal)
        || owner.StartsWith($"run-{_instance}-", StringComparison.Ordinal)
        || owner.StartsWith($"trace-{_instance}-", StringComparison.Ordinal)
        || (host != local.Host && owner.StartsWith("trace-", StringComparison.Ordinal));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Enabled)
        {
            return;
        }

        // A singleton duty: with replicas, only the one holding the lease records (one row per change, not one per replica).
        await lease.WaitAsync(stoppingToken).ConfigureAwait(false);
        FollowAll();

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
                        await GuardedAsync(host, () => ObserveAsync(host, read.Ruleset, read.At), read).ConfigureAwait(false);
                    }
                }

                var now = DateTimeOffset.UtcNow;
                foreach (var (host, state) in _states)
                {
                    if (state.PendingCount > 0)
                    {
                        await GuardedAsync(host, async () =>
                        {
                            if (state.Due(now) is { Count: > 0 } due)
                            {
                                await RecordAsync(host, due).ConfigureAwait(false);
                            }
                        }, null).ConfigureAwait(false);
                    }
                }

                if (_verify.Count > 0)
                {
                    await VerifyRemovalsAsync(now).ConfigureAwait(false);
                }

                if (_outsideHeld.Count > 0)
                {
                    await FlushHeldAlertsAsync(now).ConfigureAwait(false);
                }

                // Pruning runs beside the loop (large deletes must not hold back reads and alerts).
                if (now >= nextPrune && Interlocked.Exchange(ref _pruning, 1) == 0)
                {
                    nextPrune = now + TimeSpan.FromHours(1);
                    _ = Task.Run(async () =>
                    {
                        try
                        {
                            await PruneAsync(DateTimeOffset.UtcNow - _options.Retention, stoppingToken).ConfigureAwait(false);
                        }
                        catch (Exception ex) when (ex is not OperationCanceledException)
                        {
                            logger.LogError(ex, "firewall history: pruning failed");
                        }
                        finally
                        {
                            Interlocked.Exchange(ref _pruning, 0);
                        }
                    }, CancellationToken.None);
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

    /// <summary>
    /// Runs one host's step; if it fails (the database went away), that host's history starts again from its next read:
    /// the read is put back, and what it and anything not yet written changed is recorded as unobserved against the
    /// history's last known state, never lost nor misattributed.
    /// </summary>
    private async Task GuardedAsync(string host, Func<Task> step, (Ruleset Ruleset, DateTimeOffset At)? read)
    {
        try
        {
            await step().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogError(ex, "firewall history of {Host}: recording failed; the next read is compared with what the history holds", host);
            _states.TryRemove(host, out _);
            _unseen[host] = "not recorded when seen: the history could not be written then";
            if (read is { } r)
            {
                _latest.TryAdd(host, r);
            }

            await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
    }

    /// <summary>Compares one read with the last one of its host and records what changed (the first read becomes a checkpoint).</summary>
    private async Task ObserveAsync(string host, Ruleset ruleset, DateTimeOffset at)
    {
        var shape = RulesetShape.Of(ruleset);
        var state = StateOf(host);
        if (state.Shape is null)
        {
            var known = await queries.LatestShapeAsync(host).ConfigureAwait(false);
            if (known is not null)
            {
                var missed = RulesetChanges.Compare(known, shape);
                if (missed.Count > 0)
                {
                    var reason = _unseen.TryRemove(host, out var why) ? why : "changed while the dashboard was not reading this host";
                    await WriteAsync(host, [.. missed.Select(c => new DecidedChange(c, at, ChangeCause.Unobserved, reason))]).ConfigureAwait(false);
                }
            }

            _unseen.TryRemove(host, out _);
            await CheckpointAsync(host, shape, at).ConfigureAwait(false);
            state.Baseline(shape, at);
            return;
        }

        // A read after a span the dashboard could not see (the agent's link down, the firewall unreadable): what changed
        // meanwhile has no known cause.
        string? unseen = _unseen.TryRemove(host, out var reason2) ? reason2 : null;
        if (unseen is null && state.LastAt is { } last && hosts.FeedOf(host)?.Gaps is { Count: > 0 } gaps && gaps[^1].To > last)
        {
            unseen = "changed while the host's agent was disconnected";
        }

        var decided = state.Observe(shape, at, unseen);
        if (decided.Count > 0)
        {
            await RecordAsync(host, decided).ConfigureAwait(false);
        }

        if (state.SinceCheckpoint >= _options.CheckpointEvery)
        {
            await CheckpointAsync(host, shape, at).ConfigureAwait(false);
        }
    }

    private async Task CheckpointAsync(string host, RulesetShape shape, DateTimeOffset at)
    {
        await using var db = await dbs.CreateDbContextAsync().ConfigureAwait(false);
        db.FirewallCheckpoints.Add(new FirewallCheckpoint { Host = host, At = at.ToUniversalTime(), RuleCount = shape.RuleCount, Shape = ShapeJson.Write(shape) });
        await db.SaveChangesAsync().ConfigureAwait(false);
        StateOf(host).SinceCheckpoint = 0;
    }

    /// <summary>How long after the read a removed rule of an applied change is checked against the change's state.</summary>
    private static readonly TimeSpan RemovalCheck = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Writes decided changes, except the removals of this dashboard's change rules: those wait for
    /// <see cref="RemovalCheck"/>, then are the dashboard's only if the change is no longer applied (reverted, expired,
    /// failed); a rule of a change still applied that disappears was removed by someone else.
    /// </summary>
    private async Task RecordAsync(string host, IReadOnlyList<DecidedChange> decided)
    {
        var now = DateTimeOffset.UtcNow;
        var write = new List<DecidedChange>(decided.Count);
        foreach (var d in decided)
        {
            if (d is { Cause: ChangeCause.Dashboard, Change.Kind: RuleChangeKind.Removed, Detail: { } owner }
                && owner.StartsWith($"change-{_instance}-", StringComparison.Ordinal) && !owner.EndsWith("-staged", StringComparison.Ordinal))
            {
                _verify.Add((host, d, now + RemovalCheck));
            }
            else
            {
                write.Add(d);
            }
        }

        if (write.Count > 0)
        {
            await WriteAsync(host, write).ConfigureAwait(false);
        }
    }

    private async Task VerifyRemovalsAsync(DateTimeOffset now)
    {
        var due = _verify.Where(v => v.Due <= now).ToList();
        if (due.Count == 0)
        {
            return;
        }

        _verify.RemoveAll(v => v.Due <= now);
        var tags = due.Select(v => RuleTag.Prefix + v.Change.Detail).Distinct(StringComparer.Ordinal).ToList();
        Dictionary<string, (int Id, ChangeState State)> states;
        await using (var db = await dbs.CreateDbContextAsync().ConfigureAwait(false))
        {
            states = (await db.ChangeRequests.AsNoTracking().Where(c => c.Tag != null && tags.Contains(c.Tag)).Select(c => new { c.Tag, c.Id, c.State }).ToListAsync().ConfigureAwait(false))
                .ToDictionary(c => c.Tag!, c => (c.Id, c.State), StringComparer.Ordinal);
        }

        foreach (var group in due.GroupBy(v => v.Host))
        {
            var decided = group.Select(v => states.TryGetValue(RuleTag.Prefix + v.Change.Detail, out var c) && c.State == ChangeState.Applied
                ? v.Change with { Cause = ChangeCause.Outside, Detail = $"the rule of change #{c.Id}, still applied, was removed outside the dashboard" }
                : v.Change).ToList();
            await GuardedAsync(group.Key, () => WriteAsync(group.Key, decided), null).ConfigureAwait(false);
        }
    }

    private async Task WriteAsync(string host, IReadOnlyList<DecidedChange> decided)
    {
        var now = DateTimeOffset.UtcNow;
        var records = decided.Select(d => new FirewallChangeRecord
        {
            Host = host,
            At = d.At.ToUniversalTime(),
            RecordedAt = now,
            Family = d.Change.Family.ToString(),
            Table = Cut(d.Change.Table, 256)!,
            Chain = Cut(d.Change.Chain, 256)!,
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

        // Pages listening: one failing must not stop the others nor the audit below.
        foreach (var handler in Written?.GetInvocationList().Cast<Action<string, IReadOnlyList<FirewallChangeDto>>>() ?? [])
        {
            try
            {
                handler(host, dtos);
            }
            catch (Exception ex)
            {
                logger.LogDebug(ex, "a firewall history listener failed");
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
        Keep(alert);
        (hosts.FeedOf(host) ?? local).FirewallChangedOutside(alert);
        await audit.WriteAsync(Outside, "firewall.outside", $"host {host}",
            $"{outside.Count} firewall change(s) on host '{host}' made outside the dashboard (neither Docker's nor the dashboard's), read at {alert.At.ToString("O", CultureInfo.InvariantCulture)}: {Summary(outside)}",
            host: host).ConfigureAwait(false);
    }

    /// <summary>An alert the banner of pages opened later shows (<see cref="RecentAlerts"/>): this replica's, or one relayed from the history's holder.</summary>
    public void Keep(OutsideChangeAlert alert)
    {
        ArgumentNullException.ThrowIfNull(alert);
        var list = _alerts.GetOrAdd(alert.Host, _ => []);
        lock (list)
        {
            list.Add(alert);
            list.RemoveAll(a => a.DecidedAt < alert.DecidedAt - _options.AlertShownFor);
            if (list.Count > 50)
            {
                list.RemoveRange(0, list.Count - 50);
            }
        }
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
        cutoff = cutoff.ToUniversalTime();
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
            // In batches, so the recorder's own writes get the database between them.
            var changes = 0;
            while (true)
            {
                var ids = await db.FirewallChanges.Where(c => c.Host == host && c.At <= cutoff).OrderBy(c => c.Id).Select(c => c.Id).Take(5000).ToListAsync(ct).ConfigureAwait(false);
                if (ids.Count == 0)
                {
                    break;
                }

                changes += await db.FirewallChanges.Where(c => ids.Contains(c.Id)).ExecuteDeleteAsync(ct).ConfigureAwait(false);
            }

            var checkpoints = await db.FirewallCheckpoints.Where(c => c.Host == host && c.At < cutoff).ExecuteDeleteAsync(ct).ConfigureAwait(false);
            logger.LogInformation("firewall history of {Host}: {Changes} changes and {Checkpoints} checkpoints older than {Cutoff} removed", host, changes, checkpoints, cutoff);
        }
    }

    private static string? Cut(string? s, int max) => s is null || s.Length <= max ? s : s[..max];
}
