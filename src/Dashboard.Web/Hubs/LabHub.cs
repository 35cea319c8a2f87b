using Dashboard.Core.Changes;
using Dashboard.Data.Entities;
using Dashboard.App.Changes;
using Dashboard.App.Labs;
using Dashboard.App.Live;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;

namespace Dashboard.Web.Hubs;

/// <summary>
/// The live hub for outside programs (<c>/hubs/lab</c>); sign-in required (cookie, or an API token as Bearer header or
/// <c>?access_token=</c>). Host messages (CountersChanged, TopologyChanged, FirewallChanged, FirewallChangedOutside, CollectorStatus,
/// PacketsCaptured, TraceUpdated) go to the host's group; lab messages (RunUpdated, ChangeRequestUpdated) only to that
/// lab's members (see <see cref="LabHubForwarder"/>). Change requests can also be worked from here, with the same checks
/// as the UI and the API: a refused call fails with a <see cref="HubException"/> saying why.
/// </summary>
[Authorize]
public sealed class LabHub(ChangeRequestService changes, LabAccess access, LiveFeed feed, Dashboard.App.Hosts.HostDirectory hosts) : Hub
{
    private const string CounterWatch = "counter-watch";

    public static string GroupFor(string host) => "host:" + host;

    /// <summary>Starts receiving a host's updates. Without a call, a client is put in the local host's group on connect.</summary>
    public async Task JoinHost(string host)
    {
        var h = KnownHost(host) ?? throw new HubException($"404: no host named '{(host?.Length > 40 ? host[..40] + "…" : host)}' (groups exist for known hosts only)");
        await Groups.AddToGroupAsync(Context.ConnectionId, GroupFor(h));
        Watch(h, true);
    }

    /// <summary>
    /// The host a name means, when this dashboard has it (so a client cannot make up any number of groups): the local
    /// host, or a host whose agent has reported since the dashboard started.
    /// </summary>
    private string? KnownHost(string? host) => string.IsNullOrEmpty(host) ? feed.Host : hosts.FeedOf(host)?.Host;

    public async Task LeaveHost(string host)
    {
        await Groups.RemoveFromGroupAsync(Context.ConnectionId, GroupFor(host));
        if (KnownHost(host) is { } h)
        {
            Watch(h, false);
        }
    }

    /// <summary>A connection in a host's group watches its counters: that host's collector (or agent) reads faster while any do.</summary>
    private void Watch(string host, bool on)
    {
        var key = CounterWatch + ":" + host;
        if (on && !Context.Items.ContainsKey(key) && hosts.FeedOf(host) is { } hostFeed)
        {
            // Also ended with the connection itself: a JoinHost still running when the client disconnects would
            // otherwise leave a watch behind (Register runs at once on a connection already aborted).
            var watch = hostFeed.WatchCounters();
            Context.Items[key] = watch;
            Context.ConnectionAborted.Register(watch.Dispose);
        }
        else if (!on && Context.Items.Remove(key, out var watch))
        {
            (watch as IDisposable)?.Dispose();
        }
    }

    public override Task OnDisconnectedAsync(Exception? exception)
    {
        foreach (var key in Context.Items.Keys.OfType<string>().Where(k => k.StartsWith(CounterWatch + ":", StringComparison.Ordinal)).ToList())
        {
            Watch(key[(CounterWatch.Length + 1)..], false);
        }

        return base.OnDisconnectedAsync(exception);
    }

    public Task<IReadOnlyList<LabMembership>> MyLabs() => Call(() => access.LabsOfAsync(Me()));

    public Task<IReadOnlyList<ChangeDto>> ListChanges(int lab) => Call(() => changes.ListAsync(Me(), lab));

    public Task<ChangeDto> ProposeChange(int lab, ChangeRule rule, string rationale, int? ttlSeconds) => Call(() => changes.ProposeAsync(Me(), lab, rule, rationale, ttlSeconds));

    public Task<ChangeDto> ApproveChange(int id, string? note) => Call(() => changes.ApproveAsync(Me(), id, note));

    public Task<ChangeDto> RejectChange(int id, string? note) => Call(() => changes.RejectAsync(Me(), id, note));

    public Task<ChangeDto> RevertChange(int id) => Call(() => changes.RevertAsync(Me(), id));

    public Task SetMember(int lab, string userName, LabRole role) => Call(async () =>
    {
        await access.SetMemberAsync(Me(), lab, userName, role);
        return true;
    });

    public override async Task OnConnectedAsync()
    {
        var host = Context.GetHttpContext()?.Request.Query["host"].ToString();
        if (KnownHost(host) is { } h)
        {
            await Groups.AddToGroupAsync(Context.ConnectionId, GroupFor(h));
            Watch(h, true);
        }

        await base.OnConnectedAsync();
    }

    private Actor Me() => Actor.From(Context.User!, Context.GetHttpContext()?.Connection.RemoteIpAddress?.ToString());

    private static async Task<T> Call<T>(Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (LabAccessException ex)
        {
            throw new HubException($"{ex.Status}: {ex.Message}");
        }
        catch (ChangeValidationException ex)
        {
            throw new HubException("400: " + ex.Message);
        }
        catch (ChangeStateException ex)
        {
            throw new HubException("409: " + ex.Message);
        }
        catch (ArgumentException ex)
        {
            throw new HubException("400: " + ex.Message);
        }
    }
}
