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
/// messages (<see cref="CollectorStream"/>), on the channel <c>PREFIX:collector</c> to the other replicas, which apply
/// them to their own live feed as a dashboard applies an agent's (<see cref="RemoteHost"/> over the local feed: in
/// order, checked by <see cref="AgentMessageCheck"/>; a gap, a lost message or a new holder asks for a snapshot on
/// <c>PREFIX:collector-ask</c>). Followers also say there how many watch the counters on their pages (on change and
/// every 2 s), so the holder reads at the watched rate while anyone on any replica watches.
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

    private readonly CollectorStream _stream = new(queueLimit: 4096);
    private readonly RemoteHost _relayed = new(feed.Host, feed);
    private readonly ConcurrentDictionary<string, (int Watchers, DateTimeOffset At)> _followers = new(StringComparer.Ordinal);

    /// <summary>This process's start, so a restarted replica of the same name is a new stream for the others.</summary>
    private readonly string _epoch = Guid.NewGuid().ToString("N")[..12];
    private ISubscriber? _subscriber;
    private RedisChannel _collector;
    private RedisChannel _ask;
    private volatile bool _holding;
    private string? _following; // the holder's stream this replica applies (origin/epoch)
    private DateTimeOffset? _askedAt;
    private long _snapshotsWhenAsked;
    private long _published;
    private long _applied;
    private long _refused;

    /// <summary>Messages published as the holder, applied as a follower, and refused unread or unchecked.</summary>
    public (long Published, long Applied, long Refused) Counts => (Interlocked.Read(ref _published), Interlocked.Read(ref _applied), Interlocked.Read(ref _refused));

    /// <summary>The holder's stream this replica follows (replica name / start id), null while it holds the duty or has heard none.</summary>
    public string? Following => _holding ? null : Volatile.Read(ref _following);

    public Task WaitAsync(CancellationToken ct) => lease.WaitAsync(ct);

    public int CounterWatchers
    {
        get
        {
            var now = DateTimeOffset.UtcNow;
            return feed.CounterWatchers + _followers.Values.Where(f => now - f.At < WatchersFresh).Sum(f => f.Watchers);
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
        _collector = connection.Channel("collector");
        _ask = connection.Channel("collector-ask");
        _subscriber = (await connection.GetAsync().ConfigureAwait(false)).GetSubscriber();
        if (!await connection.SubscribeAsync(_ask, OnAsk, stoppingToken).ConfigureAwait(false)
            || !await connection.SubscribeAsync(_collector, OnCollector, stoppingToken).ConfigureAwait(false))
        {
            return;
        }

        var following = FollowAsync(stoppingToken);
        try
        {
            await lease.WaitAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await following.ConfigureAwait(false);
            return;
        }

        _holding = true;
        await following.ConfigureAwait(false);
        logger.LogInformation("this replica reads the host now and relays it to the others on {Channel}", _collector);

        // Published without waiting: a message lost while Redis is away is a gap the followers see and ask a snapshot for.
        await _stream.SendAsync((method, message, _, _) => Publish(method, message), Task.Delay(Timeout.Infinite, stoppingToken), stoppingToken).ConfigureAwait(false);
    }

    private Task Publish(string method, object message)
    {
        var body = JsonSerializer.SerializeToElement(message, message.GetType(), Json);
        _subscriber!.Publish(_collector, JsonSerializer.SerializeToUtf8Bytes(new Envelope(lease.Replica, _epoch, method, body), Json), CommandFlags.FireAndForget);
        Interlocked.Increment(ref _published);
        return Task.CompletedTask;
    }

    /// <summary>While another replica holds the duty: asks for its state, then says how many watch here, on change and every 2 s.</summary>
    private async Task FollowAsync(CancellationToken ct)
    {
        AskFor("snapshot", "this replica started");
        var said = -1;
        var saidAt = DateTimeOffset.MinValue;
        while (!_holding && !ct.IsCancellationRequested)
        {
            var now = DateTimeOffset.UtcNow;
            var watchers = feed.CounterWatchers;
            if (watchers != said || now - saidAt >= TimeSpan.FromSeconds(2))
            {
                AskFor("watchers", null, watchers);
                (said, saidAt) = (watchers, now);
            }

            if (_askedAt is { } asked && now - asked > TimeSpan.FromSeconds(5) && _relayed.Snapshots == Interlocked.Read(ref _snapshotsWhenAsked))
            {
                // Asked, and no snapshot came (the holder was not listening yet, or the answer was lost): ask again.
                AskFor("snapshot", "no snapshot came within 5 s of asking");
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

    private void AskFor(string kind, string? why, int watchers = 0)
    {
        if (kind == "snapshot")
        {
            Interlocked.Exchange(ref _snapshotsWhenAsked, _relayed.Snapshots);
            _askedAt = DateTimeOffset.UtcNow;
            if (Volatile.Read(ref _following) is { } stream)
            {
                // The relayed stream then applies nothing until the snapshot: start it afresh so its next delta asks too.
                _relayed.Attach(stream, Hello, () => { });
            }
        }

        _subscriber?.Publish(_ask, JsonSerializer.SerializeToUtf8Bytes(new Ask(lease.Replica, kind, watchers, why), Json), CommandFlags.FireAndForget);
    }

    private static readonly AgentHello Hello = new(AgentProtocol.Version, AgentProtocol.BuildVersion, null);

    private void OnAsk(RedisValue message)
    {
        Ask? ask;
        try
        {
            ask = JsonSerializer.Deserialize<Ask>((byte[])message!, Json);
        }
        catch (JsonException ex)
        {
            Interlocked.Increment(ref _refused);
            logger.LogWarning("a collector request from another replica could not be read: {Error}", ex.Message);
            return;
        }

        if (ask is null || ask.Origin == lease.Replica || ask.Origin.Length > 200)
        {
            return;
        }

        switch (ask.Kind)
        {
            case "watchers":
                _followers[ask.Origin] = (Math.Clamp(ask.Watchers, 0, 1_000_000), DateTimeOffset.UtcNow);
                break;
            case "snapshot" when _holding:
                logger.LogInformation("replica {Replica} asks for the host's state: {Why}", ask.Origin, AgentMessageCheck.Cut(ask.Why));
                _stream.RequestSnapshot();
                break;
        }
    }

    private void OnCollector(RedisValue message)
    {
        if (_holding)
        {
            return;
        }

        Envelope? envelope;
        try
        {
            envelope = JsonSerializer.Deserialize<Envelope>((byte[])message!, Json);
            if (envelope is null || envelope.Origin == lease.Replica && envelope.Epoch == _epoch)
            {
                return;
            }

            var stream = $"{envelope.Origin}/{envelope.Epoch}";
            if (stream.Length > 300)
            {
                throw new JsonException("the sender's name is too long");
            }

            if (stream != Volatile.Read(ref _following))
            {
                // A new holder (or the holder restarted): its stream starts with a snapshot, asked for if it did not.
                logger.LogInformation("the host's reads now come from replica {Replica}", envelope.Origin);
                Volatile.Write(ref _following, stream);
                _relayed.Attach(stream, Hello, () => { });
            }

            var (problem, why) = envelope.Method switch
            {
                nameof(AgentHubMethods.Snapshot) => ApplySnapshot(stream, envelope.Body.Deserialize<AgentSnapshot>(Json)!),
                nameof(AgentHubMethods.Topology) => Checked(envelope.Body.Deserialize<AgentTopology>(Json)!, AgentMessageCheck.Problem, m => _relayed.Apply(stream, m)),
                nameof(AgentHubMethods.Firewall) => Checked(envelope.Body.Deserialize<AgentFirewallChange>(Json)!, AgentMessageCheck.Problem, m => _relayed.Apply(stream, m)),
                nameof(AgentHubMethods.Counters) => Checked(envelope.Body.Deserialize<AgentCounters>(Json)!, AgentMessageCheck.Problem, m => _relayed.Apply(stream, m)),
                nameof(AgentHubMethods.Status) => Checked(envelope.Body.Deserialize<AgentStatus>(Json)!, AgentMessageCheck.Problem, m => _relayed.Apply(stream, m)),
                _ => ($"unknown method '{AgentMessageCheck.Cut(envelope.Method)}'", null),
            };
            if (problem is not null)
            {
                throw new JsonException(problem);
            }

            Interlocked.Increment(ref _applied);
            if (why is { Length: > 0 })
            {
                AskFor("snapshot", why);
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidCastException or NotSupportedException or NullReferenceException or ArgumentException)
        {
            Interlocked.Increment(ref _refused);
            logger.LogWarning("a collector message from another replica was not applied: {Error}", ex.Message);
        }
    }

    private (string? Problem, string? Why) ApplySnapshot(string stream, AgentSnapshot snapshot)
    {
        if (AgentMessageCheck.Problem(snapshot) is { } problem)
        {
            return (problem, null);
        }

        _relayed.Apply(stream, snapshot);
        _askedAt = null;
        return (null, null);
    }

    private static (string? Problem, string? Why) Checked<T>(T message, Func<T, string?> check, Func<T, string?> apply) =>
        check(message) is { } problem ? (problem, null) : (null, apply(message));
}
