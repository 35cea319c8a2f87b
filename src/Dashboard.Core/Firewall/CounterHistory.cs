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

    /// <summary>Packets per second over the last <paramref name="over"/>, from the samples that span it; 0 with fewer than two samples.</summary>
    public double PacketRate(RuleId id, DateTimeOffset now, TimeSpan over)
    {
        if (!_samples.TryGetValue(id, out var q) || q.Count < 2)
        {
            return 0;
        }

        var recent = q.Where(s => now - s.At <= over).ToList();
        if (recent.Count == 0)
        {
            return 0;
        }

        var baseline = q.LastOrDefault(s => now - s.At > over) ?? recent[0];
        var last = recent[^1];
        var seconds = (last.At - baseline.At).TotalSeconds;
        return seconds <= 0 || last.Packets < baseline.Packets ? 0 : (last.Packets - baseline.Packets) / seconds;
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
