using Dashboard.App.Audit;
using Dashboard.App.Hosts;
using Dashboard.Host.Agents;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;

namespace Dashboard.Web.Hubs;

/// <summary>
/// Where host agents report (<c>/hubs/agent</c>, <see cref="AgentProtocol"/>): agent tokens only, never a person's
/// cookie or API token. The host is the one the token was issued for; an agent cannot name another. Every message is
/// checked (<see cref="AgentMessageCheck"/>) and rate-limited per host before <see cref="RemoteHost"/> applies it in
/// sequence; a refused call fails with a <see cref="HubException"/> whose message starts with a status and says why.
/// A connection that has not said hello within <see cref="HelloDeadline"/> is closed.
/// </summary>
[Authorize(AuthenticationSchemes = AgentTokenAuthenticationHandler.SchemeName)]
public sealed class AgentHub(HostDirectory directory, HostRegistry registry, AuditLog audit, RefusalThrottle throttle, IAgentCommands agents, ILogger<AgentHub> logger) : Hub
{
    public static readonly TimeSpan HelloDeadline = TimeSpan.FromSeconds(10);

    private const string Said = "hello";

    private string HostName => Context.User?.FindFirst(AgentTokenAuthenticationHandler.HostClaim)?.Value
        ?? throw new HubException("401: not an agent connection");

    private Actor Agent => new(null, "agent:" + HostName, false, Context.GetHttpContext()?.Connection.RemoteIpAddress?.ToString() ?? "unix socket");

    public override Task OnConnectedAsync()
    {
        _ = CloseUnlessHelloAsync(Context);
        return base.OnConnectedAsync();
    }

    public async Task<AgentWelcome> Hello(AgentHello hello)
    {
        if (hello is null || hello.AgentVersion is null)
        {
            throw new HubException("400: Hello needs ProtocolVersion and AgentVersion");
        }

        if (Context.Items.ContainsKey(Said))
        {
            throw new HubException("409: this connection said Hello already");
        }

        Context.Items[Said] = true;
        var host = HostName;
        var agentVersion = Cut(hello.AgentVersion);
        var refusal = hello.ProtocolVersion != AgentProtocol.Version
            ? $"the agent speaks protocol {hello.ProtocolVersion} and this dashboard {AgentProtocol.Version}: install agent {AgentProtocol.BuildVersion} on this host"
            : hello.Host is { Length: > 0 } claimed && claimed != host ? $"this token was issued for host '{host}', the agent says it is '{Cut(claimed)}'"
            : !await registry.IsLiveAsync(host, Context.ConnectionAborted) ? "the host's token was revoked"
            : null;
        if (refusal is null)
        {
            var context = Context;
            directory.Connect(host, context.ConnectionId, hello with { AgentVersion = agentVersion }, context.Abort);

            // A revocation between the check above and the connection's registration would find nothing to cut off.
            if (await registry.IsLiveAsync(host, Context.ConnectionAborted))
            {
                Context.Items[nameof(HostName)] = host;
                await registry.RecordConnectedAsync(host, agentVersion, null, Context.ConnectionAborted);
                await audit.WriteAsync(Agent, "agent.connected", $"host {host}", $"agent {agentVersion} (protocol {hello.ProtocolVersion}) connected for host '{host}'", host: host);
                return new AgentWelcome(true, null, host, AgentProtocol.Version, AgentProtocol.BuildVersion);
            }

            directory.Disconnect(host, context.ConnectionId);
            refusal = "the host's token was revoked";
        }

        directory.Refuse(host, hello with { AgentVersion = agentVersion }, refusal);
        await throttle.RefusedAsync("host " + host, Agent, "agent.refused", $"host {host}", refusal, host);
        _ = CloseSoonAsync(Context);
        return new AgentWelcome(false, refusal, host, AgentProtocol.Version, AgentProtocol.BuildVersion);
    }

    public async Task Snapshot(AgentSnapshot snapshot)
    {
        var h = Current(AgentMessageCheck.Problem(snapshot), 20);
        h.Apply(Context.ConnectionId, snapshot);
        if (snapshot.Topology?.Engine.EngineVersion is { } engine)
        {
            await registry.RecordConnectedAsync(h.Name, h.AgentVersion ?? "", engine, Context.ConnectionAborted);
        }
    }

    public Task Topology(AgentTopology message) => AskIfNeededAsync(Current(AgentMessageCheck.Problem(message), 5).Apply(Context.ConnectionId, message));

    public Task Firewall(AgentFirewallChange message) => AskIfNeededAsync(Current(AgentMessageCheck.Problem(message), 20).Apply(Context.ConnectionId, message));

    public Task Counters(AgentCounters message) => AskIfNeededAsync(Current(AgentMessageCheck.Problem(message), 1).Apply(Context.ConnectionId, message));

    public Task Status(AgentStatus message) => AskIfNeededAsync(Current(AgentMessageCheck.Problem(message), 1).Apply(Context.ConnectionId, message));

    /// <summary>
    /// A batch of a host-wide capture started from this dashboard: decoded here and handed to its viewers (each capture
    /// at about the pace its host sends when all is well; see <see cref="RemoteCaptureSession.Admit"/>).
    /// </summary>
    public void CaptureBatch(AgentCaptureBatch batch)
    {
        var h = Current(AgentMessageCheck.Problem(batch), 0.25);
        Dropped(h, batch.Id, AgentSessionAction.StopCapture, h.Apply(Context.ConnectionId, batch));
    }

    /// <summary>A host-wide trace's packets and state; a large update costs more of the host's rate.</summary>
    public void TraceUpdate(AgentTraceUpdate update)
    {
        var h = Current(AgentMessageCheck.Problem(update), 0.25 + (update.Packets.Sum(p => p.Steps.Count) / 200.0));
        Dropped(h, update.Id, AgentSessionAction.StopTrace, h.Apply(Context.ConnectionId, update));
    }

    /// <summary>
    /// A message for a session this dashboard does not run (any more): the agent is asked to stop it (once per session
    /// and 30 s), since nobody here can see or stop it; the drop is logged at most every 10 s per host.
    /// </summary>
    private void Dropped(RemoteHost h, string id, AgentSessionAction stop, string? why)
    {
        if (string.IsNullOrEmpty(why))
        {
            return;
        }

        if (h.ShouldLogDrop())
        {
            logger.LogInformation("agent of {Host}: {Why}; the message is dropped (and later ones for 10 s without a line here)", h.Name, why);
        }

        if (h.AskToStop(id))
        {
            _ = agents.SessionAsync(h.Name, new AgentSessionCommand(stop, id), TimeSpan.FromSeconds(30), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    public override async Task OnDisconnectedAsync(Exception? exception)
    {
        if (Context.Items.TryGetValue(nameof(HostName), out var o) && o is string host && directory.Disconnect(host, Context.ConnectionId))
        {
            await audit.WriteAsync(Agent, "agent.disconnected", $"host {host}", "agent disconnected" + (exception is null ? "" : ": " + exception.Message), host: host);
        }

        await base.OnDisconnectedAsync(exception);
    }

    /// <summary>This connection's host, when the message is acceptable, it said hello, is still the host's current connection and within its rate.</summary>
    private RemoteHost Current(string? problem, double cost)
    {
        if (!Context.Items.ContainsKey(nameof(HostName)) || directory.Remote(HostName) is not { } h)
        {
            throw new HubException("400: say Hello first");
        }

        if (problem is not null)
        {
            throw new HubException("400: " + problem);
        }

        if (!h.IsCurrent(Context.ConnectionId))
        {
            throw new HubException("409: a newer connection of this host's agent replaced this one");
        }

        return h.Admit(cost) ? h : throw new HubException("429: too many messages from this host: at most 100 a second (a snapshot or a ruleset counts 20)");
    }

    private async Task AskIfNeededAsync(string? why)
    {
        if (!string.IsNullOrEmpty(why))
        {
            logger.LogInformation("agent of {Host}: {Why}; asking for a snapshot", HostName, why);
            await Clients.Caller.SendAsync(AgentProtocol.SnapshotRequested, why);
        }
    }

    /// <summary>Lets the refusal reach the agent before the connection ends.</summary>
    private static async Task CloseSoonAsync(HubCallerContext context)
    {
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        context.Abort();
    }

    private static async Task CloseUnlessHelloAsync(HubCallerContext context)
    {
        try
        {
            await Task.Delay(HelloDeadline, context.ConnectionAborted);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        if (!context.Items.ContainsKey(Said))
        {
            context.Abort();
        }
    }

    private static string Cut(string? s) => s is null ? "" : s.Length <= 40 ? s : s[..40];
}
