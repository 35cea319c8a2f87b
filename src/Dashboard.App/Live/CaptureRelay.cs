using System.Collections.Concurrent;
using Dashboard.Core.Firewall;
using Dashboard.Host.Capture;
using Dashboard.Host.Netfilter;

namespace Dashboard.App.Live;

/// <summary>
/// Carries captures and traces from the host services to the live feed: one pump per capture session (batches every
/// 100 ms, bounded), and trace updates coalesced to at most ten deliveries a second per trace.
/// </summary>
public sealed class CaptureRelay(CaptureService captures, TraceService traces, LiveFeed feed, ILogger<CaptureRelay> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<(string Trace, string Packet), (TraceSession Session, TracedPacket Packet)> _pendingTraces = new();
    private readonly ConcurrentDictionary<string, TraceSession> _changedTraces = new();
    private readonly ConcurrentDictionary<string, Task> _pumps = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        captures.SessionStarted += OnCaptureStarted;
        traces.PacketTraced += OnPacketTraced;
        traces.TraceChanged += OnTraceChanged;
        try
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                FlushTraces();
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            captures.SessionStarted -= OnCaptureStarted;
            traces.PacketTraced -= OnPacketTraced;
            traces.TraceChanged -= OnTraceChanged;
            FlushTraces();
        }
    }

    private void OnCaptureStarted(CaptureSession session)
    {
        feed.PacketsCaptured(session, Dashboard.Core.Capture.PacketBatch.Empty, false);
        _pumps[session.Id] = Task.Run(async () =>
        {
            try
            {
                await CapturePump.RunAsync(session, (batch, final) =>
                {
                    feed.PacketsCaptured(session, batch, final);
                    return ValueTask.CompletedTask;
                });
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "capture {Id} relay failed", session.Id);
            }
            finally
            {
                _pumps.TryRemove(session.Id, out _);
            }
        });
    }

    private void OnPacketTraced(TraceSession session, TracedPacket packet) => _pendingTraces[(session.Id, packet.Key)] = (session, packet);

    private void OnTraceChanged(TraceSession session)
    {
        _changedTraces[session.Id] = session;
        FlushTraces();
    }

    private void FlushTraces()
    {
        var batch = new Dictionary<string, (TraceSession Session, List<TracedPacket> Packets)>();
        foreach (var key in _pendingTraces.Keys)
        {
            if (_pendingTraces.TryRemove(key, out var v))
            {
                if (!batch.TryGetValue(v.Session.Id, out var entry))
                {
                    batch[v.Session.Id] = entry = (v.Session, []);
                }

                entry.Packets.Add(v.Packet);
            }
        }

        foreach (var id in _changedTraces.Keys)
        {
            if (_changedTraces.TryRemove(id, out var s) && !batch.ContainsKey(id))
            {
                batch[id] = (s, []);
            }
        }

        foreach (var (_, (session, packets)) in batch)
        {
            feed.TraceUpdated(session, packets);
        }
    }
}
