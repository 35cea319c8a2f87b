using Dashboard.App.Hosts;
using Dashboard.Host.Agents;
using Dashboard.Host.Docker;
using Microsoft.AspNetCore.SignalR;

namespace Dashboard.Web.Hubs;

/// <summary>Commands to agents as SignalR client results on the host's current connection, each with a deadline.</summary>
public sealed class AgentCommands(HostDirectory directory, IHubContext<AgentHub> hub) : IAgentCommands
{
    public async Task<ProbeResult> PingAsync(string host, string container, string address, int count, int timeoutSeconds, CancellationToken ct = default)
    {
        var connection = Connection(host);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(20 + (Math.Clamp(count, 1, ContainerProbe.MaxCount) * Math.Clamp(timeoutSeconds, 1, 5))));
        AgentProbeReply reply;
        try
        {
            reply = await hub.Clients.Client(connection).InvokeAsync<AgentProbeReply>(AgentProtocol.Probe, new AgentProbeRequest(container, address, count, timeoutSeconds), deadline.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new HostUnavailableException($"host '{host}' did not answer the probe in time");
        }
        catch (IOException ex)
        {
            throw new HostUnavailableException($"host '{host}': {ex.Message}");
        }

        return reply.Refused is { } why
            ? throw new ProbeRejectedException($"host '{host}' refused the probe: {why}")
            : new ProbeResult(container, address, reply.Sent, reply.Received, reply.Output);
    }

    private string Connection(string host) =>
        directory.Remote(host) is { ConnectionId: { } id, State: AgentState.Connected } ? id
        : throw new HostUnavailableException(directory.Remote(host) is null
            ? $"no agent reports host '{host}'"
            : $"host '{host}' is disconnected: its agent must connect again before it can be sent commands");
}
