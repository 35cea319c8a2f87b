using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Collector;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;
using Dashboard.Host.Processes;
using Docker.DotNet;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Dashboard.Host.Tests.Collector;

public class HostCollectorPacingTests
{
    private const string Dump = """
        *filter
        :INPUT ACCEPT [0:0]
        :FORWARD DROP [0:0]
        :OUTPUT ACCEPT [0:0]
        [7:588] -A FORWARD -s 172.20.0.0/16 -j ACCEPT
        COMMIT

        """;

    /// <summary>An <c>iptables-save</c> that takes <paramref name="wait"/> of wall time and no CPU, like a read waiting for a busy machine.</summary>
    private sealed class IdleSlowRunner(TimeSpan wait) : IProcessRunner
    {
        public async Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken = default)
        {
            await Task.Delay(wait, cancellationToken);
            return new ProcessResult(0, fileName.Contains("ip6", StringComparison.Ordinal) ? "" : Dump, "", wait);
        }

        public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string standardInput, TimeSpan timeout, CancellationToken cancellationToken = default) =>
            RunAsync(fileName, arguments, timeout, cancellationToken);
    }

    private sealed class Sink : ICollectorSink
    {
        public void TopologyChanged(HostTopology topology)
        {
        }

        public void FirewallChanged(Ruleset ruleset, DateTimeOffset readAt)
        {
        }

        public void CountersChanged(CountersUpdate update)
        {
        }

        public void StatusChanged(CollectorStatus status)
        {
        }

        public int CounterWatchers => 0;
    }

    /// <summary>
    /// The duty cap bounds what reading costs, not how long it waits: reads that each take 200 ms of wall time but
    /// almost no CPU (the machine busy with other work) go on at the target rate, 4 a second. Paced by wall time at
    /// a 5 % cap, they would be 4 s apart. The status says both shares.
    /// </summary>
    [Fact]
    public async Task ReadsThatWaitButCostNothing_AreNotHeldBackByTheDutyCap()
    {
        var hostOptions = Options.Create(new DockerHostOptions { Name = "pacing-test" });
        var runner = new IdleSlowRunner(TimeSpan.FromMilliseconds(200));
        using var docker = new DockerClientBuilder().WithEndpoint(new Uri("unix:///nonexistent/netlab-pacing.sock")).WithApiVersion(Version.Parse(hostOptions.Value.DockerApiVersion)).Build();
        using var collector = new HostCollector(
            new DockerTopologyReader(docker, runner, hostOptions, NullLogger<DockerTopologyReader>.Instance),
            new HostFirewallReader(runner, hostOptions),
            docker,
            new Sink(),
            Options.Create(new CollectorOptions { TargetRateHz = 4, MaxDutyCycle = 0.05, RetryDelay = TimeSpan.FromSeconds(30) }),
            hostOptions,
            NullLogger<HostCollector>.Instance);

        // The first read of a process compiles the parser (CPU time that is not a read's cost): done before the collector starts.
        await new HostFirewallReader(runner, hostOptions).ReadAsync(FirewallBackend.Unknown);
        await collector.StartAsync(CancellationToken.None);
        await Task.Delay(TimeSpan.FromSeconds(3));
        var status = collector.Status;
        await collector.StopAsync(CancellationToken.None);

        // 12 at the target rate; paced by wall time, at most 2. Reads whose own CPU (JIT, a busy machine) is high are
        // rightly held back, so the bar sits between the two rather than at the target.
        Assert.True(status.Reads >= 4, $"{status.Reads} reads in 3 s (4 a second expected; paced by wall time, 1 or 2)");
        Assert.InRange(status.DutyCycle, 0, 0.05);
        Assert.True(status.WallDutyCycle > 0.5, $"wall share {status.WallDutyCycle:P0}: each read waited 200 ms of every 250");
        Assert.InRange(status.LastReadCpuMilliseconds, 0, 50);
        // Task.Delay may end up to a timer tick before the stopwatch says 200 ms.
        Assert.True(status.LastReadMilliseconds >= 180, $"last read took {status.LastReadMilliseconds:0.0} ms; the runner waits 200 ms");
    }
}
