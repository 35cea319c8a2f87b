namespace Dashboard.Host.Collector;

/// <summary>Configuration section "Collector".</summary>
public sealed class CollectorOptions
{
    public const string Section = "Collector";

    /// <summary>Run the collector inside the web process.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Counter reads per second to aim for.</summary>
    public double TargetRateHz { get; set; } = 4;

    /// <summary>While someone watches the counters, read up to this often, as far as the duty cycle cap allows.</summary>
    public double WatchedRateHz { get; set; } = 20;

    /// <summary>
    /// Reading (the tools' CPU time and ours: process, parse, diff) costs at most this share of one core; a host whose
    /// reads cost more is read less often. CPU time, not wall time: a read waiting for a busy CPU costs the host nothing more.
    /// </summary>
    public double MaxDutyCycle { get; set; } = 0.05;

    /// <summary>Docker events arriving within this window cause one topology refresh.</summary>
    public TimeSpan TopologyDebounce { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How long to wait before trying an unreachable engine or firewall again.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(2);
}
