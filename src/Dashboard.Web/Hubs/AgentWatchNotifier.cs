using Dashboard.App.Hosts;
using Dashboard.Host.Agents;
using Microsoft.AspNetCore.SignalR;

namespace Dashboard.Web.Hubs;

/// <summary>
/// Tells each connected agent how many watch its host's counters (pages and hub clients), four times a second when it
/// changed, so the agent reads as fast as its duty cap allows while anyone watches and at its target rate otherwise.
/// Every <see cref="TokenSweep"/> it also checks each connected host's token in the database and cuts off an agent
/// whose token was revoked by any means (another replica, the database, a race with its hello).
/// </summary>
public sealed class AgentWatchNotifier(HostDirectory directory, HostRegistry registry, IHubContext<AgentHub> hub, ILogger<AgentWatchNotifier> logger) : BackgroundService
{
    public static readonly TimeSpan TokenSweep = TimeSpan.FromSeconds(20);

    private readonly Dictionary<string, (string Connection, int Watchers)> _told = new(StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(250));
        var swept = System.Diagnostics.Stopwatch.GetTimestamp();
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            if (System.Diagnostics.Stopwatch.GetElapsedTime(swept) >= TokenSweep)
            {
                swept = System.Diagnostics.Stopwatch.GetTimestamp();
                foreach (var h in directory.Remotes.Where(h => h.State == AgentState.Connected))
                {
                    try
                    {
                        if (!await registry.IsLiveAsync(h.Name, stoppingToken).ConfigureAwait(false))
                        {
                            logger.LogWarning("the token of host {Host} is no longer live: its agent is cut off", h.Name);
                            directory.Remote(h.Name)?.Abort();
                        }
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        logger.LogWarning(ex, "could not check the token of host {Host}", h.Name);
                    }
                }
            }

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
