namespace Dashboard.Core.Firewall;

/// <summary>
/// The last minute of each rule's packet counter, for rates and sparklines. Bounded: at most
/// <see cref="MaxSamplesPerRule"/> samples per rule, older than <see cref="Window"/> dropped, rules not seen for a window forgotten.
/// Not thread-safe: one writer (the live feed) under its own lock.
/// </summary>
public sealed class CounterHistory
{
    public const int MaxSamplesPerRule = 256;

    private readonly Dictionary<RuleId, Queue<CounterSample>> _samples = new();

    public CounterHistory(TimeSpan? window = null) => Window = window ?? TimeSpan.FromMinutes(1);

    public TimeSpan Window { get; }

    public int RuleCount => _samples.Count;

    public void Record(RuleId id, DateTimeOffset at, ulong packets, ulong bytes)
    {
        if (!_samples.TryGetValue(id, out var q))
        {
            q = new Queue<CounterSample>();
            _samples[id] = q;
        }

        q.Enqueue(new CounterSample(at, packets, bytes));
        while (q.Count > MaxSamplesPerRule || (q.Count > 0 && at - q.Peek().At > Window))
        {
            q.Dequeue();
        }
    }

    /// <summary>Drops rules whose last sample is older than the window.</summary>
    public void Prune(DateTimeOffset now)
    {
        foreach (var id in _samples.Where(kv => kv.Value.Count == 0 || now - kv.Value.Last().At > Window).Select(kv => kv.Key).ToList())
        {
            _samples.Remove(id);
        }
    }

    public IReadOnlyList<CounterSample> Samples(RuleId id) => _samples.TryGetValue(id, out var q) ? q.ToArray() : [];

    /// <summary>
    /// Packets per second while the counter moved in the last <paramref name="over"/>: the packets counted after its
    /// first rise in that window, over the time from that rise to its last (a flow younger than the window is measured
    /// over the time it has existed, not over idle seconds before it); null before a second rise. A reset starts anew.
    /// </summary>
    public CounterRate? RateOf(RuleId id, DateTimeOffset now, TimeSpan over)
    {
        if (!_samples.TryGetValue(id, out var q) || q.Count < 2)
        {
            return null;
        }

        CounterSample? previous = null;
        CounterSample? first = null;
        CounterSample? last = null;
        foreach (var s in q)
        {
            if (previous is { } p && now - s.At <= over)
            {
                if (s.Packets < p.Packets)
                {
                    first = last = null;
                }
                else if (s.Packets > p.Packets)
                {
                    first ??= s;
                    last = s;
                }
            }

            previous = s;
        }

        if (first is null || last is null || last.At <= first.At)
        {
            return null;
        }

        var span = last.At - first.At;
        return new CounterRate((last.Packets - first.Packets) / span.TotalSeconds, last.Packets - first.Packets, span);
    }

    /// <summary>When the rule's packet counter last rose, or null.</summary>
    public DateTimeOffset? LastMoved(RuleId id)
    {
        if (!_samples.TryGetValue(id, out var q) || q.Count < 2)
        {
            return null;
        }

        var arr = q.ToArray();
        for (var i = arr.Length - 1; i > 0; i--)
        {
            if (arr[i].Packets != arr[i - 1].Packets)
            {
                return arr[i].At;
            }
        }

        return null;
    }
}

public sealed record CounterSample(DateTimeOffset At, ulong Packets, ulong Bytes);

/// <summary>A counter's rate: <see cref="Packets"/> counted over <see cref="Over"/>.</summary>
public readonly record struct CounterRate(double PerSecond, ulong Packets, TimeSpan Over);
