using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Json.Serialization;
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
/// The collector's sink in an agent, and its connection to the dashboard. The host's state and its numbered messages
/// are a <see cref="CollectorStream"/>'s (a snapshot at any time, deltas in order, a new snapshot when the queue
/// overflows or the dashboard asks); this connects out with backoff, says hello, and lets the stream send on the connection.
/// </summary>
public sealed class AgentConnection(IOptions<AgentOptions> options, ILogger<AgentConnection> logger, ContainerProbe? probe = null, AgentSteps? steps = null, AgentSessions? sessions = null) : BackgroundService, ICollectorSink
{
    private readonly AgentOptions _options = options.Value;
    private readonly CollectorStream _stream = new(options.Value.QueueLimit);

    /// <summary>Set by the dashboard (<see cref="AgentProtocol.WatchersChanged"/>): while above zero the collector reads faster.</summary>
    public int CounterWatchers => _stream.CounterWatchers;

    /// <summary>The host name the dashboard accepted this agent as (null until the first welcome).</summary>
    public string? AcceptedAs { get; private set; }

    public void TopologyChanged(HostTopology topology) => _stream.TopologyChanged(topology);

    public void FirewallChanged(Ruleset ruleset, DateTimeOffset readAt) => _stream.FirewallChanged(ruleset, readAt);

    public void FirewallChanged(Ruleset ruleset, FirewallSnapshot snapshot) => _stream.FirewallChanged(ruleset, snapshot);

    public void CountersChanged(CountersUpdate update) => _stream.CountersChanged(update);

    public void StatusChanged(CollectorStatus status) => _stream.StatusChanged(status);

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
                    _stream.RequestSnapshot();
                });
                connection.On<int>(AgentProtocol.WatchersChanged, n => _stream.CounterWatchers = n);
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
                    backoff = _options.MinBackoff;
                    logger.LogInformation("connected to {Server} as host {Host} (dashboard {Version})", _options.Server, welcome.Host, welcome.DashboardVersion);
                    sessions?.Connected((method, message) => connection.SendAsync(method, message, stoppingToken));
                    await _stream.SendAsync((method, message, wait, ct) => wait ? connection.InvokeAsync(method, message, ct) : connection.SendAsync(method, message, ct), closed.Task, stoppingToken).ConfigureAwait(false);
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

            // Nobody watches from a dashboard this agent is not connected to (a last WatchersChanged may have come after the stream ended).
            _stream.CounterWatchers = 0;
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

        var container = _stream.Topology?.Containers.FirstOrDefault(c => c.Name == request.Container);
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
}
