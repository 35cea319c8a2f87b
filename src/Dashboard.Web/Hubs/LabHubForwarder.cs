using Dashboard.Core.Firewall;
using Dashboard.Web.Api;
using Dashboard.App.Live;
using Microsoft.AspNetCore.SignalR;

namespace Dashboard.Web.Hubs;

/// <summary>Forwards the live feeds (the local host's and every agent host's) to <c>/hubs/lab</c>, to the group of the host each event came from.</summary>
public sealed class LabHubForwarder(
    LiveFeed feed,
    Dashboard.App.Hosts.HostDirectory hosts,
    IHubContext<LabHub> hub,
    Dashboard.App.Labs.LabAccess access,
    Dashboard.App.Replicas.IDutyLease lease,
    Microsoft.Extensions.Options.IOptions<Dashboard.Web.Replicas.RedisOptions> redis,
    ILogger<LabHubForwarder> logger) : IHostedService
{
    /// <summary>With the backplane, a group send reaches the clients of every replica.</summary>
    private readonly bool _backplane = !string.IsNullOrWhiteSpace(redis.Value.Connection);

    private readonly List<IDisposable> _subscriptions = [];
    private readonly HashSet<string> _followed = new(StringComparer.Ordinal);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lock (_subscriptions)
        {
            _subscriptions.Add(feed.Subscribe(LiveTopic.Everything, Forward, relay: true));
            hosts.Added += Follow;
            foreach (var h in hosts.Remotes)
            {
                Follow(h);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>An agent host's feed carries its topology, rules, counters, status, captures and traces (runs and changes are the local feed's).</summary>
    private void Follow(Dashboard.App.Hosts.RemoteHost h)
    {
        lock (_subscriptions)
        {
            if (!_followed.Add(h.Name))
            {
                return;
            }

            _subscriptions.Add(h.Feed.Subscribe([LiveTopic.Topology, LiveTopic.Status, LiveTopic.Firewall, LiveTopic.OutsideChanges, LiveTopic.Counters(), LiveTopic.Captures(), LiveTopic.Traces()], Forward, relay: true));
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        lock (_subscriptions)
        {
            hosts.Added -= Follow;
            _subscriptions.ForEach(s => s.Dispose());
            _subscriptions.Clear();
            _followed.Clear();
        }

        return Task.CompletedTask;
    }

    private void Forward(LiveEvent e)
    {
        if (e.Relayed)
        {
            // Another replica made it and sent it to the hub's clients itself, through the backplane.
            return;
        }

        if (_backplane && lease.HeldSince is null && e.Host == feed.Host && e is TopologyChangedEvent or FirewallChangedEvent or CountersChangedEvent or StatusChangedEvent)
        {
            // The duty holder reads the host and sends its reads to the group through the backplane; here they arrive
            // relayed (RedisCollectorRelay) for this replica's pages only.
            return;
        }

        var group = hub.Clients.Group(LabHub.GroupFor(e.Host));
        var send = e switch
        {
            CountersChangedEvent c => group.SendAsync("CountersChanged", new CountersMessage(
                c.Host,
                c.Update.ReadAt,
                c.Update.Rules.Select(r => new RuleCountersMessage(r.Id.Family, r.Id.Table, r.Id.Chain, r.Id.Key, r.Position, r.Packets, r.Bytes, r.DeltaPackets, r.DeltaBytes, r.Reset)).ToList(),
                c.Update.Policies)),
            TopologyChangedEvent t => group.SendAsync("TopologyChanged", t.Topology),
            FirewallChangedEvent f => group.SendAsync("FirewallChanged", new FirewallMessage(f.Host, f.ReadAt, DockerLayoutDetector.Detect(f.Ruleset), RulesetDto.From(f.Ruleset))),
            StatusChangedEvent s => group.SendAsync("CollectorStatus", s.Status),
            FirewallChangedOutsideEvent o => group.SendAsync("FirewallChangedOutside", o.Alert),
            PacketsCapturedEvent p => ToOwnersAsync(p.Capture.Session.Request.OwnerOrSystem, "PacketsCaptured", PacketsMessage.From(p)),
            RunUpdatedEvent r => ToLabAsync(r.Progress.LabId, "RunUpdated", r.Progress),
            ChangeRequestUpdatedEvent c => ToLabAsync(c.Change.LabId, "ChangeRequestUpdated", c.Change),
            TraceUpdatedEvent t => ToOwnersAsync(t.Trace.Session.Request.OwnerOrSystem, "TraceUpdated", new TraceMessage(t.Host, TraceDto.From(t.Trace.Session, includePackets: false), t.Packets)),
            _ => Task.CompletedTask,
        };
        send.ContinueWith(t => logger.LogDebug(t.Exception, "hub send failed"), TaskContinuationOptions.OnlyOnFaulted);
    }

    /// <summary>
    /// A capture's packets and a trace's paths go to those who may see them (its starter, its lab's members, site
    /// administrators), never to the whole host group: a capture carries whatever crossed the bridge.
    /// </summary>
    private async Task ToOwnersAsync(Dashboard.Host.SessionOwner owner, string method, object message)
    {
        var key = (owner.UserId, owner.LabId);
        if (!_recipients.TryGetValue(key, out var cached) || cached.At < Environment.TickCount64 - 5_000)
        {
            var ids = new HashSet<string>(await access.SiteAdministratorIdsAsync());
            if (owner.UserId is { } u)
            {
                ids.Add(u);
            }

            if (owner.LabId is { } lab)
            {
                ids.UnionWith(await access.MemberIdsAsync(lab));
            }

            cached = (Environment.TickCount64, [.. ids]);
            _recipients[key] = cached;
        }

        if (cached.Ids.Count > 0)
        {
            await hub.Clients.Users(cached.Ids).SendAsync(method, message);
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string? UserId, int? LabId), (long At, IReadOnlyList<string> Ids)> _recipients = new();

    /// <summary>Lab messages go to the lab's members as they are now (not to a group joined earlier), so a removed member stops receiving them at once.</summary>
    private async Task ToLabAsync(int labId, string method, object message)
    {
        var members = await access.MemberIdsAsync(labId);
        if (members.Count > 0)
        {
            await hub.Clients.Users(members).SendAsync(method, message);
        }
    }
}
