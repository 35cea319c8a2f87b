using Dashboard.App.Audit;
using Dashboard.App.Hosts;
using Dashboard.Host.Agents;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;

namespace Dashboard.Web.Hubs;

/// <summary>
/// Where host agents report (<c>/hubs/agent</c>, <see cref="AgentProtocol"/>): agent tokens only, never a person's
/// cookie or API token. The host is the one the token was issued for; an agent cannot name another. A thin adapter:
/// <see cref="RemoteHost"/> keeps the sequence and applies what arrives.
/// </summary>
[Authorize(AuthenticationSchemes = AgentTokenAuthenticationHandler.SchemeName)]
public sealed class AgentHub(HostDirectory directory, HostRegistry registry, AuditLog audit, ILogger<AgentHub> logger) : Hub
{
    private string HostName => Context.User?.FindFirst(AgentTokenAuthenticationHandler.HostClaim)?.Value
        ?? throw new HubException("401: not an agent connection");

    private Actor Agent => new(null, "agent:" + HostName, false, Context.GetHttpContext()?.Connection.RemoteIpAddress?.ToString() ?? "unix socket");

    public async Task<AgentWelcome> Hello(AgentHello hello)
    {
        ArgumentNullException.ThrowIfNull(hello);
        var host = HostName;
        var agentVersion = Cut(hello.AgentVersion);
        string? refusal = null;
        if (hello.ProtocolVersion != AgentProtocol.Version)
        {
            refusal = $"the agent speaks protocol {hello.ProtocolVersion} and this dashboard {AgentProtocol.Version}: install agent {AgentProtocol.BuildVersion} on this host";
        }
        else if (hello.Host is { Length: > 0 } claimed && claimed != host)
        {
            refusal = $"this token was issued for host '{host}', the agent says it is '{Cut(claimed)}'";
        }
        else if (!await registry.IsLiveAsync(host, Context.ConnectionAborted))
        {
            refusal = "the host's token was revoked";
        }

        if (refusal is not null)
        {
            directory.Refuse(host, hello with { AgentVersion = agentVersion }, refusal);
            await audit.WriteAsync(Agent, "agent.refused", $"host {host}", refusal, succeeded: false);
            _ = AbortSoonAsync(Context);
            return new AgentWelcome(false, refusal, host, AgentProtocol.Version, AgentProtocol.BuildVersion);
        }

        var context = Context;
        directory.Connect(host, context.ConnectionId, hello with { AgentVersion = agentVersion }, context.Abort);
        Context.Items[nameof(HostName)] = host;
        await registry.RecordConnectedAsync(host, agentVersion, null, Context.ConnectionAborted);
        await audit.WriteAsync(Agent, "agent.connected", $"host {host}", $"agent {agentVersion} (protocol {hello.ProtocolVersion}) connected for host '{host}'");
        return new AgentWelcome(true, null, host, AgentProtocol.Version, AgentProtocol.BuildVersion);
    }

    public async Task Snapshot(AgentSnapshot snapshot)
    {
        var h = Current();
        h.Apply(snapshot);
        if (snapshot.Topology?.Engine.EngineVersion is { } engine)
        {
            await registry.RecordConnectedAsync(h.Name, h.AgentVersion ?? "", engine, Context.ConnectionAborted);
        }
    }

    public Task Topology(AgentTopology message) => AskIfNeededAsync(Current().Apply(message));

    public Task Firewall(AgentFirewallChange message) => AskIfNeededAsync(Current().Apply(message));

    public Task Counters(AgentCounters message) => AskIfNeededAsync(Current().Apply(message));

    public Task Status(AgentStatus message) => AskIfNeededAsync(Current().Apply(message));

    public override async Task OnDisconnectedAsync(Exception? exception)
    {
        if (Context.Items.TryGetValue(nameof(HostName), out var o) && o is string host && directory.Disconnect(host, Context.ConnectionId))
        {
            await audit.WriteAsync(Agent, "agent.disconnected", $"host {host}", "agent disconnected" + (exception is null ? "" : ": " + exception.Message));
        }

        await base.OnDisconnectedAsync(exception);
    }

    /// <summary>This connection's host, when it said hello and is still the host's current connection.</summary>
    private RemoteHost Current()
    {
        if (!Context.Items.ContainsKey(nameof(HostName)) || directory.Remote(HostName) is not { } h)
        {
            throw new HubException("400: say Hello first");
        }

        if (!h.IsCurrent(Context.ConnectionId))
        {
            throw new HubException("409: a newer connection of this host's agent replaced this one");
        }

        return h;
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
    private static async Task AbortSoonAsync(HubCallerContext context)
    {
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        context.Abort();
    }

    private static string Cut(string? s) => s is null ? "" : s.Length <= 40 ? s : s[..40];
}
