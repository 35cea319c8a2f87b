using Dashboard.Host.Netfilter;
using Dashboard.Host.Processes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Dashboard.Host.Tests.Netfilter;

/// <summary>What the trace says on hosts it cannot trace: legacy iptables, unknown iptables, no iptables.</summary>
public class TraceAvailabilityTests
{
    /// <summary>Answers every command with one fixed result, and records what was asked.</summary>
    private sealed class FixedRunner(ProcessResult result) : IProcessRunner
    {
        public List<string> Asked { get; } = [];

        public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken = default)
        {
            Asked.Add(CommandLine.Format(fileName, arguments));
            return Task.FromResult(result);
        }

        public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string standardInput, TimeSpan timeout, CancellationToken cancellationToken = default) =>
            RunAsync(fileName, arguments, timeout, cancellationToken);
    }

    private static TraceService Service(IProcessRunner runner)
    {
        var options = Options.Create(new DockerHostOptions());
        return new TraceService(runner, new IptablesRuleWriter(runner, options), new HostFirewallReader(runner, options), Dashboard.TestSupport.RealTopology.Fixed(("br-test", "172.18.0.0/24")), options, NullLogger<TraceService>.Instance);
    }

    [Theory]
    [InlineData("iptables v1.8.9 (legacy)", "legacy iptables")]
    [InlineData("iptables v1.4.21", "tracing needs iptables-nft")]
    public async Task NotIptablesNft_SaysTracingIsUnavailable_AndStartsNothing(string version, string expected)
    {
        var runner = new FixedRunner(new ProcessResult(0, version + "\n", "", TimeSpan.Zero));
        await using var traces = Service(runner);
        Assert.Contains(expected, await traces.UnavailableReasonAsync(), StringComparison.Ordinal);
        var ex = await Assert.ThrowsAsync<TraceRejectedException>(() => traces.StartAsync(new TraceRequest("172.18.0.2", "172.18.0.3")));
        Assert.StartsWith("tracing is unavailable: ", ex.Message, StringComparison.Ordinal);
        Assert.Equal(["iptables -V", "iptables -V"], runner.Asked);
        Assert.Empty(traces.Sessions);
    }

    [Theory]
    [InlineData("192.0.2.10", "172.18.0.3", "192.0.2.10 is not")]
    [InlineData("172.18.0.2", "198.51.100.7", "198.51.100.7 is not")]
    [InlineData("10.1.2.3", "198.51.100.7", "10.1.2.3 and 198.51.100.7 are not")]
    public async Task Start_AddressOutsideDockerNetworks_IsRefused_AndStartsNothing(string source, string destination, string expected)
    {
        var runner = new FixedRunner(new ProcessResult(0, "iptables v1.8.9 (nf_tables)\n", "", TimeSpan.Zero));
        await using var traces = Service(runner);

        var ex = await Assert.ThrowsAsync<TraceRejectedException>(() => traces.StartAsync(new TraceRequest(source, destination)));

        Assert.Contains("only addresses inside Docker networks can be traced", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Empty(runner.Asked);
        Assert.Empty(traces.Sessions);
    }
}
