using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Dashboard.Core.Changes;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Docker;
using Dashboard.Host.Processes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Dashboard.Host.Netfilter;

/// <summary>
/// A flow to trace: packets from <see cref="Source"/> to <see cref="Destination"/>, and the replies from the destination
/// to the source and to each of <see cref="ReplyDestinations"/> (where a reply goes when the request was masqueraded,
/// e.g. the destination network's gateway).
/// </summary>
public sealed record TraceRequest(string Source, string Destination, string Protocol = "icmp", IReadOnlyList<string>? ReplyDestinations = null, TimeSpan? TimeLimit = null, SessionOwner? Owner = null)
{
    public SessionOwner OwnerOrSystem => Owner ?? SessionOwner.System;

    public static readonly IReadOnlyList<string> Protocols = ["icmp", "tcp", "udp", "all"];

    /// <summary>Every problem with the request, in words; empty when it can be traced.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        foreach (var (what, value) in new[] { ("source", Source), ("destination", Destination) }.Concat((ReplyDestinations ?? []).Select(r => ("reply destination", r))))
        {
            if (!IsIpv4(value))
            {
                errors.Add($"the {what} must be one IPv4 address (e.g. 172.18.0.2), not '{(value?.Length > 40 ? value[..40] + "…" : value)}'");
            }
        }

        if (!Protocols.Contains(Protocol))
        {
            errors.Add($"the protocol must be one of {string.Join(", ", Protocols)}");
        }

        if ((ReplyDestinations?.Count ?? 0) > 4)
        {
            errors.Add("at most 4 reply destinations");
        }

        if (TimeLimit is { } t && (t <= TimeSpan.Zero || t > TraceService.MaxDuration))
        {
            errors.Add($"a trace lasts at most {TraceService.MaxDuration.TotalMinutes:0} minutes");
        }

        return errors;
    }

    /// <summary>The address pairs TRACE rules are inserted for: the request, then each reply direction.</summary>
    public IReadOnlyList<(string Source, string Destination)> Pairs() =>
        new[] { (Source, Destination), (Destination, Source) }.Concat((ReplyDestinations ?? []).Select(r => (Destination, r))).Distinct().ToList();

    private static bool IsIpv4(string? s) =>
        s is { Length: <= 15 } && IPAddress.TryParse(s, out var a) && a.AddressFamily == AddressFamily.InterNetwork && a.ToString() == s;
}

/// <summary>A trace that cannot start: why, in words a person can act on.</summary>
public sealed class TraceRejectedException(string message) : Exception(message);

/// <summary>One running trace: its TRACE rules, its <c>xtables-monitor --trace</c> process, and the packets it has seen.</summary>
public sealed class TraceSession : ITraceSession
{
    private readonly object _gate = new();
    private readonly XtablesTraceParser _parser;

    internal TraceSession(string id, TraceRequest request, string tagPrefix)
    {
        Id = id;
        Request = request;
        Tag = tagPrefix + id;
        var pairs = request.Pairs().ToHashSet();
        _parser = new XtablesTraceParser(accept: (s, d) => pairs.Contains((s, d)));
        StartedAt = DateTimeOffset.UtcNow;
    }

    public string Id { get; }

    public TraceRequest Request { get; }

    /// <summary>The comment on this trace's rules (<c>netlab:trace-&lt;id&gt;</c>).</summary>
    public string Tag { get; }

    public DateTimeOffset StartedAt { get; }

    public DateTimeOffset? EndedAt { get; private set; }

    public string? EndMessage { get; private set; }

    private readonly List<RuleCommandResult> _commands = [];

    /// <summary>The commands that inserted and removed this trace's rules, with their results.</summary>
    public IReadOnlyList<RuleCommandResult> Commands
    {
        get
        {
            lock (_gate)
            {
                return [.. _commands];
            }
        }
    }

    internal void Record(IEnumerable<RuleCommandResult> results)
    {
        lock (_gate)
        {
            _commands.AddRange(results);
        }
    }

    /// <summary>Marks the session ended; false when it already was.</summary>
    internal bool TryEnd(string message)
    {
        lock (_gate)
        {
            if (EndedAt is not null)
            {
                return false;
            }

            EndedAt = DateTimeOffset.UtcNow;
            EndMessage = message;
            return true;
        }
    }

    public bool IsRunning => EndedAt is null;

    /// <summary>True once a stopped trace's rules are removed and its monitor has exited.</summary>
    public bool IsCleanedUp { get; internal set; }

    public IReadOnlyList<TracedPacket> Packets
    {
        get
        {
            lock (_gate)
            {
                return [.. _parser.Packets];
            }
        }
    }

    public long UnparsedLines => _parser.UnparsedLines;

    internal Process? Process { get; set; }

    /// <summary>The trace's claim file, held locked while it runs (another replica's clean-up leaves its rules alone).</summary>
    internal FileStream? Claim { get; set; }

    internal Task Reader { get; set; } = Task.CompletedTask;

    internal CancellationTokenSource Stop { get; } = new();

    internal TracedPacket? Feed(string line, Func<string, string, string, int?> positionOf)
    {
        lock (_gate)
        {
            return _parser.Feed(line, DateTimeOffset.UtcNow, positionOf);
        }
    }

    internal TracedPacket? Resolve(string key, Func<string, string, string, int?> positionOf)
    {
        lock (_gate)
        {
            return _parser.Resolve(key, positionOf);
        }
    }
}

/// <summary>
/// Verdict traces: a TRACE rule in raw PREROUTING limited to one flow (and its replies), tagged as the dashboard's own,
/// and <c>xtables-monitor --trace</c> reporting each marked packet's path rule by rule. Only on iptables-nft hosts
/// (legacy iptables logs TRACE to the kernel log instead). The rules go when the trace stops, when the dashboard stops,
/// and, if a crash left one behind, at the next start; with replicas (one instance id, one data folder) a running trace
/// holds a claim file there, so another replica's start leaves its rules alone, and the duty holder removes those of a
/// replica that died mid-trace (<see cref="RemoveLeftoversAsync"/>).
/// </summary>
public sealed class TraceService(IProcessRunner runner, IptablesRuleWriter writer, HostFirewallReader firewall, ITopologySource topology, IOptions<DockerHostOptions> options, ILogger<TraceService> logger) : IHostedService, IAsyncDisposable, IDisposable
{
    public const string TagPrefix = RuleTag.Prefix + "trace-";
    public const int MaxRunning = 4;
    public static readonly TimeSpan MaxDuration = TimeSpan.FromMinutes(30);
    public static readonly TimeSpan DefaultDuration = TimeSpan.FromMinutes(5);

    private readonly DockerHostOptions _options = options.Value;

    /// <summary>
    /// Where running traces are claimed, beside the captures in the data folder replicas share: a file per trace, named
    /// by its tag, held with an exclusive lock (FileShare.None is a flock on Linux, released by the kernel when the
    /// process ends, however). Replicas share the instance id, so a trace's rules are another replica's leftovers only
    /// when nobody holds its claim. Null (no data folder configured): every unlisted rule of this instance is a leftover.
    /// </summary>
    private readonly string? _claims = options.Value.CaptureDirectory is { } captures ? Path.Combine(captures, "trace-claims") : null;
    private readonly ConcurrentDictionary<string, TraceSession> _sessions = new();
    private readonly StartSlots _slots = new(MaxRunning);

    /// <summary>This instance's trace tags start with this: <c>netlab:trace-&lt;instance&gt;-</c>.</summary>
    public string InstanceTagPrefix { get; } = RuleTag.For($"trace-{CheckInstance(options.Value.InstanceId)}-");
    private readonly SemaphoreSlim _locatorGate = new(1, 1);
    private TraceRuleLocator? _locator;
    private long? _locatorReadAt; // Stopwatch timestamp: a wall-clock step must not hold the locator back

    /// <summary>A packet of a trace gained a step (called on the trace's reader thread).</summary>
    public event Action<TraceSession, TracedPacket>? PacketTraced;

    /// <summary>A trace started or ended.</summary>
    public event Action<TraceSession>? TraceChanged;

    /// <summary>Leftover TRACE rules removed at start-up (from a dashboard that did not stop cleanly).</summary>
    public IReadOnlyList<RuleCommandResult> LeftoversRemoved { get; private set; } = [];

    public IReadOnlyCollection<TraceSession> Sessions => _sessions.Values.OrderBy(s => s.StartedAt).ToList();

    public TraceSession? Find(string id) => _sessions.GetValueOrDefault(id);

    /// <summary>Null when tracing works on this host, else why it does not.</summary>
    public async Task<string?> UnavailableReasonAsync(CancellationToken ct = default)
    {
        ProcessResult version;
        try
        {
            version = await runner.RunAsync(_options.Iptables, ["-V"], _options.CommandTimeout, ct).ConfigureAwait(false);
        }
        catch (ProcessFailedException ex)
        {
            return $"iptables is not available: {ex.Message}";
        }

        if (version.StdOut.Contains("legacy", StringComparison.Ordinal))
        {
            return "this host runs legacy iptables: the kernel writes TRACE output to its log there, and the per-packet trace needs iptables-nft (xtables-monitor --trace). Captures still work.";
        }

        if (!version.StdOut.Contains("nf_tables", StringComparison.Ordinal))
        {
            return $"unrecognised iptables ({version.StdOut.Trim()}): tracing needs iptables-nft";
        }

        return FindOnPath(_options.XtablesMonitor) is null ? $"{_options.XtablesMonitor} is not installed (Debian package iptables)" : null;
    }

    public async Task<TraceSession> StartAsync(TraceRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Validate() is { Count: > 0 } errors)
        {
            throw new TraceRejectedException(string.Join("; ", errors));
        }

        // Only lab traffic is traced: the host's real flows are nobody's experiment.
        var host = await topology.ReadAsync(ct).ConfigureAwait(false);
        var outside = request.Pairs().SelectMany(p => new[] { p.Source, p.Destination }).Distinct().Where(a => !CaptureScope.IsDockerAddress(host, a)).ToList();
        if (outside.Count > 0)
        {
            throw new TraceRejectedException($"only addresses inside Docker networks can be traced; {string.Join(" and ", outside)} {(outside.Count == 1 ? "is" : "are")} not in any network's subnet");
        }

        if (await UnavailableReasonAsync(ct).ConfigureAwait(false) is { } why)
        {
            throw new TraceRejectedException("tracing is unavailable: " + why);
        }

        using var slot = _slots.TryTake(() => _sessions.Values.Count(s => s.IsRunning))
            ?? throw new TraceRejectedException($"{MaxRunning} traces are already running: stop one first");
        return await StartReservedAsync(request, slot, ct).ConfigureAwait(false);
    }

    private async Task<TraceSession> StartReservedAsync(TraceRequest request, IDisposable slot, CancellationToken ct)
    {
        var session = new TraceSession(Guid.NewGuid().ToString("N")[..10], request, InstanceTagPrefix);
        try
        {
            session.Claim = Claim(session.Tag);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new TraceRejectedException($"the trace could not be claimed in the data folder ({_claims}): {ex.Message}");
        }

        // The monitor first, so the first traced packet is not missed.
        var psi = new ProcessStartInfo(_options.XtablesMonitor) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("--trace");
        psi.ArgumentList.Add("-4");
        try
        {
            session.Process = Process.Start(psi) ?? throw new TraceRejectedException($"{_options.XtablesMonitor} could not be started");
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or TraceRejectedException)
        {
            // No rule was inserted: the claim goes with the trace.
            ReleaseClaim(session, delete: true);
            throw ex as TraceRejectedException ?? new TraceRejectedException($"{_options.XtablesMonitor} could not be started: {ex.Message}");
        }

        session.Reader = Task.Run(() => ReadAsync(session));
        _sessions[session.Id] = session;

        // Counted as running from here: its slot is given back now, or it would count twice and refuse others.
        slot.Dispose();
        try
        {
            foreach (var (src, dst) in request.Pairs())
            {
                // Not cancellable: a rule half-inserted when the caller went away would be left behind.
                var spec = new RuleSpec { Table = "raw", Chain = "PREROUTING", Position = 1, Source = src, Destination = dst, Protocol = request.Protocol == "all" ? null : request.Protocol, Target = "TRACE", Tag = session.Tag };
                var result = await writer.InsertAsync(spec, CancellationToken.None).ConfigureAwait(false);
                session.Record([result]);
                if (!result.Succeeded)
                {
                    throw new TraceRejectedException($"the TRACE rule could not be inserted ({result.CommandLine}): {result.Message}");
                }
            }

            // The trace's own rules are now part of the path: read the ruleset again so they get their positions.
            await RefreshLocatorAsync(force: true, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Whatever went wrong after the monitor started: its rules are removed and its slot freed, never left on.
            await EndAsync(session, $"failed to start: {ex.Message}").ConfigureAwait(false);
            throw ex as TraceRejectedException ?? new TraceRejectedException($"the trace could not be started: {ex.Message}");
        }

        _ = Task.Delay(request.TimeLimit ?? DefaultDuration, session.Stop.Token)
            .ContinueWith(t => t.IsCompletedSuccessfully ? EndAsync(session, "time limit reached") : Task.CompletedTask, TaskScheduler.Default);
        TraceChanged?.Invoke(session);
        return session;
    }

    /// <summary>Stops a trace: its rules are removed (by their tag) and its monitor ends.</summary>
    public Task StopAsync(TraceSession session) => EndAsync(session, "stopped");

    private async Task EndAsync(TraceSession session, string message)
    {
        if (!session.TryEnd(message))
        {
            return;
        }

        await session.Stop.CancelAsync().ConfigureAwait(false);
        TraceChanged?.Invoke(session);
        var removed = false;
        try
        {
            var results = await writer.DeleteTaggedAsync(session.Tag).ConfigureAwait(false);
            session.Record(results);
            removed = results.All(r => r.Succeeded);
        }
        catch (Exception ex) when (ex is ProcessFailedException or RulesetFormatException)
        {
            logger.LogError(ex, "TRACE rules {Tag} could not be removed; they are removed at the next start", session.Tag);
            session.Record([new RuleCommandResult(false, $"remove rules tagged {session.Tag}", $"{ex.Message}; removed at the next start")]);
        }

        // A moment for the last packets' lines before the monitor goes.
        await Task.Delay(200).ConfigureAwait(false);
        try
        {
            if (session.Process is { HasExited: false } p)
            {
                p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync().ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException)
        {
        }

        await session.Reader.ConfigureAwait(false);
        session.Process?.Dispose();
        // Ended: its claim is let go. Rules that could not be removed keep their (unlocked) claim file: leftovers for the
        // duty holder's next clean-up.
        ReleaseClaim(session, delete: removed);

        session.IsCleanedUp = true;
        TraceChanged?.Invoke(session);
    }

    private async Task ReadAsync(TraceSession session)
    {
        var stdout = session.Process!.StandardOutput;
        try
        {
            while (await stdout.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                var packet = session.Feed(line, PositionOf);
                if (packet is null)
                {
                    continue;
                }

                if (packet.Steps.Count > 0 && packet.Steps[^1] is { Kind: TraceStepKind.Rule, Position: null, RuleText: not null })
                {
                    // A rule added since the last read: read the ruleset again (at most once a second) and place it.
                    await RefreshLocatorAsync(force: false, CancellationToken.None).ConfigureAwait(false);
                    packet = session.Resolve(packet.Key, PositionOf) ?? packet;
                }

                PacketTraced?.Invoke(session, packet);
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            logger.LogDebug(ex, "trace {Id} reader ended", session.Id);
        }

        if (session.IsRunning)
        {
            var stderr = await session.Process.StandardError.ReadToEndAsync().ConfigureAwait(false);
            _ = EndAsync(session, $"{_options.XtablesMonitor} ended: {stderr.Trim()}");
        }
    }

    private int? PositionOf(string table, string chain, string text) => _locator?.PositionOf(table, chain, text);

    private async Task RefreshLocatorAsync(bool force, CancellationToken ct)
    {
        if (!force && _locatorReadAt is { } readAt && System.Diagnostics.Stopwatch.GetElapsedTime(readAt) < TimeSpan.FromSeconds(1) || !await _locatorGate.WaitAsync(TimeSpan.FromSeconds(5), ct).ConfigureAwait(false))
        {
            return;
        }

        try
        {
            var snapshot = await firewall.ReadAsync(FirewallBackend.IptablesNft, ct).ConfigureAwait(false);
            _locator = new TraceRuleLocator(snapshot.Ruleset);
            _locatorReadAt = System.Diagnostics.Stopwatch.GetTimestamp();
        }
        catch (FirewallUnavailableException ex)
        {
            logger.LogWarning(ex, "ruleset not read for trace positions");
        }
        finally
        {
            _locatorGate.Release();
        }
    }

    /// <summary>
    /// Removes TRACE rules a previous run of this instance left behind (only rules tagged <c>netlab:trace-&lt;instance&gt;-</c>;
    /// another dashboard's traces on the same host are left alone, and so are those a live replica of this one claims).
    /// Run at start-up, and by the replica holding the duties every so often (a replica killed mid-trace leaves its rules).
    /// </summary>
    /// <param name="ct">Cancels the clean-up.</param>
    /// <param name="onlyAbandonedClaims">
    /// Remove only rules whose claim file is left and unlocked (a replica that died mid-trace): the duty holder's
    /// periodic clean-up, which must not take a rule without a claim file for a leftover (a replica whose data folder
    /// is not this one's has its claims elsewhere). Without it (start-up): every rule of this instance nobody claims.
    /// </param>
    public async Task<IReadOnlyList<RuleCommandResult>> RemoveLeftoversAsync(CancellationToken ct = default, bool onlyAbandonedClaims = false)
    {
        var running = _sessions.Values.Where(s => s.IsRunning).Select(s => s.Tag).ToHashSet();

        // Decided once per tag (a trace has a rule per direction, all with its tag); claim files go only after their rules.
        var decided = new Dictionary<string, bool>(StringComparer.Ordinal);
        bool Leftover(string comment)
        {
            if (!comment.StartsWith(InstanceTagPrefix, StringComparison.Ordinal) || running.Contains(comment))
            {
                return false;
            }

            if (!decided.TryGetValue(comment, out var abandoned))
            {
                decided[comment] = abandoned = Abandoned(comment, onlyAbandonedClaims);
            }

            return abandoned;
        }

        var removed = await writer.DeleteTaggedWhereAsync(Leftover, ct).ConfigureAwait(false);
        foreach (var tag in decided.Where(d => d.Value).Select(d => d.Key))
        {
            if (_claims is not null && removed.Where(r => r.CommandLine.Contains(tag, StringComparison.Ordinal)).All(r => r.Succeeded) && tag.IndexOfAny(['/', '\0']) < 0)
            {
                TryDelete(ClaimPath(tag));
            }
        }

        foreach (var r in removed)
        {
            logger.LogWarning("leftover TRACE rule removed: {Command} ({Result})", r.CommandLine, r.Message);
        }

        return removed;
    }

    async Task IHostedService.StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            LeftoversRemoved = await RemoveLeftoversAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ProcessFailedException or RulesetFormatException)
        {
            logger.LogWarning(ex, "leftover TRACE rules not checked");
        }
    }

    async Task IHostedService.StopAsync(CancellationToken cancellationToken) => await DisposeAsync().ConfigureAwait(false);

    public async ValueTask DisposeAsync()
    {
        foreach (var s in _sessions.Values.Where(s => s.IsRunning))
        {
            await EndAsync(s, "the dashboard stopped").ConfigureAwait(false);
        }
    }

    /// <summary>For containers disposed synchronously: the same clean-up, waited for.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private FileStream? Claim(string tag)
    {
        if (_claims is null)
        {
            return null;
        }

        Directory.CreateDirectory(_claims);
        return new FileStream(ClaimPath(tag), FileMode.Create, FileAccess.ReadWrite, FileShare.None);
    }

    private string ClaimPath(string tag) => Path.Combine(_claims!, tag[RuleTag.Prefix.Length..]);

    private void ReleaseClaim(TraceSession session, bool delete)
    {
        if (session.Claim is not { } claim)
        {
            return;
        }

        session.Claim = null;
        claim.Dispose();
        if (delete)
        {
            TryDelete(claim.Name);
        }
    }

    /// <summary>
    /// Whether the trace tagged <paramref name="tag"/> is nobody's now: its claim file is not locked by a live process
    /// (another replica), or (unless <paramref name="onlyAbandonedClaims"/>) it has none.
    /// </summary>
    private bool Abandoned(string tag, bool onlyAbandonedClaims)
    {
        if (_claims is null || tag.Length <= RuleTag.Prefix.Length || tag.IndexOfAny(['/', '\0']) >= 0)
        {
            return !onlyAbandonedClaims;
        }

        var path = ClaimPath(tag);
        try
        {
            using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            {
                // Opened exclusively: whoever claimed it is gone.
            }
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return !onlyAbandonedClaims;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Locked by a live replica (or not ours to open): left alone.
            return false;
        }

        return true;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Another replica cleaning up deleted it first, or it is not ours to delete: a later clean-up looks again.
        }
    }

    private static string CheckInstance(string id) =>
        id is { Length: >= 1 and <= 16 } && id.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c))
            ? id
            : throw new ArgumentException($"Host:InstanceId must be 1-16 lowercase letters and digits, not '{id}'");

    private static string? FindOnPath(string program) =>
        Path.IsPathRooted(program) ? (File.Exists(program) ? program : null)
        : (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':').Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);
}
