using Dashboard.Host.Docker;
using Dashboard.Host.Processes;
using Docker.DotNet;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Dashboard.Host.Tests.Docker;

/// <summary>
/// A second engine in a mount namespace of its own keeps its containers' sandbox keys as mounts there: from the
/// dashboard's namespace the file exists, and <c>nsenter --net=KEY</c> fails with "Invalid argument" (seen with
/// Docker 28.5.2 run by scripts/lab-engine.sh). The reader then enters <c>/proc/PID/ns/net</c> instead.
/// </summary>
public sealed class SandboxKeyFallbackTests : IDisposable
{
    private const string Links = """[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"link_type":"loopback"},{"ifindex":2,"link_index":9,"ifname":"eth0","flags":["UP"],"link_type":"ether","address":"02:42:ac:1c:01:02"}]""";

    private readonly string _sandboxKey = Path.GetTempFileName();

    public void Dispose() => File.Delete(_sandboxKey);

    /// <summary>nsenter as it answers from outside the engine's mount namespace: the sandbox key is not a namespace; the process's is.</summary>
    private sealed class OutsideTheEnginesMounts(string sandboxKey, bool procWorks) : IProcessRunner
    {
        public List<string> Entered { get; } = [];

        public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken = default)
        {
            var ns = arguments[0]["--net=".Length..];
            Entered.Add(ns);
            return Task.FromResult(ns == sandboxKey || !procWorks
                ? new ProcessResult(1, "", $"nsenter: reassociate to namespace 'ns/net' failed: Invalid argument\n", TimeSpan.Zero)
                : new ProcessResult(0, Links, "", TimeSpan.Zero));
        }

        public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string standardInput, TimeSpan timeout, CancellationToken cancellationToken = default) =>
            RunAsync(fileName, arguments, timeout, cancellationToken);
    }

    private static DockerTopologyReader Reader(IProcessRunner runner, out IDisposable client)
    {
        var options = Options.Create(new DockerHostOptions { Name = "fallback-test" });
        var docker = new DockerClientBuilder().WithEndpoint(new Uri("unix:///nonexistent/netlab-fallback.sock")).WithApiVersion(Version.Parse(options.Value.DockerApiVersion)).Build();
        client = docker;
        return new DockerTopologyReader(docker, runner, options, NullLogger<DockerTopologyReader>.Instance);
    }

    [Fact]
    public async Task ASandboxKeyThatCannotBeEntered_FallsBackToTheProcessNamespace()
    {
        var runner = new OutsideTheEnginesMounts(_sandboxKey, procWorks: true);
        var reader = Reader(runner, out var client);
        using (client)
        {
            var warnings = new List<string>();
            var links = await reader.ReadContainerLinksAsync("c1", _sandboxKey, 4242, warnings, CancellationToken.None);
            Assert.Equal([_sandboxKey, "/proc/4242/ns/net"], runner.Entered);
            Assert.Equal(["lo", "eth0"], links.Select(l => l.Name));
            Assert.Empty(warnings);
        }
    }

    [Fact]
    public async Task WhenNeitherCanBeEntered_TheWarningNamesBoth()
    {
        var runner = new OutsideTheEnginesMounts(_sandboxKey, procWorks: false);
        var reader = Reader(runner, out var client);
        using (client)
        {
            var warnings = new List<string>();
            Assert.Empty(await reader.ReadContainerLinksAsync("c1", _sandboxKey, 4242, warnings, CancellationToken.None));
            var warning = Assert.Single(warnings);
            Assert.Contains(_sandboxKey + ": nsenter: reassociate to namespace 'ns/net' failed: Invalid argument", warning, StringComparison.Ordinal);
            Assert.Contains("/proc/4242/ns/net: nsenter", warning, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task NoSandboxKeyFile_GoesStraightToTheProcessNamespace()
    {
        var runner = new OutsideTheEnginesMounts(_sandboxKey, procWorks: true);
        var reader = Reader(runner, out var client);
        using (client)
        {
            await reader.ReadContainerLinksAsync("c1", "/nonexistent/netlab/sandbox", 4242, [], CancellationToken.None);
            Assert.Equal(["/proc/4242/ns/net"], runner.Entered);
        }
    }
}
