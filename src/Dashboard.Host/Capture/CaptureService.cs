using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Dashboard.Core.Topology;
using Dashboard.Host.Docker;
using Dashboard.Host.Processes;
using Microsoft.Extensions.Options;

namespace Dashboard.Host.Capture;

/// <summary>A capture that cannot start: the reason, in words a person can act on.</summary>
public sealed class CaptureRejectedException(string message) : Exception(message);

/// <summary>
/// Starts and tracks capture sessions. Only the interfaces of Docker's bridge networks can be captured (their bridges
/// and the host veths of their containers, read from the engine at the start; more only by the site setting
/// <see cref="DockerHostOptions.CaptureExtraInterfaces"/>), never the loopback or a NIC. A filter is compiled by
/// <c>tcpdump -d</c> on that interface first, and a filter that does not compile starts no process. At most
/// <see cref="MaxRunningSessions"/> run at once, however many requests arrive together. Ended sessions are purged with
/// their pcaps after <see cref="DockerHostOptions.CaptureRetention"/>. Every session ends when the service is disposed.
/// </summary>
public sealed partial class CaptureService(IProcessRunner runner, ITopologySource topology, IOptions<DockerHostOptions> options) : IAsyncDisposable, IDisposable, Microsoft.Extensions.Hosting.IHostedService
{
    public const int MaxFilterLength = 2_000;

    /// <summary>Running captures at most, so requests cannot pile up tcpdump processes.</summary>
    public const int MaxRunningSessions = 8;

    private readonly ConcurrentDictionary<string, CaptureSession> _sessions = new();
    private readonly StartSlots _slots = new(MaxRunningSessions);
    private readonly (string Path, FileStream? Owner) _folder = CreateDirectory(options.Value.CaptureDirectory);

    private string _dataDirectory => _folder.Path;

    /// <summary>The file in a session folder that its dashboard holds locked while it runs (an exclusive flock).</summary>
    private const string OwnerFile = ".owner";

    /// <summary>Running sessions and those ended within the retention, oldest first.</summary>
    public IReadOnlyCollection<CaptureSession> Sessions
    {
        get
        {
            Purge();
            return _sessions.Values.OrderBy(s => s.StartedAt).ToList();
        }
    }

    private static (string, FileStream?) CreateDirectory(string? configured)
    {
        if (configured is null)
        {
            return (Directory.CreateTempSubdirectory("netlab-captures-").FullName, null);
        }

        // Pcaps hold whole frames: readable by root only. A dashboard that died left its folder behind: nothing in it
        // is listed any more, so it goes (retention holds across crashes too). Another dashboard on the same data
        // folder (a replica) holds its folder's owner file locked while it runs: that folder stays. A folder is made
        // under a name no clean-up looks at, its owner file locked, and only then renamed to session-*.
        Directory.CreateDirectory(configured);
        foreach (var old in Directory.EnumerateDirectories(configured, "session-*").Concat(Directory.EnumerateDirectories(configured, ".new-*")))
        {
            RemoveIfOwnerGone(old);
        }

        var making = Directory.CreateDirectory(Path.Combine(configured, ".new-" + Guid.NewGuid().ToString("N")));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(configured, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            File.SetUnixFileMode(making.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        // .NET takes FileShare.None as an exclusive flock on Linux: the kernel releases it when this process ends, however.
        var owner = new FileStream(Path.Combine(making.FullName, OwnerFile), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        var final = Path.Combine(configured, "session-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.Move(making.FullName, final);
        return (final, owner);
    }

    /// <summary>Removes a session folder whose dashboard is gone (its owner file is not locked, or absent); one in use stays.</summary>
    private static void RemoveIfOwnerGone(string folder)
    {
        try
        {
            using (new FileStream(Path.Combine(folder, OwnerFile), FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            {
                // Opened exclusively: its dashboard is gone.
            }
        }
        catch (FileNotFoundException)
        {
            // No owner file: a folder of a dashboard from before owner files, or one being made a moment ago by a
            // dashboard that then died (a living one locks it before the folder has a session-* name).
            if (Path.GetFileName(folder).StartsWith(".new-", StringComparison.Ordinal) && Directory.GetCreationTimeUtc(folder) > DateTime.UtcNow.AddMinutes(-1))
            {
                return;
            }
        }
        catch (IOException)
        {
            // Locked: a running dashboard's (or unreadable now). Left alone.
            return;
        }

        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // Removed meanwhile by another dashboard cleaning up too, or not removable now.
        }
    }

    /// <summary>Forgets sessions that ended longer ago than the retention, and deletes their pcaps.</summary>
    public void Purge()
    {
        var before = DateTimeOffset.UtcNow - options.Value.CaptureRetention;
        foreach (var s in _sessions.Values.Where(s => s.EndedAt is { } e && e < before))
        {
            if (_sessions.TryRemove(s.Id, out _))
            {
                try
                {
                    File.Delete(s.PcapPath);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    public CaptureSession? Find(string id) => _sessions.GetValueOrDefault(id);

    /// <summary>Raised once a session is listening, so a relay can start pumping its packets to viewers.</summary>
    public event Action<CaptureSession>? SessionStarted;

    [GeneratedRegex("^[A-Za-z0-9_.@:-]{1,15}$", RegexOptions.CultureInvariant)]
    private static partial Regex InterfaceName();

    /// <summary>Null when the name is a kernel-valid interface name that exists here, else why not.</summary>
    public static string? CheckInterface(string name)
    {
        if (string.IsNullOrEmpty(name) || !InterfaceName().IsMatch(name) || name.StartsWith('-') || name is "." or "..")
        {
            return "an interface name is 1-15 characters of ASCII letters, digits, '_', '.', '-', ':' or '@'";
        }

        return Directory.Exists(Path.Combine("/sys/class/net", name)) ? null : $"interface {name} does not exist on this host";
    }

    /// <summary>Null when the interface may be captured (a Docker bridge, a container's host veth, or a configured extra), else why not.</summary>
    public async Task<string?> CheckScopeAsync(string name, CancellationToken ct = default)
    {
        if (CheckInterface(name) is { } bad)
        {
            return bad;
        }

        if (options.Value.CaptureExtraInterfaces.Contains(name, StringComparer.Ordinal))
        {
            return null;
        }

        var allowed = CaptureScope.Interfaces(await topology.ReadAsync(ct).ConfigureAwait(false));
        return allowed.Contains(name)
            ? null
            : $"only the bridges of Docker networks and their containers' host veths can be captured; {name} is neither (the loopback and the host's own interfaces carry its sessions and traffic)";
    }

    /// <summary>Null when the filter compiles for the interface (tcpdump -d), else tcpdump's own explanation.</summary>
    public async Task<string?> CheckFilterAsync(string iface, string? filter, CancellationToken ct = default)
    {
        if (string.IsNullOrWhiteSpace(filter))
        {
            return null;
        }

        if (filter.Length > MaxFilterLength || filter.Any(char.IsControl))
        {
            return $"a filter is at most {MaxFilterLength} printable characters";
        }

        var r = await runner.RunAsync("tcpdump", ["-d", "-i", iface, "--", filter], options.Value.CommandTimeout, ct).ConfigureAwait(false);
        return r.Succeeded ? null : $"the filter does not compile: {r.StdErr.Split('\n').LastOrDefault(l => l.Length > 0)?.Trim() ?? r.Message}";
    }

    public async Task<CaptureSession> StartAsync(CaptureRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.SnapLength is < 64 or > 262_144 || request.PacketLimit is < 1 || request.TimeLimit is { } t && t <= TimeSpan.Zero || request.ByteLimit is < 1024)
        {
            throw new CaptureRejectedException("snapshot length is 64-262144 bytes; packet and time limits are positive; a byte limit is at least 1024");
        }

        if (await CheckScopeAsync(request.Interface, ct).ConfigureAwait(false) is { } bad)
        {
            throw new CaptureRejectedException(bad);
        }

        using var slot = _slots.TryTake(() => _sessions.Values.Count(s => s.EndReason == CaptureEndReason.Running))
            ?? throw new CaptureRejectedException($"{MaxRunningSessions} captures are already running: stop one first");
        return await StartReservedAsync(request, slot, ct).ConfigureAwait(false);
    }

    private async Task<CaptureSession> StartReservedAsync(CaptureRequest request, IDisposable slot, CancellationToken ct)
    {
        Purge();

        if (await CheckFilterAsync(request.Interface, request.Filter, ct).ConfigureAwait(false) is { } filterError)
        {
            throw new CaptureRejectedException(filterError);
        }

        var id = Guid.NewGuid().ToString("N")[..12];
        var psi = new ProcessStartInfo("tcpdump") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-i", request.Interface, "--immediate-mode", "-w", "-", "-U", "-n", "-s", request.SnapLength.ToString(System.Globalization.CultureInfo.InvariantCulture), "-B", Math.Clamp(options.Value.CaptureBufferKiB, 256, 256 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(a);
        }

        if (request.PacketLimit is { } n)
        {
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(n.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        if (!string.IsNullOrWhiteSpace(request.Filter))
        {
            psi.ArgumentList.Add("--");
            psi.ArgumentList.Add(request.Filter);
        }

        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new CaptureRejectedException("tcpdump could not be started");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new CaptureRejectedException($"tcpdump could not be started (is it installed?): {ex.Message}");
        }

        var session = new CaptureSession(id, request, process, Path.Combine(_dataDirectory, id + ".pcap"));
        _sessions[id] = session;

        // Counted as running from here: its slot is given back now, or it would count twice and refuse others.
        slot.Dispose();
        try
        {
            await session.Listening.WaitAsync(TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            // Never leave a running tcpdump behind a failed start.
            await session.StopAsync(CaptureEndReason.Failed).ConfigureAwait(false);
            throw new CaptureRejectedException($"tcpdump did not start listening on {request.Interface} within 10 s");
        }

        SessionStarted?.Invoke(session);
        return session;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The host is stopping: every capture ends (tcpdump gets SIGINT and reports its counts).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var s in _sessions.Values.Where(s => s.EndReason == CaptureEndReason.Running))
        {
            await s.StopAsync(CaptureEndReason.ShuttingDown).ConfigureAwait(false);
        }
    }

    /// <summary>For containers disposed synchronously: the same clean-up, waited for.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    public async ValueTask DisposeAsync()
    {
        foreach (var s in _sessions.Values)
        {
            await s.DisposeAsync().ConfigureAwait(false);
        }

        _sessions.Clear();
        if (_folder.Owner is not null)
        {
            await _folder.Owner.DisposeAsync().ConfigureAwait(false);
        }

        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
