namespace Dashboard.Host.Collector;

/// <summary>
/// Paces the collector's firewall reads under a duty-cycle cap. The cost of a read is the median of the last few reads,
/// leaving out the first (process start-up and JIT make it several times slower): a single slow read, say 1.4 s behind
/// a rule insertion's lock or a busy CPU, would otherwise hold the next read back 20 times as long at a 5 % cap, and
/// the dashboard would show nothing for half a minute. A host whose reads are slow every time is still read less often.
/// </summary>
public sealed class ReadPacing
{
    public const int Window = 5;
    private readonly Queue<TimeSpan> _recent = new();
    private bool _sawFirst;

    public void Add(TimeSpan took)
    {
        if (!_sawFirst)
        {
            _sawFirst = true;
            return;
        }

        _recent.Enqueue(took);
        if (_recent.Count > Window)
        {
            _recent.Dequeue();
        }
    }

    /// <summary>The median cost of the recent reads (zero before the second read).</summary>
    public TimeSpan TypicalRead
    {
        get
        {
            if (_recent.Count == 0)
            {
                return TimeSpan.Zero;
            }

            var sorted = _recent.Order().ToArray();
            return sorted[sorted.Length / 2];
        }
    }

    /// <summary>Time from one read's start to the next: at least <paramref name="minPeriod"/> (the target rate), and long enough that typical reads stay under the duty cycle.</summary>
    public TimeSpan Period(TimeSpan minPeriod, double maxDutyCycle)
    {
        var duty = TimeSpan.FromTicks((long)(TypicalRead.Ticks / Math.Max(0.001, maxDutyCycle)));
        return duty > minPeriod ? duty : minPeriod;
    }
}
