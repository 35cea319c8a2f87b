using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Collector;
using Microsoft.Extensions.Options;

namespace Dashboard.App.Live;

/// <summary>
/// The in-process live feed: the collector's sink, the current state of the host (topology, ruleset with the latest
/// counters, status, a minute of counter history), and subscriptions for components and the hub forwarder.
/// Each subscription names its topics (<see cref="LiveTopic"/>); an event reaches only the subscribers whose topics
/// match it, decided on the publisher's thread before anything is posted to a circuit. Subscribers are called on that
/// thread: components marshal with InvokeAsync (<c>LiveComponentBase</c> does) and dispose their subscription.
/// </summary>
public partial class LiveFeed : ICollectorSink
{
    /// <summary>The local host's feed (the embedded collector's sink), named by <c>Host:Name</c>.</summary>
    public LiveFeed(IOptions<Dashboard.Host.DockerHostOptions> hostOptions)
        : this(hostOptions.Value.Name)
    {
    }

    /// <summary>A feed for one host by name: the local one, or a host whose agent reports to this dashboard.</summary>
    public LiveFeed(string host)
    {
        Host = host;
        Status = CollectorStatus.Starting(host, 0);
    }

    private readonly object _gate = new();
    private Subscription[] _subscribers = []; // copy-on-write: Publish reads it without the lock
    private readonly CounterHistory _history = new();
    private readonly Dictionary<RuleId, (ulong Packets, ulong Bytes)> _counters = new();
    private readonly Dictionary<(TableFamily, string, string), (ulong Packets, ulong Bytes)> _policies = new();

    public string Host { get; }

    public HostTopology? Topology { get; private set; }

    public Ruleset? Ruleset { get; private set; }

    public DateTimeOffset? RulesetReadAt { get; private set; }

    public CollectorStatus Status { get; private set; }

    private DataGap[] _gaps = [];

    /// <summary>Spans without data from the host (its agent's link was down), newest last, at most <see cref="MaxGaps"/>.</summary>
    public IReadOnlyList<DataGap> Gaps => Volatile.Read(ref _gaps);

    public const int MaxGaps = 32;

    /// <summary>
    /// Marks a span the host sent nothing in (its agent was disconnected). The counters the host sends afterwards are
    /// totals: what moved meanwhile is counted once, at reconnection, and the sparkline shows the span as a gap.
    /// </summary>
    public void RecordGap(DateTimeOffset from, DateTimeOffset to)
    {
        if (to > from)
        {
            lock (_gate)
            {
                _gaps = [.. _gaps.TakeLast(MaxGaps - 1), new DataGap(from, to)];
            }
        }
    }

    public int SubscriberCount => Volatile.Read(ref _subscribers).Length;

    private int _counterWatchers;

    /// <summary>Subscriptions to counters (a relay's aside) plus hub clients watching (<see cref="WatchCounters"/>).</summary>
    public int CounterWatchers => Volatile.Read(ref _counterWatchers);

    /// <summary>
    /// Subscribes to events of the given topics; dispose the result to stop. A <paramref name="relay"/> (the hub
    /// forwarder) passes events on to others: it does not count as a watcher by itself, its clients count as they join.
    /// </summary>
    public IDisposable Subscribe(IReadOnlyCollection<LiveTopic> topics, Action<LiveEvent> onEvent, bool relay = false)
    {
        ArgumentOutOfRangeException.ThrowIfZero(topics.Count);
        var watches = !relay && topics.Any(t => t.WatchesCounters);
        var s = new Subscription(this, [.. topics], onEvent, watches);
        lock (_gate)
        {
            _subscribers = [.. _subscribers, s];
            if (watches)
            {
                Interlocked.Increment(ref _counterWatchers);
            }
        }

        return s;
    }

    /// <summary>One outside client (a hub connection in this host's group) watching the counters until disposed.</summary>
    public IDisposable WatchCounters()
    {
        Interlocked.Increment(ref _counterWatchers);
        return new Watch(this);
    }

    private sealed class Watch(LiveFeed feed) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref feed._counterWatchers);
            }
        }
    }

    /// <summary>The latest counters of a rule (the ruleset's own until a counter update arrives).</summary>
    public (ulong Packets, ulong Bytes) CountersOf(FirewallRule rule)
    {
        lock (_gate)
        {
            return _counters.TryGetValue(RuleId.Of(rule), out var c) ? c : (rule.Packets, rule.Bytes);
        }
    }

    /// <summary>The latest policy counters of a built-in chain (the ruleset's own until a counter update arrives).</summary>
    public (ulong Packets, ulong Bytes) PolicyCountersOf(TableFamily family, string table, FirewallChain chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        lock (_gate)
        {
            return _policies.TryGetValue((family, table, chain.Name), out var c) ? c : (chain.PolicyPackets, chain.PolicyBytes);
        }
    }

    public IReadOnlyList<CounterSample> HistoryOf(RuleId id)
    {
        lock (_gate)
        {
            return _history.Samples(id);
        }
    }

    /// <summary>The rule's packet rate while it moved in the last <paramref name="over"/> (<see cref="CounterHistory.RateOf"/>).</summary>
    public CounterRate? RateOf(RuleId id, DateTimeOffset now, TimeSpan over)
    {
        lock (_gate)
        {
            return _history.RateOf(id, now, over);
        }
    }

    public DateTimeOffset? LastMoved(RuleId id)
    {
        lock (_gate)
        {
            return _history.LastMoved(id);
        }
    }

    public void TopologyChanged(HostTopology topology)
    {
        Topology = topology;
        Publish(new TopologyChangedEvent(Host, topology));
    }

    public void FirewallChanged(Ruleset ruleset, DateTimeOffset readAt)
    {
        lock (_gate)
        {
            _counters.Clear();
            _policies.Clear();
            foreach (var r in ruleset.Rules)
            {
                var id = RuleId.Of(r);
                _history.Record(id, readAt, r.Packets, r.Bytes);
            }

            _history.Prune(readAt);
            Ruleset = ruleset;
            RulesetReadAt = readAt;
        }

        Publish(new FirewallChangedEvent(Host, ruleset, readAt));
    }

    public void CountersChanged(CountersUpdate update)
    {
        lock (_gate)
        {
            foreach (var c in update.Rules)
            {
                _counters[c.Id] = (c.Packets, c.Bytes);
                _history.Record(c.Id, update.ReadAt, c.Packets, c.Bytes);
            }

            foreach (var p in update.Policies)
            {
                _policies[(p.Family, p.Table, p.Chain)] = (p.Packets, p.Bytes);
            }

            RulesetReadAt = update.ReadAt;
        }

        Publish(new CountersChangedEvent(Host, update));
    }

    /// <summary>The firewall history decided that changes on this host came from outside the dashboard.</summary>
    public void FirewallChangedOutside(Dashboard.App.Contracts.OutsideChangeAlert alert) => Publish(new FirewallChangedOutsideEvent(Host, alert));

    public void StatusChanged(CollectorStatus status)
    {
        Status = status;
        Publish(new StatusChangedEvent(Host, status));
    }

    protected void Publish(LiveEvent e)
    {
        foreach (var s in Volatile.Read(ref _subscribers))
        {
            if (!s.Wants(e))
            {
                continue;
            }

            try
            {
                s.OnEvent(e);
            }
            catch (Exception)
            {
                // One subscriber's failure must not stop the others or the collector.
            }
        }
    }

    private void Unsubscribe(Subscription s)
    {
        lock (_gate)
        {
            _subscribers = [.. _subscribers.Where(x => !ReferenceEquals(x, s))];
            if (s.WatchesCounters)
            {
                Interlocked.Decrement(ref _counterWatchers);
            }
        }
    }

    private sealed class Subscription(LiveFeed feed, LiveTopic[] topics, Action<LiveEvent> onEvent, bool watchesCounters) : IDisposable
    {
        public bool WatchesCounters { get; } = watchesCounters;

        private int _disposed;

        public LiveTopic[] Topics { get; } = topics;

        public Action<LiveEvent> OnEvent { get; } = onEvent;

        public bool Wants(LiveEvent e)
        {
            if (Volatile.Read(ref _disposed) != 0)
            {
                return false;
            }

            foreach (var t in Topics)
            {
                if (t.Matches(e))
                {
                    return true;
                }
            }

            return false;
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                feed.Unsubscribe(this);
            }
        }
    }
}

/// <summary>A span in which a host sent no data.</summary>
public sealed record DataGap(DateTimeOffset From, DateTimeOffset To)
{
    public TimeSpan Duration => To - From;
}
