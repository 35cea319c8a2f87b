using Dashboard.Host.Collector;

namespace Dashboard.Host.Tests.Collector;

public class ReadPacingTests
{
    private static readonly TimeSpan TargetPeriod = TimeSpan.FromMilliseconds(250);

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    [Fact]
    public void SmallRuleset_WhileWatched_ReadsAsOftenAsTheDutyCapAllows()
    {
        var pacing = new ReadPacing();
        foreach (var ms in new[] { 60, 4, 4, 4, 5, 4 })
        {
            pacing.Add(Ms(ms));
        }

        // 4.2 ms reads on average under a 5 % cap: every 84 ms (11.9 reads/s) while watched (floor 50 ms, 20/s); 4/s otherwise.
        Assert.Equal(84, pacing.Period(Ms(50), 0.05).TotalMilliseconds, 3);
        Assert.Equal(TargetPeriod, pacing.Period(TargetPeriod, 0.05));

    }

    [Fact]
    public void MostReadsFastSomeSlower_PacedByTheMeanSoTheCapHoldsOnAverage()
    {
        var pacing = new ReadPacing();
        pacing.Add(Ms(60));
        for (var i = 0; i < 40; i++)
        {
            pacing.Add(Ms(i % 4 == 0 ? 8 : 4));
        }

        // The last five: median 4 ms; the mean of the last 20: (15 × 4 + 5 × 8) / 20 = 5 ms → 100 ms at 5 %.
        Assert.Equal(Ms(4), pacing.TypicalRead);
        Assert.Equal(Ms(5), pacing.MeanRead);
        Assert.Equal(100, pacing.Period(Ms(50), 0.05).TotalMilliseconds, 3);

        // One stalled read counts as ten typical ones in the mean: (15 × 4 + 4 × 8 + 40) / 20 = 6.6 ms, not 76 ms.
        pacing.Add(Ms(1400));
        Assert.Equal(6.6, pacing.MeanRead.TotalMilliseconds, 3);

        // Stalls again and again, which the clip leaves out, pushed the share measured over the last seconds to 8 %: the
        // period grows by 8/5 (at most fourfold).
        Assert.Equal(6.6 / 0.05 * 1.6, pacing.Period(Ms(50), 0.05, measuredDutyCycle: 0.08).TotalMilliseconds, 3);
        Assert.Equal(6.6 / 0.05 * 4, pacing.Period(Ms(50), 0.05, measuredDutyCycle: 0.9).TotalMilliseconds, 3);
    }

    [Fact]
    public void FirstRead_IsLeftOut_SoStartUpCostDoesNotStallTheCollector()
    {
        var pacing = new ReadPacing();
        pacing.Add(Ms(900));
        Assert.Equal(TargetPeriod, pacing.Period(TargetPeriod, 0.05));
    }

    [Fact]
    public void OneSlowRead_AmongFastOnes_DoesNotHoldTheNextReadsBack()
    {
        var pacing = new ReadPacing();
        foreach (var ms in new[] { 600, 40, 45, 1400, 42 })
        {
            pacing.Add(Ms(ms));
        }

        // The median of 40, 45, 1400, 42 is 45 ms; in the mean the 1.4 s read counts as 450 ms (ten typical reads):
        // (40 + 45 + 450 + 42) / 4 = 144.25 ms, so at a 5 % cap the period is 2.9 s, not 28 s; it fades as reads go on.
        Assert.Equal(Ms(45), pacing.TypicalRead);
        Assert.Equal(2885, pacing.Period(TargetPeriod, 0.05).TotalMilliseconds, 3);
        for (var i = 0; i < ReadPacing.MeanWindow; i++)
        {
            pacing.Add(Ms(45));
        }

        Assert.Equal(900, pacing.Period(TargetPeriod, 0.05).TotalMilliseconds, 3);
    }

    [Fact]
    public void ReadsThatAreAlwaysSlow_AreStillReadLessOften()
    {
        var pacing = new ReadPacing();
        foreach (var ms in new[] { 800, 500, 520, 510, 530, 505, 515 })
        {
            pacing.Add(Ms(ms));
        }

        Assert.Equal(Ms(515), pacing.TypicalRead);
        Assert.Equal(10_300, pacing.Period(TargetPeriod, 0.05).TotalMilliseconds, 3);
    }

    [Fact]
    public void FastReads_RunAtTheTargetRate()
    {
        var pacing = new ReadPacing();
        foreach (var ms in new[] { 100, 5, 6, 5 })
        {
            pacing.Add(Ms(ms));
        }

        Assert.Equal(TargetPeriod, pacing.Period(TargetPeriod, 0.05));
    }
}
