using Microsoft.AspNetCore.SignalR;

namespace Dashboard.Web.Hubs;

/// <summary>
/// The live hub for outside programs (<c>/hubs/lab</c>). Thin: it only manages groups, one per Docker host; what is
/// sent lives in <see cref="LabHubForwarder"/>. Messages: CountersChanged, TopologyChanged, FirewallChanged, CollectorStatus.
/// </summary>
public sealed class LabHub : Hub
{
    public static string GroupFor(string host) => "host:" + host;

    /// <summary>Starts receiving a host's updates. Without a call, a client is put in the local host's group on connect.</summary>
    public Task JoinHost(string host) => Groups.AddToGroupAsync(Context.ConnectionId, GroupFor(host));

    public Task LeaveHost(string host) => Groups.RemoveFromGroupAsync(Context.ConnectionId, GroupFor(host));

    public override async Task OnConnectedAsync()
    {
        var host = Context.GetHttpContext()?.Request.Query["host"].ToString();
        var feed = Context.GetHttpContext()?.RequestServices.GetService<Live.LiveFeed>();
        await Groups.AddToGroupAsync(Context.ConnectionId, GroupFor(string.IsNullOrEmpty(host) ? feed?.Host ?? "" : host));
        await base.OnConnectedAsync();
    }
}
