namespace Dashboard.Host.Collector;

/// <summary>
/// Paces the collector's firewall reads under a duty-cycle cap. The cost of a read is the larger of the median of the
/// last few reads and the mean of the last twenty, each counted at most ten times the median, the first read left out
/// (process start-up and JIT make it several times slower): a single slow read, say 1.4 s behind a rule insertion's lock
/// or a busy CPU, would otherwise hold the next read back 20 times as long at a 5 % cap, and the dashboard would show
/// nothing for half a minute; while reads that are mostly fast and sometimes slower still keep the average under the cap.
/// A host whose reads are slow every time is still read less often.
/// </summary>
public sealed class ReadPacing
{
    public const int Window = 5;

    /// <summary>Reads kept for the mean: enough that a skew (most reads fast, some slower) shows in it, few enough that
    /// the slow reads of start-up (JIT) are forgotten within seconds.</summary>
    public const int MeanWindow = 20;

    private readonly Queue<TimeSpan> _recent = new();
    private readonly Queue<TimeSpan> _longer = new();
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

        _longer.Enqueue(took);
        if (_longer.Count > MeanWindow)
        {
            _longer.Dequeue();
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

    /// <summary>Reads slower than this many typical reads count as this many in the mean (one stall is not a trend).</summary>
    public const double MeanClip = 10;

    /// <summary>
    /// The mean cost of the last <see cref="MeanWindow"/> reads, each counted at most <see cref="MeanClip"/> times the
    /// typical read: what the duty cycle is made of on average, without one stalled read holding the next ones back.
    /// </summary>
    public TimeSpan MeanRead
    {
        get
        {
            if (_longer.Count < 2)
            {
                return TypicalRead;
            }

            var clip = TypicalRead.Ticks * MeanClip;
            return TimeSpan.FromTicks((long)_longer.Average(t => Math.Min(t.Ticks, clip)));
        }
    }

    /// <summary>
    /// Time from one read's start to the next: at least <paramref name="minPeriod"/> (the target rate), and long enough
    /// that reads stay under the duty cycle, typical ones (the median) and on average (the clipped mean): when most reads
    /// are fast and some slower, the median alone would let the share of time spent reading creep above the cap.
    /// </summary>
    /// <remarks>
    /// When the share actually spent reading over the last seconds (<paramref name="measuredDutyCycle"/>) is above the
    /// cap anyway (stalls the clip leaves out, again and again), the period grows by that excess, at most fourfold.
    /// </remarks>
    public TimeSpan Period(TimeSpan minPeriod, double maxDutyCycle, double measuredDutyCycle = 0)
    {
        var cap = Math.Max(0.001, maxDutyCycle);
        var cost = TypicalRead > MeanRead ? TypicalRead : MeanRead;
        var duty = TimeSpan.FromTicks((long)(cost.Ticks / cap));
        var period = duty > minPeriod ? duty : minPeriod;
        return measuredDutyCycle > cap ? TimeSpan.FromTicks((long)(period.Ticks * Math.Min(4, measuredDutyCycle / cap))) : period;
    }
}
