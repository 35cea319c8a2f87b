using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Agents;
using Dashboard.Host.Collector;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Dashboard.Agent;

/// <summary>
/// The collector's sink in an agent, and its connection to the dashboard. Keeps the host's latest state (status,
/// topology, the last ruleset text and every counter that moved since) so that a snapshot can be sent at any time, and
/// queues deltas in order; connects out with backoff, says hello, sends a snapshot, then the deltas numbered from it.
/// A queue that overflows, or a dashboard that asks, gets a new snapshot instead of the lost deltas.
/// </summary>
public sealed class AgentConnection(IOptions<AgentOptions> options, ILogger<AgentConnection> logger, ContainerProbe? probe = null, AgentSteps? steps = null, AgentSessions? sessions = null) : BackgroundService, ICollectorSink
{
    private readonly AgentOptions _options = options.Value;
    private readonly object _gate = new();
    private readonly Channel<Func<long, (string Method, object Message)>> _queue = Channel.CreateUnbounded<Func<long, (string, object)>>(new() { SingleReader = true });
    private readonly Dictionary<RuleId, RuleCounterChange> _moved = new();
    private readonly Dictionary<(TableFamily, string, string), PolicyCounterChange> _policiesMoved = new();
    private CollectorStatus? _status;
    private HostTopology? _topology;
    private AgentFirewall? _firewall;
    private Dictionary<RuleId, int> _index = [];
    private DateTimeOffset _countersReadAt;
    private int _queued;
    private volatile bool _resync = true;
    private volatile bool _connected;
    private int _watchers;

    /// <summary>Set by the dashboard (<see cref="AgentProtocol.WatchersChanged"/>): while above zero the collector reads faster.</summary>
    public int CounterWatchers => Volatile.Read(ref _watchers);

    /// <summary>The host name the dashboard accepted this agent as (null until the first welcome).</summary>
    public string? AcceptedAs { get; private set; }

    public void TopologyChanged(HostTopology topology)
    {
        lock (_gate)
        {
            _topology = topology;
            Enqueue(seq => (nameof(AgentHubMethods.Topology), new AgentTopology(seq, topology)));
        }
    }

    public void FirewallChanged(Ruleset ruleset, DateTimeOffset readAt)
    {
        // Only the overload with the read's text is of use here: the dashboard parses the text itself.
    }

    public void FirewallChanged(Ruleset ruleset, FirewallSnapshot snapshot)
    {
        var firewall = AgentFirewall.From(ruleset, snapshot);
        lock (_gate)
        {
            _firewall = firewall;
            _index = AgentCounters.IndexOf(ruleset);
            _moved.Clear();
            _policiesMoved.Clear();
            Enqueue(seq => (nameof(AgentHubMethods.Firewall), new AgentFirewallChange(seq, firewall)));
        }
    }

    public void CountersChanged(CountersUpdate update)
    {
        lock (_gate)
        {
            foreach (var r in update.Rules)
            {
                _moved[r.Id] = r;
            }

            foreach (var p in update.Policies)
            {
                _policiesMoved[(p.Family, p.Table, p.Chain)] = p;
            }

            _countersReadAt = update.ReadAt;
            var index = _index;
            if (update.Rules.Any(r => !index.ContainsKey(r.Id)))
            {
                // A rule the last text did not hold (a read raced a change): a snapshot carries both.
                _resync = true;
                Enqueue(_ => ("", "")); // wakes the sender
                return;
            }

            Enqueue(seq => (nameof(AgentHubMethods.Counters), AgentCounters.Of(seq, update.ReadAt, index, update.Rules, update.Policies)!));
        }
    }

    public void StatusChanged(CollectorStatus status)
    {
        lock (_gate)
        {
            _status = status;
            Enqueue(seq => (nameof(AgentHubMethods.Status), new AgentStatus(seq, status)));
        }
    }

    /// <summary>Queues a delta; called under the state lock, so a snapshot taken under it holds exactly the deltas drained before it.</summary>
    private void Enqueue(Func<long, (string, object)> message)
    {
        if (!_connected)
        {
            // Nobody to send to: the snapshot sent on the next connection holds the latest state.
            _resync = true;
            return;
        }

        if (Interlocked.Increment(ref _queued) > _options.QueueLimit)
        {
            // Nobody takes them (no connection, or a slow one): a snapshot at the next send says it all.
            Interlocked.Decrement(ref _queued);
            _resync = true;
            return;
        }

        _queue.Writer.TryWrite(message);
    }

    /// <summary>
    /// Everything known now, numbered <paramref name="sequence"/>, with the counters that moved since the ruleset text;
    /// the deltas queued until now are dropped in the same lock (the snapshot holds them).
    /// </summary>
    private (AgentSnapshot Snapshot, AgentCounters? Counters) TakeSnapshot(long sequence)
    {
        lock (_gate)
        {
            while (_queue.Reader.TryRead(out _))
            {
                Interlocked.Decrement(ref _queued);
            }

            var status = _status ?? CollectorStatus.Starting("agent", 0);
            var counters = _moved.Count + _policiesMoved.Count > 0
                ? AgentCounters.Of(sequence + 1, _countersReadAt, _index, [.. _moved.Values.Where(r => _index.ContainsKey(r.Id))], [.. _policiesMoved.Values])
                : null;
            return (new AgentSnapshot(sequence, status, _topology, _firewall), counters);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var token = _options.TokenFile is { Length: > 0 } file ? (await File.ReadAllTextAsync(file, stoppingToken).ConfigureAwait(false)).Trim() : _options.Token;
        if (string.IsNullOrWhiteSpace(_options.Server) || string.IsNullOrWhiteSpace(token))
        {
            throw new InvalidOperationException("the agent needs Agent:Server (the dashboard's address) and Agent:TokenFile or Agent:Token (the host's agent token): scripts/agent.sh --server URL --token-file FILE");
        }

        var backoff = _options.MinBackoff;
        while (!stoppingToken.IsCancellationRequested)
        {
            var connected = false;
            try
            {
                await using var connection = Build(token);
                var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
                connection.Closed += e =>
                {
                    closed.TrySetResult(e);
                    return Task.CompletedTask;
                };
                connection.On<string>(AgentProtocol.SnapshotRequested, why =>
                {
                    logger.LogInformation("the dashboard asks for a snapshot: {Why}", why);
                    _resync = true;
                    lock (_gate)
                    {
                        Enqueue(_ => ("", "")); // wakes the sender
                    }
                });
                connection.On<int>(AgentProtocol.WatchersChanged, n => Volatile.Write(ref _watchers, Math.Max(0, n)));
                connection.On<AgentProbeRequest, AgentProbeReply>(AgentProtocol.Probe, ProbeAsync);
                connection.On<AgentStep, AgentStepReply>(AgentProtocol.Step, c => steps is null ? Task.FromResult(new AgentStepReply(Refused: "this agent carries out no runs or changes")) : steps.HandleAsync(c));
                connection.On<AgentSessionCommand, AgentSessionReply>(AgentProtocol.Session, c => sessions is null ? Task.FromResult(new AgentSessionReply(Refused: "this agent runs no captures or traces")) : sessions.HandleAsync(c));
                await connection.StartAsync(stoppingToken).ConfigureAwait(false);
                var welcome = await connection.InvokeAsync<AgentWelcome>(nameof(AgentHubMethods.Hello),
                    new AgentHello(AgentProtocol.Version, AgentProtocol.BuildVersion, string.IsNullOrWhiteSpace(_options.Name) ? null : _options.Name), stoppingToken).ConfigureAwait(false);
                if (welcome.Accepted)
                {
                    AcceptedAs = welcome.Host;
                    connected = true;
                    _connected = true;
                    backoff = _options.MinBackoff;
                    logger.LogInformation("connected to {Server} as host {Host} (dashboard {Version})", _options.Server, welcome.Host, welcome.DashboardVersion);
                    sessions?.Connected((method, message) => connection.SendAsync(method, message, stoppingToken));
                    await SendAsync(connection, closed.Task, stoppingToken).ConfigureAwait(false);
                }
                else
                {
                    // Refused (another protocol, another host's name, a revoked token): wait the longest before asking again.
                    logger.LogError("the dashboard refused this agent as host {Host}: {Reason}", welcome.Host, welcome.Reason);
                    backoff = _options.MaxBackoff;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogWarning("connection to {Server} failed or ended: {Error}", _options.Server, ex.Message);
            }

            _connected = false;
            Volatile.Write(ref _watchers, 0);
            _resync = true;
            if (sessions is not null)
            {
                // Captures and traces people started from the dashboard: nobody can see or stop them now.
                await sessions.LinkLostAsync().ConfigureAwait(false);
            }

            if (connected)
            {
                logger.LogWarning("disconnected from {Server}; reconnecting", _options.Server);
            }

            var wait = backoff * (1 + (Random.Shared.NextDouble() * 0.2));
            backoff = TimeSpan.FromTicks(Math.Min(_options.MaxBackoff.Ticks, backoff.Ticks * 2));
            try
            {
                await Task.Delay(wait, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// A ping the dashboard asks for, run only from a lab container of this host (labelled by a test or a run, as the
    /// dashboard's own verification requires) to a lab address, bounded by <see cref="ContainerProbe"/>'s limits.
    /// </summary>
    internal async Task<AgentProbeReply> ProbeAsync(AgentProbeRequest request)
    {
        if (probe is null)
        {
            return new AgentProbeReply(0, 0, "", "this agent runs no probes");
        }

        HostTopology? topology;
        lock (_gate)
        {
            topology = _topology;
        }

        var container = topology?.Containers.FirstOrDefault(c => c.Name == request.Container);
        if (container is null)
        {
            return new AgentProbeReply(0, 0, "", $"no container named '{Cut(request.Container)}' on this host");
        }

        if (!container.Labels.ContainsKey(LabProvisioner.TestLabel) && !container.Labels.ContainsKey(LabProvisioner.RunLabel))
        {
            return new AgentProbeReply(0, 0, "", $"'{container.Name}' is not a lab container (labelled by a run or a test): it is not probed");
        }

        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20 + (Math.Clamp(request.Count, 1, ContainerProbe.MaxCount) * 5)));
        try
        {
            var r = await probe.PingAsync(container.Name, request.Address, request.Count, request.TimeoutSeconds, deadline.Token).ConfigureAwait(false);
            logger.LogInformation("probe: ping -c {Count} -W {Timeout} {Address} from {Container}: {Sent} sent, {Received} received", request.Count, request.TimeoutSeconds, request.Address, container.Name, r.Sent, r.Received);
            return new AgentProbeReply(r.Sent, r.Received, r.Output, null);
        }
        catch (ProbeRejectedException ex)
        {
            return new AgentProbeReply(0, 0, "", ex.Message);
        }
        catch (Exception ex) when (ex is Docker.DotNet.DockerApiException or OperationCanceledException or HttpRequestException or IOException)
        {
            return new AgentProbeReply(0, 0, "", "the probe failed: " + ex.Message);
        }
    }

    private static string Cut(string? s) => AgentMessageCheck.Cut(s);

    /// <summary>Sends a snapshot, then every queued delta in order, until the connection closes.</summary>
    private async Task SendAsync(HubConnection connection, Task<Exception?> closed, CancellationToken ct)
    {
        long sequence = 0;
        _resync = true;
        while (!ct.IsCancellationRequested && !closed.IsCompleted)
        {
            if (_resync)
            {
                _resync = false;
                var (snapshot, counters) = TakeSnapshot(sequence);
                await connection.InvokeAsync(nameof(AgentHubMethods.Snapshot), snapshot, ct).ConfigureAwait(false);
                sequence++;
                if (counters is not null)
                {
                    await connection.SendAsync(nameof(AgentHubMethods.Counters), counters, ct).ConfigureAwait(false);
                    sequence++;
                }
            }

            var read = _queue.Reader.WaitToReadAsync(ct).AsTask();
            if (await Task.WhenAny(read, closed).ConfigureAwait(false) == closed)
            {
                return;
            }

            while (!_resync && _queue.Reader.TryRead(out var make))
            {
                Interlocked.Decrement(ref _queued);
                var (method, message) = make(sequence);
                if (method.Length == 0)
                {
                    continue; // a wake-up for a requested snapshot
                }

                await connection.SendAsync(method, message, ct).ConfigureAwait(false);
                sequence++;
            }
        }
    }

    private HubConnection Build(string token)
    {
        var url = new Uri(new Uri(_options.Server!), AgentProtocol.HubPath);
        var builder = new HubConnectionBuilder()
            .WithUrl(url, o =>
            {
                o.AccessTokenProvider = () => Task.FromResult<string?>(token);
                if (_options.UnixSocket is { Length: > 0 } path)
                {
                    o.Transports = Microsoft.AspNetCore.Http.Connections.HttpTransportType.WebSockets;
                    o.SkipNegotiation = true;
                    o.HttpMessageHandlerFactory = _ => UnixHandler(path);
                    o.WebSocketFactory = async (context, ct) =>
                    {
                        var ws = new ClientWebSocket();
                        ws.Options.SetRequestHeader("Authorization", "Bearer " + token);
                        using var invoker = new HttpMessageInvoker(UnixHandler(path));
                        await ws.ConnectAsync(context.Uri, invoker, ct).ConfigureAwait(false);
                        return ws;
                    };
                }
            })
            .AddJsonProtocol(o => o.PayloadSerializerOptions.Converters.Add(new JsonStringEnumConverter()));
        return builder.Build();
    }

    private static SocketsHttpHandler UnixHandler(string path) => new()
    {
        ConnectCallback = async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };

    /// <summary>The hub's method names (the dashboard's <c>AgentHub</c>), kept in one place.</summary>
    private static class AgentHubMethods
    {
        public const string Hello = nameof(Hello);
        public const string Snapshot = nameof(Snapshot);
        public const string Topology = nameof(Topology);
        public const string Firewall = nameof(Firewall);
        public const string Counters = nameof(Counters);
        public const string Status = nameof(Status);
    }
}
