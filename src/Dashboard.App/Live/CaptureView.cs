using Dashboard.Core.Capture;
using Dashboard.Core.Firewall;
using Dashboard.Host.Capture;
using Dashboard.Host.Netfilter;

namespace Dashboard.App.Live;

/// <summary>
/// What viewers know of one capture: the most recent packets shown whole (bounded), the totals per flow over every
/// packet delivered (shown or not), and the accounting that leaves no packet unexplained: read = shown + not shown
/// (counted per flow) once the last batch is in; the kernel's own drops come from tcpdump.
/// </summary>
public sealed class CaptureView(ICaptureSession session)
{
    public const int RecentCapacity = 2_000;
    public const int MaxFlows = 512;

    private readonly object _gate = new();
    private readonly Queue<DecodedPacket> _recent = new();
    private readonly Dictionary<string, FlowCount> _flows = new(StringComparer.Ordinal);

    public ICaptureSession Session { get; } = session;

    public string Id => Session.Id;

    public string Interface => Session.Request.Interface;

    public long Shown { get; private set; }

    public long NotShown { get; private set; }

    public bool Ended { get; private set; }

    public IReadOnlyList<DecodedPacket> Recent
    {
        get
        {
            lock (_gate)
            {
                return [.. _recent];
            }
        }
    }

    /// <summary>Every flow seen so far, most packets first.</summary>
    public IReadOnlyList<FlowCount> Flows
    {
        get
        {
            lock (_gate)
            {
                return _flows.Values.OrderByDescending(f => f.Packets).ToList();
            }
        }
    }

    internal void Add(PacketBatch batch, bool final)
    {
        lock (_gate)
        {
            foreach (var p in batch.Shown)
            {
                _recent.Enqueue(p);
                if (_recent.Count > RecentCapacity)
                {
                    _recent.Dequeue();
                }

                Count(new FlowCount(p.FlowKey, 1, p.Length, p.Timestamp, p.Timestamp));
            }

            foreach (var f in batch.NotShownFlows)
            {
                Count(f);
            }

            Shown += batch.Shown.Count;
            NotShown += batch.NotShown;
            Ended |= final;
        }
    }

    private void Count(FlowCount f)
    {
        var key = _flows.ContainsKey(f.Flow) || _flows.Count < MaxFlows ? f.Flow : PacketTally.OtherFlows;
        _flows[key] = _flows.TryGetValue(key, out var c)
            ? c with { Packets = c.Packets + f.Packets, Bytes = c.Bytes + f.Bytes, First = f.First < c.First ? f.First : c.First, Last = f.Last > c.Last ? f.Last : c.Last }
            : f with { Flow = key };
    }
}

/// <summary>What viewers know of one trace: the session (state, request, commands) and its packets' paths.</summary>
public sealed class TraceView(ITraceSession session)
{
    public ITraceSession Session { get; } = session;

    public string Id => Session.Id;

    public IReadOnlyList<TracedPacket> Packets => Session.Packets;
}
