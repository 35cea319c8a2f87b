using System.Diagnostics;
using System.Text;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;

namespace Dashboard.Core.Tests.Evaluation;

/// <summary>
/// A walk is bounded by the rules it examines, not only by jump depth: hostile rulesets whose jumps fan out answer
/// "undetermined" with the reason, in bounded time and memory (before, 40 chains each jumping twice to the next made
/// 2^40 walks and grew the process to gigabytes).
/// </summary>
public class PacketEvaluatorBudgetTests
{
    private static readonly FlowSpec Flow = new() { InInterface = "br-a", OutInterface = "br-b", Source = "172.18.0.2", Destination = "172.19.0.2" };

    /// <summary>Chains C0..C<paramref name="depth"/>, each holding <paramref name="fanOut"/> jumps to the next; FORWARD jumps to C0.</summary>
    private static string Dag(int depth, int fanOut, int seed = 0)
    {
        var rng = new Random(seed);
        var sb = new StringBuilder("*filter\n:FORWARD ACCEPT [0:0]\n");
        for (var k = 0; k <= depth; k++)
        {
            sb.Append(":C").Append(k).Append(" - [0:0]\n");
        }

        sb.Append("-A FORWARD -j C0\n-A FORWARD -j C0\n");
        for (var k = 0; k < depth; k++)
        {
            for (var j = 0; j < fanOut; j++)
            {
                // Sometimes a jump further down, sometimes a match that holds: a graph, not only a ladder.
                var target = seed == 0 ? k + 1 : Math.Min(depth, k + 1 + rng.Next(2));
                var match = seed != 0 && rng.Next(3) == 0 ? "-s 172.16.0.0/12 " : "";
                sb.Append("-A C").Append(k).Append(' ').Append(match).Append("-j C").Append(target).Append('\n');
            }
        }

        sb.Append("-A C").Append(depth).Append(" -j RETURN\nCOMMIT\n");
        return sb.ToString();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Explain_FortyChainsEachJumpingTwiceToTheNext_UndeterminedWithinASecond(bool recordPath)
    {
        var ruleset = IptablesSaveReader.Read(Dag(40, 2));
        var watch = Stopwatch.StartNew();

        var rt = PacketEvaluator.Explain(ruleset, Flow, recordPath: recordPath);

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1), $"took {watch.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(Verdict.Undetermined, rt.Request.Verdict);
        Assert.Contains("examined more than 200,000 rules", rt.Request.Reason, StringComparison.Ordinal);
        Assert.True(rt.Request.Path.Count <= PacketEvaluator.MaxRecordedSteps + 1);
    }

    [Fact]
    public void Explain_GeneratedJumpGraphs_EveryAnswerWithinTwoSecondsAndBoundedMemory()
    {
        // Bounded to a minute: random graphs of 10-60 chains with fan-out 1-4, until the time is up or 300 are done.
        var total = Stopwatch.StartNew();
        var worst = TimeSpan.Zero;
        long worstBytes = 0;
        for (var i = 1; i <= 300 && total.Elapsed < TimeSpan.FromSeconds(60); i++)
        {
            var rng = new Random(i);
            var ruleset = IptablesSaveReader.Read(Dag(rng.Next(10, 61), rng.Next(1, 5), i));
            var before = GC.GetAllocatedBytesForCurrentThread();
            var watch = Stopwatch.StartNew();

            var rt = PacketEvaluator.Explain(ruleset, Flow);

            watch.Stop();
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            worst = watch.Elapsed > worst ? watch.Elapsed : worst;
            worstBytes = Math.Max(worstBytes, allocated);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"graph {i} took {watch.Elapsed.TotalMilliseconds:0} ms");
            Assert.True(allocated < 256L * 1024 * 1024, $"graph {i} allocated {allocated / 1024 / 1024} MiB");
            Assert.NotNull(rt.Request);
        }

        Assert.True(worst < TimeSpan.FromSeconds(2), $"worst {worst.TotalMilliseconds:0} ms, {worstBytes / 1024 / 1024} MiB");
    }
}
