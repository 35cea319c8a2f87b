using Dashboard.Host.Collector;

namespace Dashboard.Host.Tests.Collector;

public class ReadPacingTests
{
    private static readonly TimeSpan TargetPeriod = TimeSpan.FromMilliseconds(250);

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

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

        // The median of 40, 45, 1400, 42 is 45 ms: at a 5 % cap the period is 0.9 s, not 28 s.
        Assert.Equal(Ms(45), pacing.TypicalRead);
        Assert.Equal(Ms(900), pacing.Period(TargetPeriod, 0.05));
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
        Assert.Equal(Ms(10_300), pacing.Period(TargetPeriod, 0.05));
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
