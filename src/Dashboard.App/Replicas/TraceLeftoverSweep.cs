using Dashboard.Host.Netfilter;

namespace Dashboard.App.Replicas;

/// <summary>
/// Replicas only: the holder of the duties removes TRACE rules that a replica killed mid-trace left on the host (every
/// 30 s, and at once when it takes the duties): those whose claim file in the shared data folder nobody holds locked
/// any more (see <see cref="TraceService.RemoveLeftoversAsync"/>). One dashboard alone does this at start-up only.
/// </summary>
public sealed class TraceLeftoverSweep(IDutyLease lease, TraceService traces, ILogger<TraceLeftoverSweep> logger) : BackgroundService
{
    public static readonly TimeSpan Every = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!lease.Shared)
        {
            return;
        }

        try
        {
            await lease.WaitAsync(stoppingToken).ConfigureAwait(false);
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await traces.RemoveLeftoversAsync(stoppingToken, onlyAbandonedClaims: true).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning("leftover TRACE rules not checked: {Error}", ex.Message);
                }

                await Task.Delay(Every, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
