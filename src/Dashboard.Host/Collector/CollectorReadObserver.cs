namespace Dashboard.Host.Collector;

/// <summary>
/// Hears every firewall read the collector of this process makes, with how long it took (the metrics endpoint's read
/// duration histogram). Nothing is kept here; a listener that is not there costs nothing.
/// </summary>
public sealed class CollectorReadObserver
{
    public event Action<string, TimeSpan>? ReadCompleted;

    public void Completed(string host, TimeSpan took) => ReadCompleted?.Invoke(host, took);
}
