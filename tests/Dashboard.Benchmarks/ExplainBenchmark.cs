using System.Diagnostics;
using System.Text;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;

namespace Dashboard.Benchmarks;

/// <summary>
/// The worst explain: chains C0..C<i>depth</i>, each jumping twice to the next (2^depth walks without a step budget).
/// Prints time, allocation and peak working set per depth; each depth runs with a deadline so an unbounded walk is
/// reported as such instead of running forever.
/// </summary>
public static class ExplainBenchmark
{
    public static int Run(int maxDepth)
    {
        var flow = new FlowSpec { InInterface = "br-a", OutInterface = "br-b", Source = "172.18.0.2", Destination = "172.19.0.2" };
        Console.WriteLine($"{"depth",5} {"verdict",-13} {"ms",9} {"allocated MiB",14} {"peak RSS MiB",13}");
        foreach (var depth in new[] { 10, 16, 20, 24, 30, 40 }.Where(d => d <= maxDepth))
        {
            var ruleset = IptablesSaveReader.Read(Dag(depth));
            var before = GC.GetTotalAllocatedBytes(precise: true);
            var watch = Stopwatch.StartNew();
            var task = Task.Run(() => PacketEvaluator.Explain(ruleset, flow));
            var finished = task.Wait(TimeSpan.FromSeconds(30));
            watch.Stop();
            var allocated = (GC.GetTotalAllocatedBytes(precise: true) - before) / 1024.0 / 1024.0;
            using var self = Process.GetCurrentProcess();
            var verdict = finished ? task.Result.Request.Verdict.ToString() : "no answer";
            Console.WriteLine($"{depth,5} {verdict,-13} {watch.Elapsed.TotalMilliseconds,9:0.0} {allocated,14:0.0} {self.PeakWorkingSet64 / 1024.0 / 1024.0,13:0.0}");
            if (!finished)
            {
                Console.WriteLine("stopped: the walk did not finish within 30 s");
                Environment.Exit(0);
            }
        }

        return 0;
    }

    private static string Dag(int depth)
    {
        var sb = new StringBuilder("*filter\n:FORWARD ACCEPT [0:0]\n");
        for (var k = 0; k <= depth; k++)
        {
            sb.Append(":C").Append(k).Append(" - [0:0]\n");
        }

        sb.Append("-A FORWARD -j C0\n-A FORWARD -j C0\n");
        for (var k = 0; k < depth; k++)
        {
            sb.Append("-A C").Append(k).Append(" -j C").Append(k + 1).Append("\n-A C").Append(k).Append(" -j C").Append(k + 1).Append('\n');
        }

        return sb.Append("COMMIT\n").ToString();
    }
}
