using Dashboard.Host.Docker;

namespace Dashboard.App.Hosts;

/// <summary>A command for a host whose agent is not connected (or that no agent reports): it fails at once, saying so.</summary>
public sealed class HostUnavailableException(string message) : Exception(message);

/// <summary>
/// Commands the dashboard sends to a host's agent and waits for, each with a deadline (the web layer sends them over
/// the agent hub). A disconnected host fails with <see cref="HostUnavailableException"/>; a probe the agent refuses
/// with <see cref="ProbeRejectedException"/>.
/// </summary>
public interface IAgentCommands
{
    Task<ProbeResult> PingAsync(string host, string container, string address, int count, int timeoutSeconds, CancellationToken ct = default);
}
