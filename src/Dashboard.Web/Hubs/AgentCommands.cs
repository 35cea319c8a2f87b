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
        var deadline = TimeSpan.FromSeconds(20 + (Math.Clamp(count, 1, ContainerProbe.MaxCount) * Math.Clamp(timeoutSeconds, 1, 5)));
        var reply = await InvokeAsync<AgentProbeReply>(host, AgentProtocol.Probe, new AgentProbeRequest(container, address, count, timeoutSeconds), "the probe", deadline, ct);
        return reply.Refused is { } why
            ? throw new ProbeRejectedException($"host '{host}' refused the probe: {why}")
            : new ProbeResult(container, address, reply.Sent, reply.Received, reply.Output);
    }

    public Task<AgentStepReply> StepAsync(string host, AgentStep command, TimeSpan deadline, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        return InvokeAsync<AgentStepReply>(host, AgentProtocol.Step, command, $"the run step {command.Action}", deadline, ct);
    }

    public Task<AgentSessionReply> SessionAsync(string host, AgentSessionCommand command, TimeSpan deadline, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        return InvokeAsync<AgentSessionReply>(host, AgentProtocol.Session, command, $"the command {command.Action}", deadline, ct);
    }

    /// <summary>A client result from the host's current connection; a host gone, going away or late is <see cref="HostUnavailableException"/>.</summary>
    private async Task<T> InvokeAsync<T>(string host, string method, object argument, string what, TimeSpan timeout, CancellationToken ct)
    {
        var connection = Connection(host);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            return await hub.Clients.Client(connection).InvokeAsync<T>(method, argument, deadline.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new HostUnavailableException($"host '{host}' did not answer {what} within {timeout.TotalSeconds:0} s");
        }
        catch (Exception ex) when (ex is IOException or HubException)
        {
            throw new HostUnavailableException($"host '{host}' did not answer {what}: {ex.Message}");
        }
    }

    private string Connection(string host) =>
        directory.Remote(host) is { ConnectionId: { } id, State: AgentState.Connected } ? id
        : throw new HostUnavailableException(directory.Remote(host) is null
            ? $"no agent reports host '{host}'"
            : $"host '{host}' is disconnected: its agent must connect again before it can be sent commands");
}
