namespace Dashboard.Host.Collector;

/// <summary>
/// When registered, the embedded collector reads the host only once this process holds the collector duty (replicas
/// of one dashboard: one reads and tells the others). Without it the collector starts at once.
/// </summary>
public interface ICollectorDuty
{
    /// <summary>Completes when this process holds the duty (it keeps it until it stops).</summary>
    Task WaitAsync(CancellationToken ct);
}
