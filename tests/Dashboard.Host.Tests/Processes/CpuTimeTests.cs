using System.Diagnostics;
using Dashboard.Host.Processes;

namespace Dashboard.Host.Tests.Processes;

public class CpuTimeTests
{
    [Fact]
    public void CurrentThread_CountsWorkOnThisThread_NotSleep()
    {
        var before = CpuTime.CurrentThread()!.Value;
        var sw = Stopwatch.StartNew();
        var x = 0UL;
        while (sw.ElapsedMilliseconds < 60)
        {
            x = x * 6364136223846793005UL + 1;
        }

        var afterWork = CpuTime.CurrentThread()!.Value;
        Thread.Sleep(150);
        var afterSleep = CpuTime.CurrentThread()!.Value;

        Assert.NotEqual(0UL, x | 1);
        // The spin ran on this thread for 60 ms of wall time; preemption by other tests can only take some of it away.
        Assert.InRange((afterWork - before).TotalMilliseconds, 5, 80);
        Assert.InRange((afterSleep - afterWork).TotalMilliseconds, 0, 20);
    }

    [Fact]
    public void Measure_AddsTheCostToTheTotal_AndReturnsTheResult()
    {
        var total = TimeSpan.FromMilliseconds(1);

        var result = CpuTime.Measure(() =>
        {
            var sw = Stopwatch.StartNew();
            while (sw.ElapsedMilliseconds < 30)
            {
            }

            return 42;
        }, ref total);

        Assert.Equal(42, result);
        Assert.InRange(total.TotalMilliseconds, 2, 40);
    }

    [Fact]
    public async Task ReapedChildren_GrowsByWhatAChildSpentOnTheCpu()
    {
        var before = CpuTime.ReapedChildren()!.Value;

        // 2 GiB from /dev/zero to /dev/null: a child that spends its time in the kernel copying, not waiting.
        var r = await new ProcessRunner().RunAsync("dd", ["if=/dev/zero", "of=/dev/null", "bs=1M", "count=2048"], TimeSpan.FromSeconds(30));

        Assert.True(r.Succeeded, r.Message);
        Assert.True((CpuTime.ReapedChildren()!.Value - before).TotalMilliseconds >= 20, $"dd's CPU time should be counted once it is reaped ({r.StdErr.Trim()})");
    }
}
