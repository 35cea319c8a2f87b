using Dashboard.App.Hosts;

namespace Dashboard.Web.Components;

/// <summary>
/// The host one browser session looks at (the host picker in the app bar): this dashboard's own, or one an agent
/// reports. Pages that follow it (Overview, Topology, Networks, Containers, Firewall, Isolation, Captures) read that host's feed; the
/// layout re-creates the page when it changes. <c>?host=NAME</c> on any address picks it too (links can be shared).
/// </summary>
public sealed class HostSession(HostDirectory directory)
{
    /// <summary>The page addresses whose pages follow the picked host (the others work on this dashboard's own host).</summary>
    public static readonly IReadOnlySet<string> FollowingPages = new HashSet<string>(StringComparer.Ordinal) { "", "topology", "networks", "containers", "firewall", "isolation", "captures" };

    public event Action? Changed;

    /// <summary>The picked agent host's name; null for this dashboard's own host.</summary>
    public string? Host { get; private set; }

    public bool IsRemote => Host is not null;

    /// <summary>Outside-change alerts this session dismissed (the banner shows the others).</summary>
    public ISet<Guid> DismissedAlerts { get; } = new HashSet<Guid>();

    /// <summary>Picks a host by name; an unknown name, or the local host's, picks the local host.</summary>
    public void Select(string? host)
    {
        var next = host is null || host == directory.Local.Host || directory.Remote(host) is null ? null : host;
        if (next != Host)
        {
            Host = next;
            Changed?.Invoke();
        }
    }

    public static bool Follows(string relativePath)
    {
        var path = relativePath.Split('?', '#')[0].TrimEnd('/');
        var first = path.Split('/')[0];
        return FollowingPages.Contains(first);
    }
}
