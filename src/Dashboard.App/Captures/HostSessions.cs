using System.Globalization;
using Dashboard.Data;
using Dashboard.Host;
using Dashboard.Host.Capture;
using Dashboard.Host.Netfilter;
using Dashboard.App.Audit;
using Dashboard.App.Access;
using Dashboard.App.Labs;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Dashboard.App.Captures;

/// <summary>Configuration section "Capture": the limits a capture gets when its starter names none, and the most it may ask for.</summary>
public sealed class CaptureLimitsOptions
{
    public const string Section = "Capture";

    public long DefaultPacketLimit { get; set; } = 100_000;
    public long MaxPacketLimit { get; set; } = 10_000_000;
    public double DefaultTimeLimitSeconds { get; set; } = 600;
    public double MaxTimeLimitSeconds { get; set; } = 4 * 3600;
    public long DefaultByteLimit { get; set; } = 100L * 1024 * 1024;
    public long MaxByteLimit { get; set; } = 2L * 1024 * 1024 * 1024;
}

/// <summary>A capture as a person or a script asks for it; absent limits take the configured defaults.</summary>
public sealed record CaptureStart(string? Interface, string? Filter, int? SnapLength = null, long? PacketLimit = null, double? TimeLimitSeconds = null, long? ByteLimit = null);

/// <summary>A trace as asked for.</summary>
public sealed record TraceStart(string? Source, string? Destination, string? Protocol, IReadOnlyList<string>? ReplyDestinations, double? TimeLimitSeconds);

/// <summary>
/// One home for host-wide captures and traces, used by the Captures page, the API and the hub alike, for this
/// dashboard's own host and for every agent's: who may start, see, download and stop them (see
/// <see cref="SessionViewer"/>), with the Operator role checked in the database on every call (in a lab that may use the
/// host), limits that always apply, and an audit entry that says what happened: started with the host, interface,
/// filter and limits, or refused with the reason. On an agent's host the agent runs the session with the same Host-layer
/// checks (its Docker bridges and veths, filters tcpdump compiles, its networks' addresses) and sends its packets as they
/// come; a capture's pcap is fetched from it when someone downloads it. A host is named by its name; null (or the local
/// host's name) is this dashboard's own.
/// </summary>
public sealed class HostSessions(
    CaptureService captures,
    TraceService traces,
    LabAccess access,
    AuditLog audit,
    IDbContextFactory<DashboardDbContext> dbs,
    IOptions<CaptureLimitsOptions> limits,
    IOptions<Dashboard.Host.DockerHostOptions> hostOptions,
    Dashboard.App.Hosts.HostDirectory directory,
    Dashboard.App.Hosts.IAgentCommands agents)
{
    /// <summary>How long an agent has to start or stop a session (tcpdump must say it listens within 10 s there).</summary>
    public static readonly TimeSpan AgentDeadline = TimeSpan.FromSeconds(30);

    public Task<SessionViewer> ViewerAsync(Actor actor, CancellationToken ct = default) => SessionViewer.LoadAsync(dbs, actor, ct);

    /// <summary>The agent host named, or null for this dashboard's own; an unknown name is a 404 (<see cref="LabAccessException"/>).</summary>
    private Dashboard.App.Hosts.RemoteHost? Remote(string? host) =>
        host is null || host == directory.Local.Host ? null
        : directory.Remote(host) ?? throw new LabAccessException(Dashboard.App.Access.AccessDenial.NotFound, directory.NoSuchHost(host));

    private string HostName(Dashboard.App.Hosts.RemoteHost? remote) => remote?.Name ?? directory.Local.Host;

    public async Task<IReadOnlyList<ICaptureSession>> CapturesAsync(Actor actor, string? host = null, CancellationToken ct = default)
    {
        var remote = Remote(host);
        var viewer = await ViewerAsync(actor, ct);
        IEnumerable<ICaptureSession> all = remote is null ? captures.Sessions : remote.Captures;
        return [.. all.Where(s => viewer.CanSee(s.Request.OwnerOrSystem))];
    }

    /// <summary>A capture the actor may see; 404 otherwise (another's capture is not disclosed).</summary>
    public async Task<ICaptureSession> CaptureAsync(Actor actor, string? host, string id, CancellationToken ct = default)
    {
        var remote = Remote(host);
        var viewer = await ViewerAsync(actor, ct);
        ICaptureSession? found = remote is null ? captures.Find(id) : remote.FindCapture(id);
        return found is { } s && viewer.CanSee(s.Request.OwnerOrSystem) ? s : throw new LabAccessException(Dashboard.App.Access.AccessDenial.NotFound, $"no capture {Cut(id)} of yours");
    }

    public async Task<ICaptureSession> StartCaptureAsync(Actor actor, string? host, CaptureStart start, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(start);
        var remote = Remote(host);
        var iface = start.Interface ?? "";
        var on = remote is null ? "" : $" on host {remote.Name}";
        var what = $"capture{on} on {Cut(iface)} filter '{Cut(start.Filter ?? "", 200)}'";
        await access.RequireHostOperatorAsync(actor, "capture.started", Cut(iface), HostName(remote), ct);
        ICaptureSession session;
        try
        {
            var l = limits.Value;
            var request = new CaptureRequest(
                iface,
                string.IsNullOrWhiteSpace(start.Filter) ? null : start.Filter.Trim(),
                start.SnapLength ?? 262_144,
                Limit(start.PacketLimit, l.DefaultPacketLimit, l.MaxPacketLimit, "packet limit"),
                TimeSpan.FromSeconds(Limit(start.TimeLimitSeconds, l.DefaultTimeLimitSeconds, l.MaxTimeLimitSeconds, "time limit (seconds)")),
                Limit(start.ByteLimit, l.DefaultByteLimit, l.MaxByteLimit, "byte limit"),
                new SessionOwner(actor.UserId, actor.Name));
            session = remote is null ? await captures.StartAsync(request, ct) : await StartRemoteCaptureAsync(remote, request, ct);
        }
        catch (Exception ex) when (ex is CaptureRejectedException or Dashboard.App.Hosts.HostUnavailableException or OperationCanceledException)
        {
            await audit.WriteAsync(actor, "capture.refused", Cut(iface), $"{what}: {ex.Message}", succeeded: false, host: HostName(remote), ct: CancellationToken.None);
            throw;
        }

        var extra = remote is null && hostOptions.Value.CaptureExtraInterfaces.Contains(iface, StringComparer.Ordinal) ? " (an interface the site allows beyond Docker's)" : "";
        await audit.WriteAsync(actor, "capture.started", session.Id,
            string.Create(CultureInfo.InvariantCulture, $"{what}{extra}; limits {session.Request.PacketLimit} packets, {session.Request.TimeLimit?.TotalSeconds} s, {session.Request.ByteLimit} bytes"),
            host: HostName(remote), ct: CancellationToken.None);
        return session;
    }

    /// <summary>
    /// The checks this dashboard can make of an agent host's capture (the interface among that host's Docker bridges and
    /// container veths as its agent reports them, the filter's length), then the agent's start; the agent checks again.
    /// </summary>
    private async Task<ICaptureSession> StartRemoteCaptureAsync(Dashboard.App.Hosts.RemoteHost remote, CaptureRequest request, CancellationToken ct)
    {
        if (request.SnapLength is < 64 or > 262_144)
        {
            throw new CaptureRejectedException("snapshot length is 64-262144 bytes");
        }

        if (request.Filter is { } f && (f.Length > CaptureService.MaxFilterLength || f.Any(char.IsControl)))
        {
            throw new CaptureRejectedException($"a filter is at most {CaptureService.MaxFilterLength} printable characters");
        }

        if (remote.Feed.Topology is not { } topology || !Dashboard.Core.Topology.CaptureScope.Interfaces(topology).Contains(request.Interface))
        {
            throw new CaptureRejectedException($"only the bridges of host {remote.Name}'s Docker networks and their containers' host veths can be captured there; '{Cut(request.Interface)}' is neither (as its agent last reported)");
        }

        if (remote.RunningCaptures >= CaptureService.MaxRunningSessions)
        {
            throw new CaptureRejectedException($"{CaptureService.MaxRunningSessions} captures already run on host {remote.Name}: stop one first");
        }

        var session = new Dashboard.App.Hosts.RemoteCaptureSession(Guid.NewGuid().ToString("N")[..12], remote.Name, request);
        remote.Track(session);
        Dashboard.Host.Agents.AgentSessionReply reply;
        try
        {
            // Not cancellable: a start given up half-way could leave tcpdump running there with nobody to see or stop it.
            reply = await CommandAsync(remote, new Dashboard.Host.Agents.AgentSessionCommand(Dashboard.Host.Agents.AgentSessionAction.StartCapture, session.Id,
                new Dashboard.Host.Agents.AgentCaptureStart(request.Interface, request.Filter, request.SnapLength, request.PacketLimit ?? 1, request.TimeLimit?.TotalSeconds ?? 1, request.ByteLimit ?? 1024)));
        }
        catch
        {
            // It may have started there after all (or will: the agent remembers the stop): nothing runs that nobody sees.
            remote.Forget(session);
            StopLater(remote, Dashboard.Host.Agents.AgentSessionAction.StopCapture, session.Id);
            throw;
        }

        if ((reply.Refused ?? reply.Failed) is { } why)
        {
            remote.Forget(session);
            throw new CaptureRejectedException($"host {remote.Name}: {why}");
        }

        session.Started(reply.StartedAt ?? DateTimeOffset.UtcNow);
        remote.Feed.PacketsCaptured(session, Dashboard.Core.Capture.PacketBatch.Empty, false);
        return session;
    }

    public async Task<ICaptureSession> StopCaptureAsync(Actor actor, string? host, string id, CancellationToken ct = default)
    {
        var remote = Remote(host);
        ICaptureSession? found = remote is null ? captures.Find(id) : remote.FindCapture(id);
        var s = await RequireStopAsync(actor, "capture", id, found, c => c.Request.OwnerOrSystem, c => $"capture on {c.Request.Interface}", HostName(remote), ct);

        var on = $"capture{(remote is null ? "" : $" on host {remote.Name}")} on {s.Request.Interface}";
        if (s.EndReason != CaptureEndReason.Running)
        {
            await audit.WriteAsync(actor, "capture.stopped", s.Id, $"{on} had ended already ({s.EndReason}): nothing to stop", s.Request.Owner?.LabId, host: HostName(remote), ct: CancellationToken.None);
            return s;
        }

        if (s is CaptureSession local)
        {
            await local.StopAsync();
        }
        else if (remote is not null && s is Dashboard.App.Hosts.RemoteCaptureSession r)
        {
            // The agent stops it and sends its last batch before it answers; not cancellable, as a start is not.
            var reply = await CommandAsync(remote, new(Dashboard.Host.Agents.AgentSessionAction.StopCapture, s.Id));
            if ((reply.Refused ?? reply.Failed) is { } why)
            {
                await audit.WriteAsync(actor, "capture.stop-failed", s.Id, $"{on}: host {remote.Name}: {why}", s.Request.Owner?.LabId, succeeded: false, host: remote.Name, ct: CancellationToken.None);
                if (reply.Refused is not null && r.End(CaptureEndReason.Failed, $"host {remote.Name} no longer runs it: {why}"))
                {
                    remote.Feed.PacketsCaptured(r, Dashboard.Core.Capture.PacketBatch.Empty, true);
                }

                throw new CaptureRejectedException($"host {remote.Name}: {why}");
            }

            await WithinAsync(s.Completion, ct);
            if (r.End(CaptureEndReason.Requested, $"stopped on host {remote.Name}; its last counts did not arrive within 5 s"))
            {
                remote.Feed.PacketsCaptured(r, Dashboard.Core.Capture.PacketBatch.Empty, true);
            }
        }

        await audit.WriteAsync(actor, "capture.stopped", s.Id, $"{on} stopped ({s.Stats.Read} packets read{(s.Stats.CapturedByTcpdump is { } c ? $", {c} captured by tcpdump" : "")}{(s.Stats.NotWritten > 0 ? $", {s.Stats.NotWritten} of those lost by tcpdump as the stop interrupted its write" : "")})", s.Request.Owner?.LabId, host: HostName(remote), ct: CancellationToken.None);
        return s;
    }

    /// <summary>
    /// A capture's pcap as a stream, with a file name for the download: read here from the data folder, or from the
    /// agent's host a piece at a time as it is read. Null when there is none (it was purged).
    /// </summary>
    public async Task<(Stream Pcap, string FileName)?> OpenPcapAsync(Actor actor, string? host, string id, CancellationToken ct = default)
    {
        var s = await CaptureAsync(actor, host, id, ct);
        var name = $"{(s is Dashboard.App.Hosts.RemoteCaptureSession r ? r.Host + "-" : "")}{s.Request.Interface}-{s.StartedAt:yyyyMMdd-HHmmss}.pcap";
        if (s is CaptureSession local)
        {
            return File.Exists(local.PcapPath) ? (new FileStream(local.PcapPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite), name) : null;
        }

        // A download holds one piece (1 MiB) at a time; two at once per host, so downloads cannot pile pieces up.
        var remote = Remote(host)!;
        var gate = _pcapGates.GetOrAdd(remote.Name, _ => new SemaphoreSlim(2, 2));
        if (!await gate.WaitAsync(TimeSpan.Zero, ct))
        {
            throw new Dashboard.App.Hosts.HostUnavailableException($"two pcaps are being downloaded from host {remote.Name} already: try again when one is done");
        }

        var stream = new Dashboard.App.Hosts.AgentPcapStream(agents, remote.Name, s.Id, AgentDeadline, s.Request.ByteLimit, () => gate.Release());
        try
        {
            if (await stream.OpenAsync(ct))
            {
                return (stream, name);
            }
        }
        catch (IOException ex)
        {
            await stream.DisposeAsync();
            throw new Dashboard.App.Hosts.HostUnavailableException(ex.Message);
        }
        catch
        {
            await stream.DisposeAsync();
            throw;
        }

        await stream.DisposeAsync();
        return null;
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> _pcapGates = new(StringComparer.Ordinal);

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (DateTimeOffset At, string? Why)> _traceAvailability = new(StringComparer.Ordinal);

    /// <summary>
    /// A session command to a host's agent, not cancellable by the caller (what the agent starts or stops must be known
    /// here whatever the caller does), its reply checked before any of it is used: a reply that is not acceptable is the
    /// host's fault, said as such.
    /// </summary>
    private async Task<Dashboard.Host.Agents.AgentSessionReply> CommandAsync(Dashboard.App.Hosts.RemoteHost remote, Dashboard.Host.Agents.AgentSessionCommand command)
    {
        Dashboard.Host.Agents.AgentSessionReply reply;
        try
        {
            reply = await agents.SessionAsync(remote.Name, command, AgentDeadline, CancellationToken.None);
        }
        catch (Exception ex) when (ex is not Dashboard.App.Hosts.HostUnavailableException)
        {
            throw new Dashboard.App.Hosts.HostUnavailableException($"host {remote.Name}: {command.Action} failed: {ex.Message}");
        }

        return Dashboard.Host.Agents.AgentMessageCheck.Problem(reply, command.Action) is { } problem
            ? throw new Dashboard.App.Hosts.HostUnavailableException($"host {remote.Name} answered {command.Action} with a reply this dashboard does not accept: {problem}")
            : reply;
    }

    /// <summary>Asks the agent to stop a session whose start went wrong here; whatever the answer, nothing more is done.</summary>
    private void StopLater(Dashboard.App.Hosts.RemoteHost remote, Dashboard.Host.Agents.AgentSessionAction stop, string id) =>
        _ = agents.SessionAsync(remote.Name, new(stop, id), AgentDeadline, CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);

    public async Task<IReadOnlyList<ITraceSession>> TracesAsync(Actor actor, string? host = null, CancellationToken ct = default)
    {
        var remote = Remote(host);
        var viewer = await ViewerAsync(actor, ct);
        IEnumerable<ITraceSession> all = remote is null ? traces.Sessions : remote.Traces;
        return [.. all.Where(s => viewer.CanSee(s.Request.OwnerOrSystem))];
    }

    public async Task<ITraceSession> TraceAsync(Actor actor, string? host, string id, CancellationToken ct = default)
    {
        var remote = Remote(host);
        var viewer = await ViewerAsync(actor, ct);
        ITraceSession? found = remote is null ? traces.Find(id) : remote.FindTrace(id);
        return found is { } s && viewer.CanSee(s.Request.OwnerOrSystem) ? s : throw new LabAccessException(Dashboard.App.Access.AccessDenial.NotFound, $"no trace {Cut(id)} of yours");
    }

    /// <summary>Null when the host can trace, else why not (an agent host that does not answer says so).</summary>
    public async Task<string?> TraceUnavailableReasonAsync(string? host, CancellationToken ct = default)
    {
        var remote = Remote(host);
        if (remote is null)
        {
            return await traces.UnavailableReasonAsync(ct);
        }

        // Asked once a minute at most per host: a page that opens asks, and the answer changes only with the host's tools.
        if (_traceAvailability.TryGetValue(remote.Name, out var known) && DateTimeOffset.UtcNow - known.At < TimeSpan.FromMinutes(1))
        {
            return known.Why;
        }

        var reply = await CommandAsync(remote, new(Dashboard.Host.Agents.AgentSessionAction.TraceAvailable, ""));
        var why = reply.Refused ?? reply.Failed;
        _traceAvailability[remote.Name] = (DateTimeOffset.UtcNow, why);
        return why;
    }

    public async Task<ITraceSession> StartTraceAsync(Actor actor, string? host, TraceStart start, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(start);
        var remote = Remote(host);
        var what = $"trace{(remote is null ? "" : $" on host {remote.Name}")} {Cut(start.Source ?? "")} → {Cut(start.Destination ?? "")} ({Cut(start.Protocol ?? "icmp", 10)})";
        await access.RequireHostOperatorAsync(actor, "trace.started", what, HostName(remote), ct);
        ITraceSession session;
        try
        {
            var seconds = start.TimeLimitSeconds is { } t ? Limit((double?)t, t, TraceService.MaxDuration.TotalSeconds, "time limit (seconds)") : (double?)null;
            var request = new TraceRequest(start.Source ?? "", start.Destination ?? "", start.Protocol ?? "icmp", start.ReplyDestinations,
                seconds is { } s ? TimeSpan.FromSeconds(s) : null, new SessionOwner(actor.UserId, actor.Name));
            session = remote is null ? await traces.StartAsync(request, ct) : await StartRemoteTraceAsync(remote, request, ct);
        }
        catch (Exception ex) when (ex is TraceRejectedException or CaptureRejectedException or Dashboard.App.Hosts.HostUnavailableException or OperationCanceledException)
        {
            await audit.WriteAsync(actor, "trace.refused", null, $"{what}: {ex.Message}", succeeded: false, host: HostName(remote), ct: CancellationToken.None);
            throw ex is TraceRejectedException or CaptureRejectedException ? new TraceRejectedException(ex.Message) : ex;
        }

        await audit.WriteAsync(actor, "trace.started", session.Id, $"{what}, tag {session.Tag}", command: string.Join('\n', session.Commands.Select(c => c.CommandLine)), host: HostName(remote), ct: CancellationToken.None);
        return session;
    }

    /// <summary>The request's own checks here (the agent makes them again, with its networks' addresses), then the agent's start.</summary>
    private async Task<ITraceSession> StartRemoteTraceAsync(Dashboard.App.Hosts.RemoteHost remote, TraceRequest request, CancellationToken ct)
    {
        if (request.Validate() is { Count: > 0 } errors)
        {
            throw new TraceRejectedException(string.Join("; ", errors));
        }

        if (remote.RunningTraces >= TraceService.MaxRunning)
        {
            throw new TraceRejectedException($"{TraceService.MaxRunning} traces already run on host {remote.Name}: stop one first");
        }

        var session = new Dashboard.App.Hosts.RemoteTraceSession(Guid.NewGuid().ToString("N")[..10], remote.Name, request);
        remote.Track(session);
        Dashboard.Host.Agents.AgentSessionReply reply;
        try
        {
            // Not cancellable, as a capture's start is not: TRACE rules must not be left on a host unknown to this dashboard.
            reply = await CommandAsync(remote, new(Dashboard.Host.Agents.AgentSessionAction.StartTrace, session.Id, Trace: request with { Owner = null }));
        }
        catch
        {
            remote.Forget(session);
            StopLater(remote, Dashboard.Host.Agents.AgentSessionAction.StopTrace, session.Id);
            throw;
        }

        if ((reply.Refused ?? reply.Failed) is { } why)
        {
            remote.Forget(session);
            throw new TraceRejectedException($"host {remote.Name}: {why}");
        }

        session.Started(reply.StartedAt ?? DateTimeOffset.UtcNow, reply.Tag ?? "", reply.Commands ?? []);
        remote.Feed.TraceUpdated(session, []);
        return session;
    }

    public async Task<ITraceSession> StopTraceAsync(Actor actor, string? host, string id, CancellationToken ct = default)
    {
        var remote = Remote(host);
        ITraceSession? found = remote is null ? traces.Find(id) : remote.FindTrace(id);
        var s = await RequireStopAsync(actor, "trace", id, found, t => t.Request.OwnerOrSystem, t => $"trace {t.Request.Source} → {t.Request.Destination}", HostName(remote), ct);

        var on = $"trace{(remote is null ? "" : $" on host {remote.Name}")} {s.Request.Source} → {s.Request.Destination}";
        if (!s.IsRunning)
        {
            await audit.WriteAsync(actor, "trace.stopped", s.Id, $"{on} had ended already ({s.EndMessage}): nothing to stop", s.Request.Owner?.LabId, host: HostName(remote), ct: CancellationToken.None);
            return s;
        }

        if (s is TraceSession local)
        {
            await traces.StopAsync(local);
        }
        else if (remote is not null && s is Dashboard.App.Hosts.RemoteTraceSession r)
        {
            var reply = await CommandAsync(remote, new(Dashboard.Host.Agents.AgentSessionAction.StopTrace, s.Id));
            if ((reply.Refused ?? reply.Failed) is { } why)
            {
                await audit.WriteAsync(actor, "trace.stop-failed", s.Id, $"{on}: host {remote.Name}: {why}", s.Request.Owner?.LabId, succeeded: false, host: remote.Name, ct: CancellationToken.None);
                if (reply.Refused is not null && r.End($"host {remote.Name} no longer runs it: {why}"))
                {
                    remote.Feed.TraceUpdated(r, []);
                }

                throw new TraceRejectedException($"host {remote.Name}: {why}");
            }

            // The agent's answer holds the commands that removed the rules; its last update follows within 100 ms.
            r.Stopped(reply.Commands ?? []);
            await WithinAsync(r.CleanedUp, ct);
        }

        // What the removal commands said, not what was meant to happen: a command that failed is said.
        var removals = s.Commands.Where(c => c.CommandLine.Contains(" -D ", StringComparison.Ordinal) || c.CommandLine.StartsWith("remove", StringComparison.Ordinal)).ToList();
        var failed = removals.Count(c => !c.Succeeded);
        await audit.WriteAsync(actor, "trace.stopped", s.Id,
            $"{on} stopped; {(failed == 0 ? $"its rules removed ({removals.Count} command(s))" : $"{failed} of {removals.Count} removal command(s) failed: the rules are removed at the host's next start")}", s.Request.Owner?.LabId,
            command: string.Join('\n', s.Commands.Select(c => c.CommandLine)), result: string.Join('\n', s.Commands.Select(c => c.Message)), succeeded: failed == 0, host: HostName(remote), ct: CancellationToken.None);
        return s;
    }

    /// <summary>
    /// 404 when the session is not there or not the actor's to see (another's is not disclosed); 403, audited, when they
    /// see it but may not stop it (a run's session for a lab member who is not its Admin).
    /// </summary>
    private async Task<T> RequireStopAsync<T>(Actor actor, string kind, string id, T? session, Func<T, SessionOwner> ownerOf, Func<T, string> what, string host, CancellationToken ct)
        where T : class
    {
        var viewer = await ViewerAsync(actor, ct);
        if (session is null || !viewer.CanSee(ownerOf(session)))
        {
            throw new LabAccessException(Dashboard.App.Access.AccessDenial.NotFound, $"no {kind} {Cut(id)} of yours");
        }

        var owner = ownerOf(session);
        if (!viewer.CanStop(owner))
        {
            var refused = new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, $"only its starter, an Admin of its run's lab or a site administrator stops this {kind}");
            await audit.WriteAsync(actor, kind + ".stop-refused", id, $"{what(session)}: {refused.Message}", owner.LabId, succeeded: false, host: host, ct: CancellationToken.None);
            throw refused;
        }

        return session;
    }

    /// <summary>Waits a few seconds for what an agent sends after its answer; the caller's answer then shows it.</summary>
    private static async Task WithinAsync(Task done, CancellationToken ct)
    {
        try
        {
            await done.WaitAsync(TimeSpan.FromSeconds(5), ct);
        }
        catch (TimeoutException)
        {
            // It comes later, through the live feed.
        }
    }

    /// <summary>A limit as asked (or the default), refused when it is not a finite number between 1 and the maximum.</summary>
    private static T Limit<T>(T? asked, T fallback, T max, string what)
        where T : struct, System.Numerics.INumber<T>
    {
        var v = asked ?? fallback;
        if (T.IsNaN(v) || v < T.One || v > max)
        {
            throw new CaptureRejectedException(string.Create(CultureInfo.InvariantCulture, $"the {what} must be a number from 1 to {max}"));
        }

        return v;
    }

    private static string Cut(string s, int max = 40) => s.Length > max ? s[..max] + "…" : s;
}
