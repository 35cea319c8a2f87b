using Dashboard.App.Hosts;
using Dashboard.Host.Agents;
using Microsoft.AspNetCore.SignalR;

namespace Dashboard.Web.Hubs;

/// <summary>
/// Tells each connected agent how many watch its host's counters (pages and hub clients), four times a second when it
/// changed, so the agent reads as fast as its duty cap allows while anyone watches and at its target rate otherwise.
/// </summary>
public sealed class AgentWatchNotifier(HostDirectory directory, IHubContext<AgentHub> hub, ILogger<AgentWatchNotifier> logger) : BackgroundService
{
    private readonly Dictionary<string, (string Connection, int Watchers)> _told = new(StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(250));
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            foreach (var h in directory.Remotes)
            {
                if (h.ConnectionId is not { } connection)
                {
                    _told.Remove(h.Name);
                    continue;
                }

                var watchers = h.Feed.CounterWatchers;
                if (_told.TryGetValue(h.Name, out var told) && told == (connection, watchers))
                {
                    continue;
                }

                try
                {
                    await hub.Clients.Client(connection).SendAsync(AgentProtocol.WatchersChanged, watchers, stoppingToken).ConfigureAwait(false);
                    _told[h.Name] = (connection, watchers);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogDebug(ex, "could not tell the agent of {Host} its watchers", h.Name);
                }
            }
        }
    }
}
