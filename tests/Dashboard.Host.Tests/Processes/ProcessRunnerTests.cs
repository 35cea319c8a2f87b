using System.Diagnostics;
using Dashboard.Host.Processes;

namespace Dashboard.Host.Tests.Processes;

public class ProcessRunnerTests
{
    private readonly ProcessRunner _runner = new();

    [Fact]
    public async Task RunAsync_ArgumentsWithShellCharacters_ArriveVerbatim()
    {
        var r = await _runner.RunAsync("printf", ["%s|", "a b", "$(reboot)", "; rm -rf /", "\"q\""], TimeSpan.FromSeconds(10));

        Assert.Equal("a b|$(reboot)|; rm -rf /|\"q\"|", r.StdOut);
    }

    [Fact]
    public async Task RunAsync_MissingProgram_SaysWhichOne()
    {
        var ex = await Assert.ThrowsAsync<ProcessFailedException>(() => _runner.RunAsync("no-such-program-netlab", [], TimeSpan.FromSeconds(5)));

        Assert.Contains("no-such-program-netlab", ex.Message);
    }

    [Fact]
    public async Task RunAsync_Timeout_KillsTheProcessAndSaysSo()
    {
        var marker = "netlab-sleep-" + Guid.NewGuid().ToString("N")[..6];
        var sw = Stopwatch.StartNew();

        var ex = await Assert.ThrowsAsync<ProcessFailedException>(() => _runner.RunAsync("sh", ["-c", $"sleep 30 # {marker}"], TimeSpan.FromMilliseconds(500)));

        Assert.Contains("did not finish", ex.Message);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10));
        await Task.Delay(200);
        var ps = await _runner.RunAsync("pgrep", ["-f", marker], TimeSpan.FromSeconds(5));
        Assert.Equal(1, ps.ExitCode);
    }

    [Fact]
    public void CommandLine_Format_QuotesWhatAShellWouldSplit()
    {
        Assert.Equal("iptables -w 5 -I DOCKER-USER 1 -m comment --comment 'lab change 1' -j ACCEPT",
            CommandLine.Format("iptables", ["-w", "5", "-I", "DOCKER-USER", "1", "-m", "comment", "--comment", "lab change 1", "-j", "ACCEPT"]));
    }
}
