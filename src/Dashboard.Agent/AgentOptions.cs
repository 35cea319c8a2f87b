namespace Dashboard.Agent;

/// <summary>Configuration section "Agent": where the dashboard is and how to prove which host this is.</summary>
public sealed class AgentOptions
{
    public const string Section = "Agent";

    /// <summary>The dashboard's address (<c>https://dashboard.example:5001</c>); the agent connects to its <c>/hubs/agent</c>.</summary>
    public string? Server { get; set; }

    /// <summary>The agent token a site administrator got when registering this host (<c>nla_…</c>).</summary>
    public string? Token { get; set; }

    /// <summary>A file holding the token (mode 0600), read at start; preferred to <see cref="Token"/>, which an environment or a command line shows.</summary>
    public string? TokenFile { get; set; }

    /// <summary>
    /// Reach the dashboard through this Unix socket instead of the network (the dashboard listens on it with
    /// <c>--urls http://unix:/path</c>): for an engine in a network namespace of its own on the dashboard's machine.
    /// </summary>
    public string? UnixSocket { get; set; }

    /// <summary>The host name this agent expects to be (checked against the token's; empty: whatever the token says).</summary>
    public string? Name { get; set; }

    /// <summary>Reconnection backoff: first wait, doubled up to the most (with up to 20 % jitter).</summary>
    public TimeSpan MinBackoff { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Messages waiting for a slow or absent connection; beyond this the agent resends a snapshot instead.</summary>
    public int QueueLimit { get; set; } = 1024;
}
