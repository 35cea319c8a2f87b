using System.Text.Json;
using Dashboard.App.Live;
using StackExchange.Redis;

namespace Dashboard.Web.Replicas;

/// <summary>Configuration section "Redis": replicas' shared Redis (the SignalR backplane and the live feed across replicas).</summary>
public sealed class RedisOptions
{
    public const string Section = "Redis";

    /// <summary>A StackExchange.Redis configuration string (<c>host:port,password=…</c>) or a Unix socket's path; empty: one dashboard, no Redis.</summary>
    public string? Connection { get; set; }

    /// <summary>The start of every channel name, so installations can share one Redis.</summary>
    public string ChannelPrefix { get; set; } = "netlab";

    /// <summary>The client's options for <see cref="Connection"/>: a path (or <c>unix:</c> path) is a Unix socket.</summary>
    public ConfigurationOptions Client()
    {
        var text = Connection?.Trim() ?? throw new InvalidOperationException("Redis:Connection is not set");
        ConfigurationOptions options;
        if (text.StartsWith('/') || text.StartsWith("unix:", StringComparison.Ordinal))
        {
            options = new ConfigurationOptions();
            options.EndPoints.Add(new System.Net.Sockets.UnixDomainSocketEndPoint(text.StartsWith('/') ? text : text["unix:".Length..]));
        }
        else
        {
            options = ConfigurationOptions.Parse(text);
        }

        // Redis may start after the dashboard, or restart: keep trying instead of failing start-up.
        options.AbortOnConnectFail = false;
        options.ClientName = "netlab-dashboard";
        return options;
    }
}

/// <summary>
/// The replica's one connection to Redis (made at first use; it reconnects by itself) and its channels, named under
/// <see cref="RedisOptions.ChannelPrefix"/>.
/// </summary>
public sealed class RedisConnection(Microsoft.Extensions.Options.IOptions<RedisOptions> options, ILogger<RedisConnection> logger) : IAsyncDisposable
{
    private readonly Lazy<Task<ConnectionMultiplexer>> _connect = new(() => ConnectionMultiplexer.ConnectAsync(options.Value.Client()));

    public Task<ConnectionMultiplexer> GetAsync() => _connect.Value;

    public RedisChannel Channel(string name) => RedisChannel.Literal(options.Value.ChannelPrefix + ":" + name);

    /// <summary>
    /// Subscribes to <paramref name="channel"/> once Redis answers (it may start after the dashboard), retrying every 2 s;
    /// <paramref name="handler"/> gets the messages one at a time, in the order they were published. The client
    /// subscribes again by itself after a reconnection. False when <paramref name="ct"/> ended first.
    /// </summary>
    public async Task<bool> SubscribeAsync(RedisChannel channel, Action<RedisValue> handler, CancellationToken ct)
    {
        var redis = await GetAsync().ConfigureAwait(false);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var queue = await redis.GetSubscriber().SubscribeAsync(channel).ConfigureAwait(false);
                queue.OnMessage(m => handler(m.Message));
                return true;
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                logger.LogWarning("other replicas' messages on {Channel} are not heard yet (Redis: {Error}); trying again", channel, ex.Message);
                try
                {
                    // The failed attempt registered its message queue already: without this it would fill, unread, once Redis is back.
                    await redis.GetSubscriber().UnsubscribeAsync(channel).ConfigureAwait(false);
                }
                catch (Exception again) when (again is RedisException or TimeoutException)
                {
                    // Not connected: the local registration is gone all the same.
                }

                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(2), ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return false;
                }
            }
        }

        return false;
    }

    public async ValueTask DisposeAsync()
    {
        if (_connect.IsValueCreated)
        {
            await (await _connect.Value.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>
/// The live feed across replicas. What only one replica makes (run progress: the run queue's holder; a change
/// request's moves: the replica that moved it; an outside firewall change: the firewall history's holder) is
/// published on a Redis channel and shown by the other replicas' pages as if made there (<see cref="LiveEvent.Relayed"/>:
/// not relayed again, and not sent to hub clients, which the making replica reached through the backplane). Each
/// replica hears only the others' messages. A message that cannot be read is logged and dropped.
/// </summary>
public sealed class RedisLiveRelay(
    RedisConnection connection,
    LiveFeed local,
    Dashboard.App.Hosts.HostDirectory hosts,
    Dashboard.App.Runs.RunService runs,
    Dashboard.App.Firewall.FirewallHistoryRecorder history,
    Dashboard.App.Replicas.IDutyLease lease,
    ILogger<RedisLiveRelay> logger) : IHostedService, IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private ConnectionMultiplexer? _redis;
    private IDisposable? _subscription;
    private RedisChannel _channel;
    private long _sent;
    private long _received;
    private long _dropped;

    /// <summary>Messages sent, received from other replicas, and dropped unread, since start.</summary>
    public (long Sent, long Received, long Dropped) Counts => (Interlocked.Read(ref _sent), Interlocked.Read(ref _received), Interlocked.Read(ref _dropped));

    private readonly CancellationTokenSource _stopping = new();

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _channel = connection.Channel("live");
        _redis = await connection.GetAsync().ConfigureAwait(false);
        _subscription = local.Subscribe([LiveTopic.Runs(), LiveTopic.Changes(), LiveTopic.OutsideChanges], Send, relay: true);
        _ = connection.SubscribeAsync(_channel, Receive, _stopping.Token);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _subscription?.Dispose();
        _subscription = null;
        if (_redis is not null)
        {
            await _redis.GetSubscriber().UnsubscribeAsync(_channel).ConfigureAwait(false);
        }
    }

    public void Dispose() => _stopping.Dispose();

    private sealed record Envelope(string Origin, string Kind, string Host, JsonElement Body);

    private void Send(LiveEvent e)
    {
        if (e.Relayed || _redis is null)
        {
            return;
        }

        (string Kind, object Body)? what = e switch
        {
            RunUpdatedEvent r => ("run", r.Progress),
            ChangeRequestUpdatedEvent c => ("change", c.Change),
            FirewallChangedOutsideEvent o => ("outside", o.Alert),
            _ => null,
        };
        if (what is not { } w)
        {
            return;
        }

        var body = JsonSerializer.SerializeToElement(w.Body, w.Body.GetType(), Json);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(new Envelope(lease.Replica, w.Kind, e.Host, body), Json);
        try
        {
            _redis.GetSubscriber().Publish(_channel, bytes, CommandFlags.FireAndForget);
            Interlocked.Increment(ref _sent);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Redis is unreachable now: the other replicas miss this one (their pages reload from the database).
            Interlocked.Increment(ref _dropped);
            logger.LogDebug("a live event was not relayed: {Error}", ex.Message);
        }
    }

    private void Receive(RedisValue message)
    {
        try
        {
            var envelope = JsonSerializer.Deserialize<Envelope>((byte[])message!, Json);
            if (envelope is null || envelope.Origin == lease.Replica)
            {
                return;
            }

            Interlocked.Increment(ref _received);
            switch (envelope.Kind)
            {
                case "run" when envelope.Body.Deserialize<RunProgress>(Json) is { } p:
                    runs.ObserveRelayed(p);
                    local.PublishRelayed(new RunUpdatedEvent(local.Host, p));
                    break;
                case "change" when envelope.Body.Deserialize<ChangeDto>(Json) is { } c:
                    local.PublishRelayed(new ChangeRequestUpdatedEvent(local.Host, c));
                    break;
                case "outside" when envelope.Body.Deserialize<OutsideChangeAlert>(Json) is { } a:
                    // The host's feed here: the local one, or an agent host's that this replica also follows.
                    var feed = envelope.Host == local.Host ? local : hosts.Remote(envelope.Host)?.Feed;
                    history.Keep(a);
                    feed?.PublishRelayed(new FirewallChangedOutsideEvent(feed.Host, a));
                    break;
                default:
                    Interlocked.Increment(ref _dropped);
                    break;
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Interlocked.Increment(ref _dropped);
            logger.LogWarning("a live message from another replica could not be read: {Error}", ex.Message);
        }
    }
}
