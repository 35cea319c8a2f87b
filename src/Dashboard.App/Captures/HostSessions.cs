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
/// One home for host-wide captures and traces, used by the Captures page, the API and the hub alike: who may start,
/// see, download and stop them (see <see cref="SessionViewer"/>), with the Operator role checked in the database on
/// every call, limits that always apply, and an audit entry that says what happened: started with the interface,
/// filter and limits, or refused with the reason.
/// </summary>
public sealed class HostSessions(
    CaptureService captures,
    TraceService traces,
    LabAccess access,
    AuditLog audit,
    IDbContextFactory<DashboardDbContext> dbs,
    IOptions<CaptureLimitsOptions> limits,
    IOptions<Dashboard.Host.DockerHostOptions> hostOptions)
{
    public Task<SessionViewer> ViewerAsync(Actor actor, CancellationToken ct = default) => SessionViewer.LoadAsync(dbs, actor, ct);

    public async Task<IReadOnlyList<CaptureSession>> CapturesAsync(Actor actor, CancellationToken ct = default)
    {
        var viewer = await ViewerAsync(actor, ct);
        return [.. captures.Sessions.Where(s => viewer.CanSee(s.Request.OwnerOrSystem))];
    }

    /// <summary>A capture the actor may see; 404 otherwise (another's capture is not disclosed).</summary>
    public async Task<CaptureSession> CaptureAsync(Actor actor, string id, CancellationToken ct = default)
    {
        var viewer = await ViewerAsync(actor, ct);
        return captures.Find(id) is { } s && viewer.CanSee(s.Request.OwnerOrSystem) ? s : throw new LabAccessException(Dashboard.App.Access.AccessDenial.NotFound, $"no capture {Cut(id)} of yours");
    }

    public async Task<CaptureSession> StartCaptureAsync(Actor actor, CaptureStart start, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(start);
        var iface = start.Interface ?? "";
        var what = $"capture on {Cut(iface)} filter '{Cut(start.Filter ?? "", 200)}'";
        await access.RequireHostOperatorAsync(actor, "capture.started", Cut(iface), ct);
        CaptureSession session;
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
            session = await captures.StartAsync(request, ct);
        }
        catch (CaptureRejectedException ex)
        {
            await audit.WriteAsync(actor, "capture.refused", Cut(iface), $"{what}: {ex.Message}", succeeded: false, ct: CancellationToken.None);
            throw;
        }

        var extra = hostOptions.Value.CaptureExtraInterfaces.Contains(iface, StringComparer.Ordinal) ? " (an interface the site allows beyond Docker's)" : "";
        await audit.WriteAsync(actor, "capture.started", session.Id,
            string.Create(CultureInfo.InvariantCulture, $"{what}{extra}; limits {session.Request.PacketLimit} packets, {session.Request.TimeLimit?.TotalSeconds} s, {session.Request.ByteLimit} bytes"),
            ct: CancellationToken.None);
        return session;
    }

    public async Task<CaptureSession> StopCaptureAsync(Actor actor, string id, CancellationToken ct = default)
    {
        var s = await RequireStopAsync(actor, "capture", id, captures.Find(id), c => c.Request.OwnerOrSystem, c => $"capture on {c.Request.Interface}", ct);

        await s.StopAsync();
        await audit.WriteAsync(actor, "capture.stopped", s.Id, $"capture on {s.Request.Interface} stopped ({s.Stats.Read} packets)", s.Request.Owner?.LabId, ct: CancellationToken.None);
        return s;
    }

    public async Task<IReadOnlyList<TraceSession>> TracesAsync(Actor actor, CancellationToken ct = default)
    {
        var viewer = await ViewerAsync(actor, ct);
        return [.. traces.Sessions.Where(s => viewer.CanSee(s.Request.OwnerOrSystem))];
    }

    public async Task<TraceSession> TraceAsync(Actor actor, string id, CancellationToken ct = default)
    {
        var viewer = await ViewerAsync(actor, ct);
        return traces.Find(id) is { } s && viewer.CanSee(s.Request.OwnerOrSystem) ? s : throw new LabAccessException(Dashboard.App.Access.AccessDenial.NotFound, $"no trace {Cut(id)} of yours");
    }

    public async Task<TraceSession> StartTraceAsync(Actor actor, TraceStart start, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(start);
        var what = $"trace {Cut(start.Source ?? "")} → {Cut(start.Destination ?? "")} ({Cut(start.Protocol ?? "icmp", 10)})";
        await access.RequireHostOperatorAsync(actor, "trace.started", what, ct);
        TraceSession session;
        try
        {
            var seconds = start.TimeLimitSeconds is { } t ? Limit((double?)t, t, TraceService.MaxDuration.TotalSeconds, "time limit (seconds)") : (double?)null;
            session = await traces.StartAsync(new TraceRequest(start.Source ?? "", start.Destination ?? "", start.Protocol ?? "icmp", start.ReplyDestinations,
                seconds is { } s ? TimeSpan.FromSeconds(s) : null, new SessionOwner(actor.UserId, actor.Name)), ct);
        }
        catch (Exception ex) when (ex is TraceRejectedException or CaptureRejectedException)
        {
            await audit.WriteAsync(actor, "trace.refused", null, $"{what}: {ex.Message}", succeeded: false, ct: CancellationToken.None);
            throw new TraceRejectedException(ex.Message);
        }

        await audit.WriteAsync(actor, "trace.started", session.Id, $"{what}, tag {session.Tag}", command: string.Join('\n', session.Commands.Select(c => c.CommandLine)), ct: CancellationToken.None);
        return session;
    }

    public async Task<TraceSession> StopTraceAsync(Actor actor, string id, CancellationToken ct = default)
    {
        var s = await RequireStopAsync(actor, "trace", id, traces.Find(id), t => t.Request.OwnerOrSystem, t => $"trace {t.Request.Source} → {t.Request.Destination}", ct);

        await traces.StopAsync(s);
        await audit.WriteAsync(actor, "trace.stopped", s.Id, $"trace {s.Request.Source} → {s.Request.Destination} stopped; its rules removed", s.Request.Owner?.LabId,
            command: string.Join('\n', s.Commands.Select(c => c.CommandLine)), ct: CancellationToken.None);
        return s;
    }

    /// <summary>
    /// 404 when the session is not there or not the actor's to see (another's is not disclosed); 403, audited, when they
    /// see it but may not stop it (a run's session for a lab member who is not its Admin).
    /// </summary>
    private async Task<T> RequireStopAsync<T>(Actor actor, string kind, string id, T? session, Func<T, SessionOwner> ownerOf, Func<T, string> what, CancellationToken ct)
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
            await audit.WriteAsync(actor, kind + ".stop-refused", id, $"{what(session)}: {refused.Message}", owner.LabId, succeeded: false, ct: CancellationToken.None);
            throw refused;
        }

        return session;
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
