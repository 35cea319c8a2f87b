using System.Collections.Concurrent;
using Dashboard.App.Live;
using Dashboard.Host.Agents;

namespace Dashboard.App.Hosts;

/// <summary>
/// Every host this dashboard shows: the local one (the embedded collector's feed) and those whose agents have connected
/// since it started (their last state kept when they disconnect). Pages, the API and the hubs find a host's feed here.
/// </summary>
public sealed class HostDirectory
{
    private readonly ConcurrentDictionary<string, RemoteHost> _remote = new(StringComparer.Ordinal);

    public HostDirectory(LiveFeed local, HostRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        Local = local;
        registry.Revoked += name => Remote(name)?.Abort();
    }

    public LiveFeed Local { get; }

    /// <summary>Raised once per remote host, when it is first seen (the hub forwarder subscribes to its feed).</summary>
    public event Action<RemoteHost>? Added;

    /// <summary>Raised each time an agent's hello is accepted (reconciliation of the host's runs follows it).</summary>
    public event Action<RemoteHost>? Connected;

    /// <summary>Remote hosts seen since start, by name.</summary>
    public IReadOnlyList<RemoteHost> Remotes => [.. _remote.Values.OrderBy(h => h.Name, StringComparer.Ordinal)];

    public RemoteHost? Remote(string host) => _remote.TryGetValue(host, out var h) ? h : null;

    /// <summary>What to say of a host name nobody reports (the name cut to 64 characters).</summary>
    public string NoSuchHost(string host) =>
        $"no host '{(host.Length > 64 ? host[..64] + "…" : host)}': the dashboard's own is '{Local.Host}', and no agent reports that name";

    /// <summary>The feed of a host by name (the local host's too), or null when no such host has reported.</summary>
    public LiveFeed? FeedOf(string? host) =>
        host is null || host == Local.Host ? Local : Remote(host)?.Feed;

    /// <summary>An agent of <paramref name="host"/> said hello on <paramref name="connectionId"/>; an older connection of the host is ended.</summary>
    public RemoteHost Connect(string host, string connectionId, AgentHello hello, Action abort)
    {
        var h = GetOrAdd(host);
        h.Attach(connectionId, hello, abort);
        Connected?.Invoke(h);
        return h;
    }

    /// <summary>An agent was refused at hello (another protocol version); the host is listed with the reason.</summary>
    public void Refuse(string host, AgentHello hello, string reason) => GetOrAdd(host).Refuse(hello, reason);

    private RemoteHost GetOrAdd(string host)
    {
        if (_remote.TryGetValue(host, out var existing))
        {
            return existing;
        }

        var made = new RemoteHost(host);
        var h = _remote.GetOrAdd(host, made);
        if (ReferenceEquals(h, made))
        {
            Added?.Invoke(h);
        }

        return h;
    }

    /// <summary>A connection ended; true when it was the host's current one (its state is now stale).</summary>
    public bool Disconnect(string host, string connectionId) => Remote(host)?.Detach(connectionId) == true;
}
