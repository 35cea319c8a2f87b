using Dashboard.Host.Processes;

namespace Dashboard.TestSupport;

/// <summary>
/// A second Docker engine run by <c>scripts/lab-engine.sh</c> in a network namespace of its own (Docker 26.1.5 or
/// 28.5.2 from Debian's archive): its socket, namespace and dockerd's pid (whose network and mount namespaces an agent
/// enters). Starting is idempotent: an engine already running is reused.
/// </summary>
public sealed record LabEngine(string Version, string Socket, string Namespace, int Pid)
{
    public string DockerHost => "unix://" + Socket;

    public static async Task<LabEngine> StartAsync(string version)
    {
        var r = await new ProcessRunner().RunAsync("bash", [Path.Combine(TestPaths.RepoRoot, "scripts", "lab-engine.sh"), "start", version], TimeSpan.FromMinutes(5));
        if (!r.Succeeded)
        {
            throw new InvalidOperationException($"scripts/lab-engine.sh start {version}: {r.Message}\n{r.StdOut}");
        }

        var name = version.Replace(".", "", StringComparison.Ordinal);
        var pid = int.Parse((await File.ReadAllTextAsync($"/run/netlab-engine-{name}.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        return new LabEngine(version, $"/run/netlab-engine-{name}.sock", "nlengine" + name, pid);
    }
}

/// <summary>Runs every command inside a network namespace (<c>ip netns exec NS program args…</c>): iptables and ip of an engine's namespace.</summary>
public sealed class NetnsProcessRunner(string ns) : IProcessRunner
{
    private readonly ProcessRunner _inner = new();

    public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _inner.RunAsync("ip", ["netns", "exec", ns, fileName, .. arguments], timeout, cancellationToken);

    public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string standardInput, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _inner.RunAsync("ip", ["netns", "exec", ns, fileName, .. arguments], standardInput, timeout, cancellationToken);
}
