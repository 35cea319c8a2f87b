using Dashboard.App.Live;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;

namespace Dashboard.App.Hosts;

/// <summary>
/// One line of the Hosts page and of <c>GET /api/hosts</c>: what the host is (engine, firewall backend, Docker layout),
/// how its agent stands and how fresh its data is. Every figure comes from the host's feed or the registry.
/// </summary>
public sealed record HostOverview(
    string Name,
    bool Local,
    AgentState? Agent,
    bool Stale,
    string? AgentVersion,
    int? ProtocolVersion,
    string? EngineVersion,
    FirewallBackend Backend,
    DockerLayoutKind? Layout,
    string? LayoutDescription,
    int Rules,
    int Containers,
    DateTimeOffset? ConnectedSince,
    DateTimeOffset? DisconnectedAt,
    DateTimeOffset? LastReadAt,
    double ReadRateHz,
    double? LagMilliseconds,
    long Messages,
    long Gaps,
    string? Problem,
    HostRecord? Registration,
    int Outages = 0,
    DataGap? LastOutage = null)
{
    public static HostOverview OfLocal(LiveFeed feed) => new(
        feed.Host, true, null, false, AgentVersion: null, ProtocolVersion: null, feed.Topology?.Engine.EngineVersion, feed.Status.Backend,
        feed.Status.Layout?.Kind, feed.Status.Layout?.Description, feed.Status.RuleCount, feed.Topology?.Containers.Count ?? 0,
        ConnectedSince: null, DisconnectedAt: null, feed.Status.LastReadAt, feed.Status.AchievedRateHz, LagMilliseconds: null, Messages: 0, Gaps: 0,
        feed.Status.EngineError ?? feed.Status.FirewallError, Registration: null);

    public static HostOverview Of(HostRecord record, RemoteHost? h) => h is null
        ? new(record.Name, false, record.LastConnectedAt is null ? AgentState.NeverConnected : AgentState.Disconnected, true, record.LastAgentVersion, null, record.LastEngineVersion, FirewallBackend.Unknown, null, null,
            0, 0, null, null, null, 0, null, 0, 0, record.RevokedAt is null ? null : "token revoked", record)
        : new(record.Name, false, h.State, h.IsStale, h.AgentVersion, h.ProtocolVersion, h.Feed.Topology?.Engine.EngineVersion ?? record.LastEngineVersion,
            h.Feed.Status.Backend, h.Feed.Status.Layout?.Kind, h.Feed.Status.Layout?.Description, h.Feed.Status.RuleCount, h.Feed.Topology?.Containers.Count ?? 0,
            h.ConnectedSince, h.DisconnectedAt, h.Feed.Status.LastReadAt, h.IsStale ? 0 : h.Feed.Status.AchievedRateHz, h.Lag?.TotalMilliseconds, h.Messages, h.Gaps,
            record.RevokedAt is not null ? "token revoked" : h.LastProblem ?? (h.IsStale ? null : h.Feed.Status.EngineError ?? h.Feed.Status.FirewallError), record,
            h.Feed.Gaps.Count, h.Feed.Gaps.Count > 0 ? h.Feed.Gaps[^1] : null);

    /// <summary>The local host first, then every registered host by name.</summary>
    public static async Task<IReadOnlyList<HostOverview>> ListAsync(HostDirectory directory, HostRegistry registry, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(registry);
        var records = await registry.ListAsync(ct).ConfigureAwait(false);
        return [OfLocal(directory.Local), .. records.Select(r => Of(r, directory.Remote(r.Name)))];
    }
}
