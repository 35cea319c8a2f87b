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
/// Real probes from inside lab containers through the Engine API's exec (no shell): <c>ping -c N -W 1 ADDRESS</c>.
/// Only to addresses inside 172.16.0.0/12 (the lab's networks), at most 5 packets, so a probe never leaves the host's
/// bridges and always ends.
/// </summary>
public sealed partial class ContainerProbe(IDockerClient docker)
{
    public const int MaxCount = 5;

    private static readonly IPNetwork LabRange = IPNetwork.Parse("172.16.0.0/12");

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex ContainerName();

    [GeneratedRegex(@"(\d+) packets transmitted, (\d+) (?:packets )?received")]
    private static partial Regex PingSummary();

    public async Task<ProbeResult> PingAsync(string container, string address, int count = 1, CancellationToken ct = default)
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

        var exec = await docker.Exec.CreateContainerExecAsync(container, new ContainerExecCreateParameters
        {
            Cmd = ["ping", "-c", count.ToString(System.Globalization.CultureInfo.InvariantCulture), "-W", "1", address],
            AttachStdout = true,
            AttachStderr = true,
        }, ct).ConfigureAwait(false);
        using var stream = await docker.Exec.StartContainerExecAsync(exec.ID, new ContainerExecStartParameters(), ct).ConfigureAwait(false);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(count + 10));
        var (stdout, stderr) = await stream.ReadOutputToEndAsync(timeout.Token).ConfigureAwait(false);
        var m = PingSummary().Match(stdout);
        return m.Success
            ? new ProbeResult(container, address, int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), stdout)
            : new ProbeResult(container, address, 0, 0, (stdout + stderr).Trim());
    }
}
