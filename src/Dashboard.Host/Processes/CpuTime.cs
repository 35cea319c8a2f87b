using System.Runtime.InteropServices;

namespace Dashboard.Host.Processes;

/// <summary>
/// CPU time as the kernel accounts it, to pace work by what it costs rather than by how long it waited: when other
/// processes keep the CPUs busy, a read's wall time grows while its CPU time stays the same.
/// </summary>
public static class CpuTime
{
    private const int ClockThreadCpuTime = 3; // CLOCK_THREAD_CPUTIME_ID
    private const int RusageChildren = -1; // RUSAGE_CHILDREN

    /// <summary>User plus system time of the calling thread (nanosecond clock); null where the clock is unavailable.</summary>
    public static TimeSpan? CurrentThread()
    {
        var ts = new long[2]; // struct timespec { tv_sec; tv_nsec; }
        return OperatingSystem.IsLinux() && ClockGetTime(ClockThreadCpuTime, ts) == 0
            ? TimeSpan.FromTicks(ts[0] * TimeSpan.TicksPerSecond + ts[1] / 100)
            : null;
    }

    /// <summary>
    /// User plus system time of every child process this process has reaped so far (microsecond resolution). The
    /// difference across a child's run is its cost, plus that of any other child reaped meanwhile.
    /// </summary>
    public static TimeSpan? ReapedChildren()
    {
        var usage = new long[18]; // struct rusage: ru_utime and ru_stime (struct timeval each), then 14 longs
        return OperatingSystem.IsLinux() && GetRusage(RusageChildren, usage) == 0
            ? TimeSpan.FromTicks((usage[0] + usage[2]) * TimeSpan.TicksPerSecond + (usage[1] + usage[3]) * 10)
            : null;
    }

    /// <summary>The cost of <paramref name="action"/> on this thread, added to <paramref name="total"/>.</summary>
    public static T Measure<T>(Func<T> action, ref TimeSpan total)
    {
        ArgumentNullException.ThrowIfNull(action);
        var before = CurrentThread();
        try
        {
            return action();
        }
        finally
        {
            if (before is { } b && CurrentThread() is { } after)
            {
                total += after - b;
            }
        }
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, [Out] long[] timespec);

    [DllImport("libc", EntryPoint = "getrusage")]
    private static extern int GetRusage(int who, [Out] long[] usage);
}
