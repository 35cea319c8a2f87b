using System.Diagnostics;
using System.Globalization;
using System.Text;
using Dashboard.App.Firewall;
using Dashboard.App.Live;
using Dashboard.Core.Firewall;
using Dashboard.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Benchmarks;

/// <summary>
/// Issue 19's history benchmark: the dashboard's CPU time while its host's firewall changes at <c>perMinute</c> rule
/// changes a minute (inserts, deletes and moves in a chain of <c>rules</c> rules), published at 4 reads a second as the
/// collector does, in real time; with the history recorder off and on side by side (15 s windows after a warm-up pair,
/// alternated, four each), so the difference is the recording's cost (comparison, attribution, SQLite writes, checkpoints).
/// </summary>
internal static class FirewallHistoryBenchmark
{
    private const double ReadsPerSecond = 4;
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(15);
    private const int Rounds = 4;

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    public static async Task<int> RunAsync(int rules, int perMinute)
    {
        var reads = (int)(Window.TotalSeconds * ReadsPerSecond);
        var perRead = perMinute / 60.0 / ReadsPerSecond;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"== firewall history: {perMinute} rule changes a minute in a chain of {rules} rules, {ReadsPerSecond} reads/s, {Environment.ProcessorCount} cores =="));
        var random = new Random(19);
        var lines = Enumerable.Range(0, rules).Select(i => "-A SCRATCH " + Generated.RuleBody(i)).ToList();
        var next = rules;
        var sequence = new List<Ruleset>();
        var owed = 0.0;
        var changes = 0;
        for (var r = 0; r <= reads; r++)
        {
            owed += perRead;
            for (; owed >= 1; owed--, changes++)
            {
                switch (random.Next(3))
                {
                    case 0:
                        lines.Insert(random.Next(lines.Count + 1), "-A SCRATCH " + Generated.RuleBody(next++));
                        break;
                    case 1:
                        lines.RemoveAt(random.Next(lines.Count));
                        break;
                    default:
                        var i = random.Next(lines.Count);
                        var moved = lines[i];
                        lines.RemoveAt(i);
                        lines.Insert(random.Next(lines.Count + 1), moved);
                        break;
                }
            }

            var text = new StringBuilder("*filter\n:FORWARD DROP [0:0]\n:SCRATCH - [0:0]\n-A FORWARD -j SCRATCH\n");
            lines.ForEach(l => text.Append(l).Append('\n'));
            var rs = IptablesSaveReader.Read(text.Append("COMMIT\n").ToString());
            RuleClassifier.Classify(rs, null, null);
            sequence.Add(rs);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{sequence.Count} reads prepared ({changes} changes), replayed in real time in each {Window.TotalSeconds:0} s window"));
        var off = new List<double>();
        var on = new List<double>();
        long recorded = 0;
        // A warm-up pair first (the first app in the process pays for JIT and start-up), then alternated pairs.
        await WindowAsync(enabled: false, sequence, reads, _ => { });
        await WindowAsync(enabled: true, sequence, reads, _ => { });
        for (var round = 0; round < Rounds; round++)
        {
            off.Add(await WindowAsync(enabled: false, sequence, reads, _ => { }));
            on.Add(await WindowAsync(enabled: true, sequence, reads, n => recorded += n));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round + 1}: process CPU {off[^1]:0.00} % of a core with the recorder off, {on[^1]:0.00} % on"));
        }

        var (offMedian, onMedian) = (Median(off), Median(on));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"process CPU, recorder off: median {offMedian:0.00} % of a core (min {off.Min():0.00}, max {off.Max():0.00}, n={off.Count})"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"process CPU, recorder on:  median {onMedian:0.00} % of a core (min {on.Min():0.00}, max {on.Max():0.00}, n={on.Count}; {recorded / Rounds} changes recorded a window)"));
        var cost = onMedian - offMedian;
        var pairs = off.Zip(on, (a, b) => b - a).ToList();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"recording at {perMinute} changes/min: {cost:0.00} % of one core (median on - median off; per pair {string.Join(", ", pairs.Select(p => p.ToString("0.00", CultureInfo.InvariantCulture)))}; target < 5 %: {(Math.Max(cost, pairs.Max()) < 5 ? "MET" : "NOT MET")})"));
        return 0;
    }

    /// <summary>One app, a first read for the baseline, then <paramref name="reads"/> reads in real time; the process's CPU share over them.</summary>
    private static async Task<double> WindowAsync(bool enabled, List<Ruleset> sequence, int reads, Action<long> recordedCount)
    {
        using var app = new DashboardFactory(new() { ["FirewallHistory:Enabled"] = enabled ? "true" : "false", ["Logging:LogLevel:Default"] = "Warning" });
        var feed = app.Services.GetRequiredService<LiveFeed>();
        var recorder = app.Services.GetRequiredService<FirewallHistoryRecorder>();
        feed.FirewallChanged(sequence[0], DateTimeOffset.UtcNow);
        await Task.Delay(2000); // start-up work and the first checkpoint settle
        var process = Process.GetCurrentProcess();
        var cpu0 = process.TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        var period = TimeSpan.FromSeconds(1 / ReadsPerSecond);
        for (var i = 1; i <= reads; i++)
        {
            feed.FirewallChanged(sequence[i], DateTimeOffset.UtcNow);
            var due = period * i - wall.Elapsed;
            if (due > TimeSpan.Zero)
            {
                await Task.Delay(due);
            }
        }

        await Task.Delay(TimeSpan.FromSeconds(0.5)); // the last batch written
        process.Refresh();
        var share = (process.TotalProcessorTime - cpu0).TotalSeconds / wall.Elapsed.TotalSeconds * 100;
        if (enabled)
        {
            recordedCount(recorder.Recorded);
        }

        return share;
    }
}
