using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;

namespace Dashboard.Host.Collector;

/// <summary>The collector's health as a person needs it: what it can read, what it cannot and why, how fast it reads.</summary>
public sealed record CollectorStatus(
    string Host,
    bool Running,
    bool EngineAvailable,
    string? EngineError,
    bool FirewallAvailable,
    string? FirewallError,
    FirewallBackend Backend,
    DockerLayout? Layout,
    double TargetRateHz,
    double AchievedRateHz,
    double LastReadMilliseconds,
    double DutyCycle,
    long Reads,
    int RuleCount,
    DateTimeOffset? LastReadAt,
    DateTimeOffset UpdatedAt)
{
    /// <summary>How many watch the counters now; while any do, reads go up to <see cref="WatchedRateHz"/> within the duty cap.</summary>
    public int CounterWatchers { get; init; }

    public double WatchedRateHz { get; init; }

    /// <summary>The most of one core's time the reads may cost (<see cref="DutyCycle"/> is what they cost over the last 10 s).</summary>
    public double MaxDutyCycle { get; init; }

    /// <summary>CPU time the last read cost: the tools' (reaped children) plus this process's parse, diff and publication.</summary>
    public double LastReadCpuMilliseconds { get; init; }

    /// <summary>The share of wall time spent reading over the last 10 s (above <see cref="DutyCycle"/> when other work keeps the CPUs busy).</summary>
    public double WallDutyCycle { get; init; }

    public bool Degraded => !EngineAvailable || !FirewallAvailable || Layout?.Kind is DockerLayoutKind.Unknown;

    public static CollectorStatus Starting(string host, double targetHz) =>
        new(host, true, false, null, false, null, FirewallBackend.Unknown, null, targetHz, 0, 0, 0, 0, 0, null, DateTimeOffset.UtcNow);
}
