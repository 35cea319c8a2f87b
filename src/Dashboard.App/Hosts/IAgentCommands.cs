using Dashboard.Host.Agents;
using Dashboard.Host.Docker;

namespace Dashboard.App.Hosts;

/// <summary>A command for a host whose agent is not connected (or that no agent reports): it fails at once, saying so.</summary>
public sealed class HostUnavailableException(string message) : Exception(message);

/// <summary>
/// Commands the dashboard sends to a host's agent and waits for, each with a deadline (the web layer sends them over
/// the agent hub). A disconnected host, or one that goes away or does not answer in time, fails with
/// <see cref="HostUnavailableException"/>; a probe the agent refuses with <see cref="ProbeRejectedException"/>.
/// </summary>
public interface IAgentCommands
{
    Task<ProbeResult> PingAsync(string host, string container, string address, int count, int timeoutSeconds, CancellationToken ct = default);

    /// <summary>One step of a run on the host; the reply says whether the agent refused it, the host failed it, or what it made.</summary>
    Task<AgentStepReply> StepAsync(string host, AgentStep command, TimeSpan deadline, CancellationToken ct = default);

    /// <summary>A host-wide capture or trace command (start, stop, a piece of a pcap); the reply says whether the agent refused it or the host failed it.</summary>
    Task<AgentSessionReply> SessionAsync(string host, AgentSessionCommand command, TimeSpan deadline, CancellationToken ct = default);
}
