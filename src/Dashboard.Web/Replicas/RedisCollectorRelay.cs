using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dashboard.App.Hosts;
using Dashboard.App.Live;
using Dashboard.App.Replicas;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Agents;
using Dashboard.Host.Collector;
using Dashboard.Host.Netfilter;
using StackExchange.Redis;

namespace Dashboard.Web.Replicas;

/// <summary>
/// The embedded collector as a singleton duty of replicas (with Redis). Only the replica holding the duties reads the
/// host (<see cref="ICollectorDuty"/>); what it reads goes to its own live feed and, as the agent protocol's numbered
/// messages (<see cref="CollectorStream"/>), on the channel <c>PREFIX:collector</c> to the other replicas, which check
/// them (<see cref="AgentMessageCheck"/>) and apply them to their own live feed in order (<see cref="RemoteHost"/> over
/// the local feed). A follower follows one holder's stream, switching only on a snapshot that passes the checks; a gap,
/// a silence or a new holder makes it ask for a snapshot on <c>PREFIX:collector-ask</c> (at most every 2 s, backing off
/// to a minute while none comes), and the holder sends one at most once a second (and says its status again after 2 s
/// without a message, so a slow but live holder is never taken for a silent one). Followers also say there how many watch the
/// counters on their pages (on change and every 2 s), so the holder reads at the watched rate while anyone on any
/// replica watches. A followed stream silent for 10 s is shown as such (the last state kept, marked unavailable).
/// </summary>
public sealed class RedisCollectorRelay(
    RedisConnection connection,
    LiveFeed feed,
    IDutyLease lease,
    ILogger<RedisCollectorRelay> logger) : BackgroundService, ICollectorSink, ICollectorDuty
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Converters = { new JsonStringEnumConverter() } };

    /// <summary>A follower's word on the ask channel is counted as long as this after it was said.</summary>
    private static readonly TimeSpan WatchersFresh = TimeSpan.FromSeconds(6);

    /// <summary>A followed stream that says nothing for this long is shown as silent (the holder reports its status every second).</summary>
    public static readonly TimeSpan Silence = TimeSpan.FromSeconds(10);

    private const int MaxFollowers = 64;

    private readonly CollectorStream _stream = new(queueLimit: 4096);
    private readonly RemoteHost _relayed = new(feed.Host, feed);
    private readonly ConcurrentDictionary<string, (int Watchers, DateTimeOffset At)> _followers = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _holds = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>This process's start, so a restarted replica of the same name is a new stream for the others.</summary>
    private readonly string _epoch = Guid.NewGuid().ToString("N")[..12];

    // The follower's state: changed only under this lock (the message handler and the follower's timer both use it).
    private readonly object _follow = new();
    private bool _holding;
    private string? _following; // the holder's stream this replica applies (origin/epoch)
    private DateTimeOffset _lastHeard;
    private DateTimeOffset? _askedAt;
    private long _snapshotsWhenAsked;
    private TimeSpan _askBackoff = TimeSpan.FromSeconds(2);

    private DateTimeOffset _lastSnapshotAsked; // the holder's side: snapshots sent at most once a second
    private int _snapshotPending; // 1: asked within that second, sent by the heartbeat
    private ISubscriber? _subscriber;
    private RedisChannel _collector;
    private RedisChannel _ask;
    private long _published;
    private long _applied;
    private long _refused;

    /// <summary>Messages published as the holder, applied as a follower, and refused unread or unchecked.</summary>
    public (long Published, long Applied, long Refused) Counts => (Interlocked.Read(ref _published), Interlocked.Read(ref _applied), Interlocked.Read(ref _refused));

    /// <summary>The holder's stream this replica follows (replica name / start id), null while it holds the duty or has heard none.</summary>
    public string? Following
    {
        get
        {
            lock (_follow)
            {
                return _holding ? null : _following;
            }
        }
    }

    /// <summary>Completes once this replica holds the duties and has stopped applying another's reads.</summary>
    public Task WaitAsync(CancellationToken ct) => _holds.Task.WaitAsync(ct);

    public int CounterWatchers
    {
        get
        {
            var now = DateTimeOffset.UtcNow;
            var others = _followers.Values.Where(f => now - f.At < WatchersFresh).Sum(f => (long)f.Watchers);
            return (int)Math.Min(int.MaxValue, feed.CounterWatchers + others);
        }
    }

    public void TopologyChanged(HostTopology topology)
    {
        feed.TopologyChanged(topology);
        _stream.TopologyChanged(topology);
    }

    public void FirewallChanged(Ruleset ruleset, DateTimeOffset readAt) => feed.FirewallChanged(ruleset, readAt);

    public void FirewallChanged(Ruleset ruleset, FirewallSnapshot snapshot)
    {
        ((ICollectorSink)feed).FirewallChanged(ruleset, snapshot);
        _stream.FirewallChanged(ruleset, snapshot);
    }

    public void CountersChanged(CountersUpdate update)
    {
        feed.CountersChanged(update);
        _stream.CountersChanged(update);
    }

    public void StatusChanged(CollectorStatus status)
    {
        feed.StatusChanged(status);
        _stream.StatusChanged(status);
    }

    private sealed record Envelope(string Origin, string Epoch, string Method, JsonElement Body);

    private sealed record Ask(string Origin, string Kind, int Watchers, string? Why);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            _collector = connection.Channel("collector");
            _ask = connection.Channel("collector-ask");
            _subscriber = (await connection.GetAsync().ConfigureAwait(false)).GetSubscriber();

            // Subscribed in the background: while Redis is away the holder must still read its host (nobody hears it then).
            _ = connection.SubscribeAsync(_ask, OnAsk, stoppingToken);
            _ = connection.SubscribeAsync(_collector, OnCollector, stoppingToken);
            var following = FollowAsync(stoppingToken);
            await lease.WaitAsync(stoppingToken).ConfigureAwait(false);
            lock (_follow)
            {
                _holding = true;
                if (_following is not null && _lastHeard != default && DateTimeOffset.UtcNow - _lastHeard > TimeSpan.FromSeconds(3))
                {
                    // From the old holder's last message until now nothing was read: the feed marks the span.
                    feed.RecordGap(_lastHeard, DateTimeOffset.UtcNow);
                }
            }

            await following.ConfigureAwait(false);
            _holds.TrySetResult();
            logger.LogInformation("this replica reads the host now and relays it to the others on {Channel}", _collector);
            var beating = HeartbeatAsync(stoppingToken);

            // Published without waiting: a message lost while Redis is away is a gap the followers see and ask a snapshot for.
            await _stream.SendAsync((method, message, _, _) => Publish(method, message), Task.Delay(Timeout.Infinite, stoppingToken), stoppingToken).ConfigureAwait(false);
            await beating.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// The holder's side, every second: answers a snapshot request that came within a second of the last one, and says
    /// the status again when nothing was published for 2 s (reads paced slowly, or a firewall that stays unreadable),
    /// so followers never take a live holder for a silent one.
    /// </summary>
    private async Task HeartbeatAsync(CancellationToken ct)
    {
        var published = Interlocked.Read(ref _published);
        var quietSince = DateTimeOffset.UtcNow;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var now = DateTimeOffset.UtcNow;
            if (now - _lastSnapshotAsked >= TimeSpan.FromSeconds(1) && Interlocked.Exchange(ref _snapshotPending, 0) == 1)
            {
                _lastSnapshotAsked = now;
                _stream.RequestSnapshot();
            }

            var current = Interlocked.Read(ref _published);
            if (current != published)
            {
                (published, quietSince) = (current, now);
            }
            else if (now - quietSince >= TimeSpan.FromSeconds(2))
            {
                _stream.StatusChanged(feed.Status);
                quietSince = now;
            }
        }
    }

    private Task Publish(string method, object message)
    {
        var body = JsonSerializer.SerializeToElement(message, message.GetType(), Json);
        if (Send(_collector, JsonSerializer.SerializeToUtf8Bytes(new Envelope(lease.Replica, _epoch, method, body), Json)))
        {
            Interlocked.Increment(ref _published);
        }

        return Task.CompletedTask;
    }

    /// <summary>Publishes without waiting; false when the client refused at once (no connection to Redis now).</summary>
    private bool Send(RedisChannel channel, byte[] bytes)
    {
        try
        {
            _subscriber?.Publish(channel, bytes, CommandFlags.FireAndForget);
            return true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogDebug("not published on {Channel}: {Error}", channel, ex.Message);
            return false;
        }
    }

    /// <summary>While another replica holds the duty: asks for its state, says how many watch here, and marks a silent stream.</summary>
    private async Task FollowAsync(CancellationToken ct)
    {
        lock (_follow)
        {
            AskForSnapshot("this replica started");
        }

        var said = -1;
        var saidAt = DateTimeOffset.MinValue;
        while (!ct.IsCancellationRequested)
        {
            var now = DateTimeOffset.UtcNow;
            lock (_follow)
            {
                if (_holding)
                {
                    return;
                }

                if (_askedAt is { } asked && now - asked > _askBackoff + TimeSpan.FromSeconds(3) && _relayed.Snapshots == _snapshotsWhenAsked)
                {
                    // Asked, and no snapshot came (the holder was not listening yet, the answer was lost or refused).
                    AskForSnapshot("no snapshot came after asking");
                }

                if (_following is { } stream && _relayed.IsCurrent(stream) && now - _lastHeard > Silence)
                {
                    _relayed.Detach(stream,
                        $"replica {stream.Split('/')[0]}, which reads this host, has said nothing since {_lastHeard:u} (stopped, or Redis is unreachable): its last state is shown",
                        "the host's counters are not relayed now");
                }
            }

            var watchers = feed.CounterWatchers;
            if (watchers != said || now - saidAt >= TimeSpan.FromSeconds(2))
            {
                Send(_ask, JsonSerializer.SerializeToUtf8Bytes(new Ask(lease.Replica, "watchers", watchers, null), Json));
                (said, saidAt) = (watchers, now);
            }

            try
            {
                await Task.Delay(250, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Asks the holder for a snapshot, at most once per back-off period (called under <see cref="_follow"/>).</summary>
    private void AskForSnapshot(string why)
    {
        var now = DateTimeOffset.UtcNow;
        if (_askedAt is { } asked && now - asked < _askBackoff)
        {
            return;
        }

        if (_askedAt is not null && _relayed.Snapshots == _snapshotsWhenAsked)
        {
            // The last one did not come or was refused: ask less often, up to once a minute.
            _askBackoff = TimeSpan.FromTicks(Math.Min(TimeSpan.FromMinutes(1).Ticks, _askBackoff.Ticks * 2));
        }

        _snapshotsWhenAsked = _relayed.Snapshots;
        _askedAt = now;
        Send(_ask, JsonSerializer.SerializeToUtf8Bytes(new Ask(lease.Replica, "snapshot", 0, why), Json));
    }

    private static readonly AgentHello Hello = new(AgentProtocol.Version, AgentProtocol.BuildVersion, null);

    private void OnAsk(RedisValue message)
    {
        try
        {
            var ask = JsonSerializer.Deserialize<Ask>((byte[])message!, Json);
            if (ask?.Origin is not { Length: > 0 and <= 200 } origin || ask.Kind is null)
            {
                throw new JsonException("the request names no replica");
            }

            if (origin == lease.Replica)
            {
                return;
            }

            var now = DateTimeOffset.UtcNow;
            switch (ask.Kind)
            {
                case "watchers":
                    foreach (var stale in _followers.Where(f => now - f.Value.At >= WatchersFresh).Select(f => f.Key).ToList())
                    {
                        _followers.TryRemove(stale, out _);
                    }

                    if (_followers.Count < MaxFollowers || _followers.ContainsKey(origin))
                    {
                        _followers[origin] = (Math.Clamp(ask.Watchers, 0, 100_000), now);
                    }

                    break;
                case "snapshot" when Volatile.Read(ref _holding):
                    logger.LogDebug("replica {Replica} asks for the host's state: {Why}", AgentMessageCheck.Cut(origin), AgentMessageCheck.Cut(ask.Why));
                    if (now - _lastSnapshotAsked >= TimeSpan.FromSeconds(1))
                    {
                        _lastSnapshotAsked = now;
                        _stream.RequestSnapshot();
                    }
                    else
                    {
                        // One a second at most: the heartbeat sends it when the second is over.
                        Interlocked.Exchange(ref _snapshotPending, 1);
                    }

                    break;
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Interlocked.Increment(ref _refused);
            logger.LogWarning("a collector request from another replica could not be read: {Error}", ex.Message);
        }
    }

    private void OnCollector(RedisValue message)
    {
        try
        {
            var envelope = JsonSerializer.Deserialize<Envelope>((byte[])message!, Json);
            if (envelope?.Origin is not { Length: > 0 and <= 200 } origin || envelope.Epoch is not { Length: > 0 and <= 64 } epoch || envelope.Method is null)
            {
                throw new JsonException("the message names no replica or method");
            }

            lock (_follow)
            {
                if (_holding || (origin == lease.Replica && epoch == _epoch))
                {
                    return;
                }

                Follow($"{origin}/{epoch}", envelope);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Interlocked.Increment(ref _refused);
            logger.LogWarning("a collector message from another replica was not applied: {Error}", ex.Message);
        }
    }

    /// <summary>Applies one message of <paramref name="stream"/> (under <see cref="_follow"/>).</summary>
    private void Follow(string stream, Envelope envelope)
    {
        AgentSnapshot? snapshot = null;
        if (envelope.Method == nameof(AgentHubMethods.Snapshot))
        {
            // Checked before anything else: a snapshot that is refused changes nothing, not even the stream followed.
            snapshot = envelope.Body.Deserialize<AgentSnapshot>(Json);
            if (AgentMessageCheck.Problem(snapshot) is { } refused)
            {
                throw new JsonException($"{envelope.Method}: {refused}");
            }
        }

        if (stream != _following)
        {
            if (snapshot is null)
            {
                // Another stream's delta (a new holder, or one that lost its lease and has not noticed yet): followed
                // only from a snapshot, asked for when nothing followed is heard.
                if (_following is null || !_relayed.IsCurrent(_following))
                {
                    AskForSnapshot($"replica {AgentMessageCheck.Cut(envelope.Origin)} reads the host now");
                }

                return;
            }

            logger.LogInformation("the host's reads now come from replica {Replica}", AgentMessageCheck.Cut(envelope.Origin));
            _following = stream;
        }

        if (!_relayed.IsCurrent(stream))
        {
            if (snapshot is null)
            {
                // Heard again after a silence: it is followed again from a snapshot (not delta by delta, which would
                // show it live and silent by turns until one came).
                AskForSnapshot("the stream followed is heard again");
                return;
            }

            _relayed.Attach(stream, Hello, () => { });
        }

        string? problem;
        string? why = null;
        switch (envelope.Method)
        {
            case nameof(AgentHubMethods.Snapshot):
                problem = null;
                _relayed.Apply(stream, snapshot!);
                (_askedAt, _askBackoff) = (null, TimeSpan.FromSeconds(2));
                break;
            case nameof(AgentHubMethods.Topology):
                var t = envelope.Body.Deserialize<AgentTopology>(Json);
                problem = AgentMessageCheck.Problem(t);
                why = problem is null ? _relayed.Apply(stream, t!) : null;
                break;
            case nameof(AgentHubMethods.Firewall):
                var f = envelope.Body.Deserialize<AgentFirewallChange>(Json);
                problem = AgentMessageCheck.Problem(f);
                why = problem is null ? _relayed.Apply(stream, f!) : null;
                break;
            case nameof(AgentHubMethods.Counters):
                var c = envelope.Body.Deserialize<AgentCounters>(Json);
                problem = AgentMessageCheck.Problem(c);
                why = problem is null ? _relayed.Apply(stream, c!) : null;
                break;
            case nameof(AgentHubMethods.Status):
                var st = envelope.Body.Deserialize<AgentStatus>(Json);
                problem = AgentMessageCheck.Problem(st);
                why = problem is null ? _relayed.Apply(stream, st!) : null;
                break;
            default:
                problem = $"unknown method '{AgentMessageCheck.Cut(envelope.Method)}'";
                break;
        }

        if (problem is not null)
        {
            // Not applied: what follows is a gap, and the asking backs off while snapshots are refused too.
            throw new JsonException($"{envelope.Method}: {problem}");
        }

        Interlocked.Increment(ref _applied);
        if (why is null)
        {
            // Applied in order (a delta out of sequence is not hearing the holder: its state here stays as it was).
            _lastHeard = DateTimeOffset.UtcNow;
        }

        if (why is { Length: > 0 })
        {
            AskForSnapshot(why);
        }
    }
}
