using System.Diagnostics;

namespace Dashboard.Benchmarks;

/// <summary>Median and spread of repeated timings, after warm-up.</summary>
internal static class Measure
{
    /// <summary>Times <paramref name="action"/>; with <paramref name="collectFirst"/> the heap is collected before each timed run (outside the timing).</summary>
    public static Stats Time(Action action, int warmup = 5, int iterations = 31, bool collectFirst = false)
    {
        for (var i = 0; i < warmup; i++)
        {
            action();
        }

        var samples = new List<double>(iterations);
        for (var i = 0; i < iterations; i++)
        {
            if (collectFirst)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }

            var sw = Stopwatch.StartNew();
            action();
            samples.Add(sw.Elapsed.TotalMilliseconds);
        }

        return Stats.Of(samples);
    }

    public static async Task<Stats> TimeAsync(Func<Task> action, int warmup = 1, int iterations = 7)
    {
        for (var i = 0; i < warmup; i++)
        {
            await action();
        }

        var samples = new List<double>(iterations);
        for (var i = 0; i < iterations; i++)
        {
            var sw = Stopwatch.StartNew();
            await action();
            samples.Add(sw.Elapsed.TotalMilliseconds);
        }

        return Stats.Of(samples);
    }
}

internal sealed record Stats(double Median, double Min, double Max, int N)
{
    public static Stats Of(List<double> samples)
    {
        samples.Sort();
        return new Stats(samples[samples.Count / 2], samples[0], samples[^1], samples.Count);
    }

    public override string ToString() => $"median {Median,9:0.00} ms  (min {Min:0.00}, max {Max:0.00}, n={N})";
}
