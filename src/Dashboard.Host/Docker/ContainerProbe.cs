using System.Net;
using System.Text.RegularExpressions;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Dashboard.Host.Docker;

/// <summary>The result of one probe from inside a container: sent, received, and what the tool printed.</summary>
public sealed record ProbeResult(string Container, string Address, int Sent, int Received, string Output)
{
    public bool Succeeded => Received > 0;
}

/// <summary>A probe that may not run: why.</summary>
public sealed class ProbeRejectedException(string message) : Exception(message);

/// <summary>
/// Real probes from inside lab containers through the Engine API's exec (no shell): <c>ping -c N -W T ADDRESS</c>, or a
/// TCP connect with busybox <c>nc</c>. Only to addresses inside 172.16.0.0/12 (the lab's networks), at most 10 packets
/// or connections, so a probe never leaves the host's bridges and always ends.
/// </summary>
public sealed partial class ContainerProbe(IDockerClient docker)
{
    public const int MaxCount = 10;

    private static readonly IPNetwork LabRange = IPNetwork.Parse("172.16.0.0/12");

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex ContainerName();

    [GeneratedRegex(@"(\d+) packets transmitted, (\d+) (?:packets )?received")]
    private static partial Regex PingSummary();

    /// <summary>
    /// TCP connects from <paramref name="container"/> to a listener started in <paramref name="target"/> for each attempt
    /// (<c>timeout 10 nc -l -p PORT -e true</c> there, which closes at once, <c>nc -w T ADDRESS PORT</c> here with no input); a connection is a reply.
    /// </summary>
    public async Task<ProbeResult> TcpAsync(string container, string target, string address, int port, int count = 1, int timeoutSeconds = 1, CancellationToken ct = default)
    {
        Check(container, address, count);
        Check(target, address, count);
        if (port is < 1 or > 65535 || timeoutSeconds is < 1 or > 5)
        {
            throw new ProbeRejectedException("a port is 1-65535 and a timeout 1-5 s");
        }

        var p = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var t = timeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var connected = 0;
        var log = new System.Text.StringBuilder();
        for (var i = 0; i < count; i++)
        {
            // The listener lives a little longer than the connect may take, so it never outlasts the attempt by much.
            var (_, listening) = await StartExecAsync(target, ["timeout", (timeoutSeconds + 2).ToString(System.Globalization.CultureInfo.InvariantCulture), "nc", "-l", "-p", p, "-e", "true"], ct).ConfigureAwait(false);
            using (listening)
            {
                await Task.Delay(200, ct).ConfigureAwait(false);
                var (output, exitCode) = await ExecAsync(container, ["nc", "-w", t, address, p], timeoutSeconds, ct).ConfigureAwait(false);
                connected += exitCode == 0 ? 1 : 0;
                log.Append(System.Globalization.CultureInfo.InvariantCulture, $"nc -w {t} {address} {p}: exit {exitCode} {output}\n");
            }
        }

        return new ProbeResult(container, address, count, connected, log.ToString().Trim());
    }

    /// <summary>Starts a command in a container (argument list, no shell) and returns its attached output stream.</summary>
    private async Task<(string Id, MultiplexedStream Stream)> StartExecAsync(string container, IList<string> command, CancellationToken ct)
    {
        var exec = await docker.Exec.CreateContainerExecAsync(container, new ContainerExecCreateParameters { Cmd = command, AttachStdout = true, AttachStderr = true }, ct).ConfigureAwait(false);
        return (exec.ID, await docker.Exec.StartContainerExecAsync(exec.ID, new ContainerExecStartParameters(), ct).ConfigureAwait(false));
    }

    /// <summary>Runs a command in a container to its end (bounded by <paramref name="seconds"/> + 10 s): its output and exit code.</summary>
    private async Task<(string Output, long ExitCode)> ExecAsync(string container, IList<string> command, int seconds, CancellationToken ct)
    {
        var (id, stream) = await StartExecAsync(container, command, ct).ConfigureAwait(false);
        using (stream)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(seconds + 10));
            var (stdout, stderr) = await stream.ReadOutputToEndAsync(timeout.Token).ConfigureAwait(false);
            var inspect = await docker.Exec.InspectContainerExecAsync(id, ct).ConfigureAwait(false);
            return ((stdout + stderr).Trim(), inspect.ExitCode ?? -1);
        }
    }

    private static void Check(string? container, string address, int count)
    {
        if (container is null || !ContainerName().IsMatch(container))
        {
            throw new ProbeRejectedException($"'{container}' is not a container name");
        }

        if (!IPAddress.TryParse(address, out var a) || a.ToString() != address || !LabRange.Contains(a))
        {
            throw new ProbeRejectedException($"probes go only to lab addresses inside {LabRange}, not '{address}'");
        }

        if (count is < 1 or > MaxCount)
        {
            throw new ProbeRejectedException($"a probe sends 1-{MaxCount} packets");
        }
    }

    public async Task<ProbeResult> PingAsync(string container, string address, int count = 1, int timeoutSeconds = 1, CancellationToken ct = default)
    {
        Check(container, address, count);
        if (timeoutSeconds is < 1 or > 5)
        {
            throw new ProbeRejectedException("a ping waits 1-5 s");
        }

        var (stdout, _) = await ExecAsync(container, ["ping", "-c", count.ToString(System.Globalization.CultureInfo.InvariantCulture), "-W", timeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), address], count + timeoutSeconds, ct).ConfigureAwait(false);
        var m = PingSummary().Match(stdout);
        return m.Success
            ? new ProbeResult(container, address, int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), stdout)
            : new ProbeResult(container, address, 0, 0, stdout);
    }
}
