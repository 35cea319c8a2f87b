using System.Collections.Concurrent;
using Dashboard.Core.Firewall;
using Dashboard.Host;
using Dashboard.Host.Agents;
using Dashboard.Host.Capture;
using Dashboard.Host.Netfilter;
using Microsoft.Extensions.Logging;

namespace Dashboard.Agent;

/// <summary>
/// Host-wide captures and traces that people start from the dashboard (<see cref="AgentProtocol.Session"/>), run here
/// by the same Host-layer services the dashboard runs for its own host, so the same checks hold: captures only on this
/// host's Docker bridges and their containers' host veths with a filter tcpdump compiles, traces only between
/// addresses of its Docker networks, at most 8 captures and 4 traces at once. Each capture's batches go to the
/// dashboard every 100 ms as tcpdump's frames (the dashboard decodes them itself) and counts per flow, so its
/// accounting holds end to end; its pcap stays here and goes to the dashboard in pieces when someone downloads it.
/// Sessions act only on what the dashboard started through this class, never on a run's; when the link to the
/// dashboard is lost, every one of them stops (nobody could see it or stop it).
/// </summary>
public sealed class AgentSessions : IAsyncDisposable
{
    /// <summary>Ended captures whose pcaps the dashboard may still ask for, beyond the running ones.</summary>
    public const int KeepEnded = 32;

    private readonly CaptureService _captures;
    private readonly TraceService _traces;
    private readonly ILogger<AgentSessions> _logger;
    private readonly ConcurrentDictionary<string, Capture> _byId = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _traceIds = new(StringComparer.Ordinal); // the trace service's id → the dashboard's
    private readonly ConcurrentDictionary<string, TraceSession> _tracesById = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Id, string Packet), TracedPacket> _pendingPackets = new();
    private readonly ConcurrentDictionary<string, bool> _changedTraces = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _traceLoop;
    private Func<string, object, Task>? _send;

    /// <summary>Stops asked for sessions not (yet) here: a start still under way when its stop came is stopped as it ends.</summary>
    private readonly ConcurrentDictionary<string, long> _stopsBeforeStart = new(StringComparer.Ordinal);

    /// <summary>Counts the links lost: a start that began on an earlier link than the current one's is stopped as it ends.</summary>
    private long _link;

    public AgentSessions(CaptureService captures, TraceService traces, ILogger<AgentSessions> logger)
    {
        _captures = captures;
        _traces = traces;
        _logger = logger;
        traces.PacketTraced += OnPacketTraced;
        traces.TraceChanged += OnTraceChanged;
        _traceLoop = Task.Run(FlushTracesAsync);
    }

    /// <summary>Sends a message to the dashboard's agent hub (null while no connection is up).</summary>
    public void Connected(Func<string, object, Task>? send) => Volatile.Write(ref _send, send);

    /// <summary>The link to the dashboard is gone: what it started here stops.</summary>
    public async Task LinkLostAsync()
    {
        Volatile.Write(ref _send, null);
        Interlocked.Increment(ref _link);
        foreach (var c in _byId.Values.Where(c => c.Session.EndReason == CaptureEndReason.Running))
        {
            c.LinkLost = true;
            await StopQuietlyAsync(() => c.Session.StopAsync(), $"capture {c.Id}").ConfigureAwait(false);
        }

        foreach (var t in _tracesById.Values.Where(t => t.IsRunning))
        {
            await StopQuietlyAsync(() => _traces.StopAsync(t), $"trace {t.Id}").ConfigureAwait(false);
        }
    }

    /// <summary>One session's stop, its failure logged: the others are stopped all the same.</summary>
    private async Task StopQuietlyAsync(Func<Task> stop, string what)
    {
        try
        {
            await stop().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "{What} could not be stopped cleanly (its TRACE rules, if any, are removed at the agent's next start)", what);
        }
    }

    /// <summary>
    /// Whether a session that has just started must stop at once: its stop came while it was starting, or the link it
    /// was started on is gone. A stop for an id not known here is remembered for a minute (at most 256 of them).
    /// </summary>
    private bool StoppedMeanwhile(string id, long link)
    {
        var now = Environment.TickCount64;
        foreach (var old in _stopsBeforeStart.Where(kv => now - kv.Value > 60_000).Select(kv => kv.Key).ToList())
        {
            _stopsBeforeStart.TryRemove(old, out _);
        }

        return _stopsBeforeStart.TryRemove(id, out _) || Interlocked.Read(ref _link) != link;
    }

    private void RememberStop(string? id)
    {
        if ((AgentMessageCheck.IsCaptureId(id) || AgentMessageCheck.IsTraceId(id)) && _stopsBeforeStart.Count < 256)
        {
            _stopsBeforeStart[id!] = Environment.TickCount64;
        }
    }

    public async Task<AgentSessionReply> HandleAsync(AgentSessionCommand command)
    {
        try
        {
            return command switch
            {
                null => new AgentSessionReply(Refused: "no command"),
                { Action: AgentSessionAction.StartCapture } => await StartCaptureAsync(command).ConfigureAwait(false),
                { Action: AgentSessionAction.StopCapture } => await StopCaptureAsync(command.Id).ConfigureAwait(false),
                { Action: AgentSessionAction.ReadPcap } => await ReadPcapAsync(command.Id, command.Offset).ConfigureAwait(false),
                { Action: AgentSessionAction.StartTrace } => await StartTraceAsync(command).ConfigureAwait(false),
                { Action: AgentSessionAction.StopTrace } => await StopTraceAsync(command.Id).ConfigureAwait(false),
                { Action: AgentSessionAction.TraceAvailable } => new AgentSessionReply(Refused: await _traces.UnavailableReasonAsync().ConfigureAwait(false)),
                _ => new AgentSessionReply(Refused: $"unknown session command {command.Action}"),
            };
        }
        catch (Exception ex) when (ex is CaptureRejectedException or TraceRejectedException)
        {
            return new AgentSessionReply(Refused: ex.Message);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException or NullReferenceException or FormatException
            or Dashboard.Host.Processes.ProcessFailedException or FirewallUnavailableException or RulesetFormatException or Dashboard.Host.Docker.EngineUnavailableException or HttpRequestException or OperationCanceledException)
        {
            _logger.LogWarning("session command {Action} failed: {Error}", command?.Action, ex.Message);
            return new AgentSessionReply(Failed: ex.Message);
        }
    }

    private async Task<AgentSessionReply> StartCaptureAsync(AgentSessionCommand c)
    {
        if (!AgentMessageCheck.IsCaptureId(c.Id) || c.Capture is not { Interface: not null } start)
        {
            return new AgentSessionReply(Refused: "a capture needs the dashboard's id (12 lowercase hex digits) and what to capture");
        }

        if (start.PacketLimit is < 1 or > 10_000_000 || start.TimeLimitSeconds is not (> 0 and <= 4 * 3600) || start.ByteLimit is < 1024 or > 2L * 1024 * 1024 * 1024)
        {
            return new AgentSessionReply(Refused: "a capture's limits are 1 to 10,000,000 packets, up to 4 h and 1 KiB to 2 GiB");
        }

        if (_byId.ContainsKey(c.Id))
        {
            return new AgentSessionReply(Refused: $"capture {c.Id} exists already");
        }

        // CaptureService checks the rest: this host's Docker bridges and container veths only, the filter, 8 at once.
        var link = Interlocked.Read(ref _link);
        var session = await _captures.StartAsync(new CaptureRequest(start.Interface, start.Filter, start.SnapLength, start.PacketLimit,
            TimeSpan.FromSeconds(start.TimeLimitSeconds), start.ByteLimit, new SessionOwner(null, "dashboard", null, null))).ConfigureAwait(false);
        if (StoppedMeanwhile(c.Id, link))
        {
            await session.StopAsync().ConfigureAwait(false);
            _logger.LogInformation("capture {Id} stopped as it started: the dashboard gave it up, or its link went away", c.Id);
            return new AgentSessionReply(Refused: "the capture was stopped as it started: the dashboard gave it up, or the link to it went away");
        }

        var capture = new Capture(c.Id, session);
        _byId[c.Id] = capture;
        capture.Pump = Task.Run(() => PumpAsync(capture));
        Forget();
        _logger.LogInformation("capture {Id} on {Interface} (filter '{Filter}') started for the dashboard", c.Id, start.Interface, start.Filter);
        return new AgentSessionReply(StartedAt: session.StartedAt);
    }

    private async Task<AgentSessionReply> StopCaptureAsync(string id)
    {
        if (id is null || !_byId.TryGetValue(id, out var c))
        {
            RememberStop(id);
            return new AgentSessionReply(Refused: $"no capture '{AgentMessageCheck.Cut(id)}' that the dashboard started here");
        }

        await c.Session.StopAsync().ConfigureAwait(false);
        await c.Pump.ConfigureAwait(false); // its final batch is sent before the answer
        return new AgentSessionReply();
    }

    private async Task<AgentSessionReply> ReadPcapAsync(string id, long offset)
    {
        if (id is null || !_byId.TryGetValue(id, out var c) || _captures.Find(c.Session.Id) is null)
        {
            return new AgentSessionReply(Refused: $"no capture '{AgentMessageCheck.Cut(id)}' of the dashboard's with a pcap here (ended ones are kept for {KeepEnded} captures and the host's retention)");
        }

        await using var file = new FileStream(c.Session.PcapPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (offset < 0 || offset > file.Length)
        {
            return new AgentSessionReply(Refused: $"the pcap has {file.Length} bytes: read from 0 to {file.Length}");
        }

        file.Position = offset;
        var buffer = new byte[(int)Math.Min(AgentProtocol.MaxPcapChunk, file.Length - offset)];
        await file.ReadExactlyAsync(buffer).ConfigureAwait(false);
        return new AgentSessionReply(Pcap: buffer, PcapLength: file.Length);
    }

    private async Task<AgentSessionReply> StartTraceAsync(AgentSessionCommand c)
    {
        if (!AgentMessageCheck.IsTraceId(c.Id) || c.Trace is null)
        {
            return new AgentSessionReply(Refused: "a trace needs the dashboard's id (10 lowercase hex digits) and the flow");
        }

        if (_tracesById.ContainsKey(c.Id))
        {
            return new AgentSessionReply(Refused: $"trace {c.Id} exists already");
        }

        // TraceService checks the rest: addresses inside this host's Docker networks, iptables-nft, 4 at once, 30 minutes.
        var link = Interlocked.Read(ref _link);
        var trace = await _traces.StartAsync(c.Trace with { Owner = new SessionOwner(null, "dashboard", null, null) }).ConfigureAwait(false);
        if (StoppedMeanwhile(c.Id, link))
        {
            await StopQuietlyAsync(() => _traces.StopAsync(trace), $"trace {c.Id}").ConfigureAwait(false);
            return new AgentSessionReply(Refused: "the trace was stopped as it started (its rules removed): the dashboard gave it up, or the link to it went away", Commands: trace.Commands);
        }

        _traceIds[trace.Id] = c.Id;
        _tracesById[c.Id] = trace;
        _changedTraces[c.Id] = true;

        // Packets traced before the id was known here go with the first update.
        foreach (var p in trace.Packets)
        {
            _pendingPackets[(c.Id, p.Key)] = p;
        }
        _logger.LogInformation("trace {Id} {Source} → {Destination} started for the dashboard, tag {Tag}", c.Id, trace.Request.Source, trace.Request.Destination, trace.Tag);
        return new AgentSessionReply(StartedAt: trace.StartedAt, Tag: trace.Tag, Commands: trace.Commands);
    }

    private async Task<AgentSessionReply> StopTraceAsync(string id)
    {
        if (id is null || !_tracesById.TryGetValue(id, out var t))
        {
            RememberStop(id);
            return new AgentSessionReply(Refused: $"no trace '{AgentMessageCheck.Cut(id)}' that the dashboard started here");
        }

        await _traces.StopAsync(t).ConfigureAwait(false);
        return new AgentSessionReply(Commands: t.Commands);
    }

    /// <summary>A capture's batches to the dashboard every 100 ms until it ends, then the final one with its counts.</summary>
    private async Task PumpAsync(Capture c)
    {
        using var timer = new PeriodicTimer(CapturePump.DefaultInterval);
        try
        {
            while (!c.Session.Completion.IsCompleted && await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                var raw = c.Session.TakeRawBatch();
                if (raw.Total > 0 && !await SendBatchAsync(c, raw, final: false).ConfigureAwait(false))
                {
                    // Nobody receives it: a capture nobody can see or stop is stopped.
                    c.LinkLost = true;
                    _ = c.Session.StopAsync();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        await c.Session.Completion.ConfigureAwait(false);
        await SendBatchAsync(c, c.Session.TakeRawBatch(), final: true).ConfigureAwait(false);
    }

    private async Task<bool> SendBatchAsync(Capture c, Dashboard.Core.Capture.RawPacketBatch raw, bool final)
    {
        var s = c.Session;
        var frames = raw.Shown.Select(r => new AgentFrame(r.Timestamp, r.OriginalLength, r.Data.Length <= AgentProtocol.MaxBatchFrameBytes ? r.Data : r.Data[..AgentProtocol.MaxBatchFrameBytes])).ToList();
        var ended = final ? s.EndReason : CaptureEndReason.Running;
        var message = final && c.LinkLost ? (s.EndMessage is null ? "" : s.EndMessage + "; ") + "stopped on the host when the link to the dashboard was lost" : final ? s.EndMessage : null;
        var batch = new AgentCaptureBatch(c.Id, c.Sequence++, s.LinkType, frames, raw.NotShown, raw.NotShownFlows, s.Stats, ended is CaptureEndReason.Running && final ? CaptureEndReason.Failed : ended,
            final ? s.EndedAt : null, message is { Length: > AgentMessageCheck.MaxText } m ? m[..AgentMessageCheck.MaxText] : message, final);
        if (Volatile.Read(ref _send) is not { } send)
        {
            return false;
        }

        try
        {
            await send(HubMethods.CaptureBatch, batch).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or OperationCanceledException or Microsoft.AspNetCore.SignalR.HubException)
        {
            _logger.LogWarning("capture {Id}: batch {Sequence} not delivered: {Error}", c.Id, batch.Sequence, ex.Message);
            return false;
        }
    }

    private void OnPacketTraced(TraceSession session, TracedPacket packet)
    {
        if (_traceIds.TryGetValue(session.Id, out var id))
        {
            _pendingPackets[(id, packet.Key)] = packet;
        }
    }

    private void OnTraceChanged(TraceSession session)
    {
        if (_traceIds.TryGetValue(session.Id, out var id))
        {
            _changedTraces[id] = true;
        }
    }

    /// <summary>Every 100 ms, each trace's packets whose path grew and its state, in one update per trace.</summary>
    private async Task FlushTracesAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                await FlushTracesOnceAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task FlushTracesOnceAsync()
    {
        var packets = new Dictionary<string, List<TracedPacket>>(StringComparer.Ordinal);
        foreach (var key in _pendingPackets.Keys)
        {
            if (_pendingPackets.TryRemove(key, out var p))
            {
                (packets.TryGetValue(key.Id, out var list) ? list : packets[key.Id] = []).Add(p);
            }
        }

        foreach (var id in _changedTraces.Keys)
        {
            if (_changedTraces.TryRemove(id, out _))
            {
                packets.TryAdd(id, []);
            }
        }

        foreach (var (id, list) in packets)
        {
            if (!_tracesById.TryGetValue(id, out var t))
            {
                continue;
            }

            foreach (var chunk in list.Count == 0 ? [list] : list.Chunk(AgentMessageCheck.MaxTracedPackets).Select(c => c.ToList()))
            {
                var update = new AgentTraceUpdate(id, chunk, t.EndedAt, t.EndMessage, t.IsCleanedUp, [.. t.Commands.TakeLast(AgentMessageCheck.MaxTraceCommands)], t.UnparsedLines);
                if (Volatile.Read(ref _send) is { } send)
                {
                    try
                    {
                        await send(HubMethods.TraceUpdate, update).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is IOException or InvalidOperationException or OperationCanceledException or Microsoft.AspNetCore.SignalR.HubException)
                    {
                        _logger.LogWarning("trace {Id}: update not delivered: {Error}", id, ex.Message);
                    }
                }
            }

            if (t.IsCleanedUp)
            {
                // Its last state is sent: nothing more will come of it.
                _tracesById.TryRemove(id, out _);
                _traceIds.TryRemove(t.Id, out _);
            }
        }
    }

    /// <summary>Ended captures beyond the most recent <see cref="KeepEnded"/>, and those the host purged, are forgotten.</summary>
    private void Forget()
    {
        foreach (var c in _byId.Values.Where(c => c.Session.EndReason != CaptureEndReason.Running && (_captures.Find(c.Session.Id) is null)).ToList())
        {
            _byId.TryRemove(c.Id, out _);
        }

        foreach (var c in _byId.Values.Where(c => c.Session.EndReason != CaptureEndReason.Running).OrderByDescending(c => c.Session.StartedAt).Skip(KeepEnded).ToList())
        {
            _byId.TryRemove(c.Id, out _);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _traces.PacketTraced -= OnPacketTraced;
        _traces.TraceChanged -= OnTraceChanged;
        await _stop.CancelAsync().ConfigureAwait(false);
        await _traceLoop.ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>The dashboard's agent hub methods this class sends to.</summary>
    public static class HubMethods
    {
        public const string CaptureBatch = nameof(CaptureBatch);
        public const string TraceUpdate = nameof(TraceUpdate);
    }

    private sealed class Capture(string id, CaptureSession session)
    {
        public string Id { get; } = id;

        public CaptureSession Session { get; } = session;

        public Task Pump { get; set; } = Task.CompletedTask;

        public long Sequence { get; set; }

        public bool LinkLost { get; set; }
    }
}
