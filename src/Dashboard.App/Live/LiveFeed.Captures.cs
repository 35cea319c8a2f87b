using Dashboard.App.Contracts;
using System.Collections.Concurrent;
using Dashboard.Core.Capture;
using Dashboard.Core.Firewall;
using Dashboard.Host.Capture;
using Dashboard.Host.Netfilter;

namespace Dashboard.App.Live;

public partial class LiveFeed
{
    /// <summary>Ended captures and traces kept for viewers, most recent first, beyond the running ones.</summary>
    public const int KeepEnded = 20;

    private readonly ConcurrentDictionary<string, CaptureView> _captures = new();
    private readonly ConcurrentDictionary<string, TraceView> _traces = new();

    public IReadOnlyList<CaptureView> Captures => _captures.Values.OrderBy(c => c.Session.StartedAt).ToList();

    public IReadOnlyList<TraceView> Traces => _traces.Values.OrderBy(t => t.Session.StartedAt).ToList();

    public CaptureView? FindCapture(string id) => _captures.GetValueOrDefault(id);

    /// <summary>The capture relay's delivery of one batch.</summary>
    public void PacketsCaptured(ICaptureSession session, PacketBatch batch, bool final)
    {
        var view = _captures.GetOrAdd(session.Id, _ => new CaptureView(session));
        view.Add(batch, final);
        if (final)
        {
            Prune(_captures, c => c.Ended, c => c.Session.StartedAt);
        }

        Publish(new PacketsCapturedEvent(Host, view, batch, final));
    }

    /// <summary>The relay's delivery of trace changes: packets whose path grew (possibly none, when only the state changed).</summary>
    public void TraceUpdated(ITraceSession session, IReadOnlyList<TracedPacket> packets)
    {
        var view = _traces.GetOrAdd(session.Id, _ => new TraceView(session));
        if (!session.IsRunning)
        {
            Prune(_traces, t => !t.Session.IsRunning, t => t.Session.StartedAt);
        }

        Publish(new TraceUpdatedEvent(Host, view, packets));
    }

    /// <summary>A change request's new state.</summary>
    public void ChangeUpdated(ChangeDto change) => Publish(new ChangeRequestUpdatedEvent(Host, change));

    /// <summary>The run service's progress report.</summary>
    public void RunUpdated(RunProgress progress) => Publish(new RunUpdatedEvent(Host, progress));

    /// <summary>An event another replica made (run progress, a change's move, an outside change), for this replica's pages.</summary>
    public void PublishRelayed(LiveEvent e) => Publish(e with { Relayed = true });

    private static void Prune<T>(ConcurrentDictionary<string, T> views, Func<T, bool> ended, Func<T, DateTimeOffset> started)
    {
        foreach (var (id, _) in views.Where(kv => ended(kv.Value)).OrderByDescending(kv => started(kv.Value)).Skip(KeepEnded).ToList())
        {
            views.TryRemove(id, out _);
        }
    }
}
