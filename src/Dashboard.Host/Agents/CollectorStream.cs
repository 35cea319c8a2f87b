using System.Threading.Channels;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Collector;
using Dashboard.Host.Netfilter;

namespace Dashboard.Host.Agents;

/// <summary>
/// A collector's publications as the agent protocol's numbered messages, for one reader at a time: an agent's
/// connection to its dashboard, or the replica holding the collector duty relaying its host to the other replicas.
/// Keeps the host's latest state (status, topology, the last ruleset text and every counter that moved since) so a
/// snapshot can be sent at any time, and queues deltas in order while a reader is attached. A queue that overflows, or
/// a reader that asks (<see cref="RequestSnapshot"/>), gets a new snapshot instead of the lost deltas.
/// </summary>
public sealed class CollectorStream(int queueLimit) : ICollectorSink
{
    /// <summary>A queued message: given its sequence number, the hub method and the message (empty method: only a wake-up).</summary>
    private readonly Channel<Func<long, (string Method, object Message)>> _queue = Channel.CreateUnbounded<Func<long, (string, object)>>(new() { SingleReader = true });
    private readonly object _gate = new();
    private readonly Dictionary<RuleId, RuleCounterChange> _moved = new();
    private readonly Dictionary<(TableFamily, string, string), PolicyCounterChange> _policiesMoved = new();
    private CollectorStatus? _status;
    private HostTopology? _topology;
    private AgentFirewall? _firewall;
    private Dictionary<RuleId, int> _index = [];
    private DateTimeOffset _countersReadAt;
    private int _queued;
    private volatile bool _resync = true;
    private volatile bool _attached;
    private int _watchers;

    /// <summary>Set from the reader's side: while above zero the collector reads faster.</summary>
    public int CounterWatchers
    {
        get => Volatile.Read(ref _watchers);
        set => Volatile.Write(ref _watchers, Math.Max(0, value));
    }

    /// <summary>The host's latest topology (null before the first read).</summary>
    public HostTopology? Topology
    {
        get
        {
            lock (_gate)
            {
                return _topology;
            }
        }
    }

    public void TopologyChanged(HostTopology topology)
    {
        lock (_gate)
        {
            _topology = topology;
            Enqueue(seq => (nameof(AgentHubMethods.Topology), new AgentTopology(seq, topology)));
        }
    }

    public void FirewallChanged(Ruleset ruleset, DateTimeOffset readAt)
    {
        // Only the overload with the read's text is of use here: the reader parses the text itself.
    }

    public void FirewallChanged(Ruleset ruleset, FirewallSnapshot snapshot)
    {
        var firewall = AgentFirewall.From(ruleset, snapshot);
        lock (_gate)
        {
            _firewall = firewall;
            _index = AgentCounters.IndexOf(ruleset);
            _moved.Clear();
            _policiesMoved.Clear();
            Enqueue(seq => (nameof(AgentHubMethods.Firewall), new AgentFirewallChange(seq, firewall)));
        }
    }

    public void CountersChanged(CountersUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        lock (_gate)
        {
            foreach (var r in update.Rules)
            {
                _moved[r.Id] = r;
            }

            foreach (var p in update.Policies)
            {
                _policiesMoved[(p.Family, p.Table, p.Chain)] = p;
            }

            _countersReadAt = update.ReadAt;
            var index = _index;
            if (update.Rules.Any(r => !index.ContainsKey(r.Id)))
            {
                // A rule the last text did not hold (a read raced a change): a snapshot carries both.
                _resync = true;
                Enqueue(_ => ("", "")); // wakes the sender
                return;
            }

            Enqueue(seq => (nameof(AgentHubMethods.Counters), AgentCounters.Of(seq, update.ReadAt, index, update.Rules, update.Policies)!));
        }
    }

    public void StatusChanged(CollectorStatus status)
    {
        lock (_gate)
        {
            _status = status;
            Enqueue(seq => (nameof(AgentHubMethods.Status), new AgentStatus(seq, status)));
        }
    }

    /// <summary>The reader asks for everything again (it missed a message, or has just started).</summary>
    public void RequestSnapshot()
    {
        _resync = true;
        lock (_gate)
        {
            Enqueue(_ => ("", "")); // wakes the sender
        }
    }

    /// <summary>
    /// Sends a snapshot, then every queued delta in order, until <paramref name="closed"/> completes or
    /// <paramref name="ct"/> is cancelled. <paramref name="send"/> gets the hub method, the message and whether it is the
    /// snapshot (an agent waits for the dashboard to take that one). Nothing is queued while no reader is attached.
    /// </summary>
    public async Task SendAsync(Func<string, object, bool, CancellationToken, Task> send, Task closed, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(send);
        long sequence = 0;
        _resync = true;
        _attached = true;
        try
        {
            while (!ct.IsCancellationRequested && !closed.IsCompleted)
            {
                if (_resync)
                {
                    _resync = false;
                    var (snapshot, counters) = TakeSnapshot(sequence);
                    await send(nameof(AgentHubMethods.Snapshot), snapshot, true, ct).ConfigureAwait(false);
                    sequence++;
                    if (counters is not null)
                    {
                        await send(nameof(AgentHubMethods.Counters), counters, false, ct).ConfigureAwait(false);
                        sequence++;
                    }
                }

                var read = _queue.Reader.WaitToReadAsync(ct).AsTask();
                if (await Task.WhenAny(read, closed).ConfigureAwait(false) == closed)
                {
                    return;
                }

                while (!_resync && _queue.Reader.TryRead(out var make))
                {
                    Interlocked.Decrement(ref _queued);
                    var (method, message) = make(sequence);
                    if (method.Length == 0)
                    {
                        continue; // a wake-up for a requested snapshot
                    }

                    await send(method, message, false, ct).ConfigureAwait(false);
                    sequence++;
                }
            }
        }
        finally
        {
            _attached = false;
            _resync = true;
            CounterWatchers = 0;
        }
    }

    /// <summary>Queues a delta; called under the state lock, so a snapshot taken under it holds exactly the deltas drained before it.</summary>
    private void Enqueue(Func<long, (string, object)> message)
    {
        if (!_attached)
        {
            // Nobody to send to: the snapshot sent to the next reader holds the latest state.
            _resync = true;
            return;
        }

        if (Interlocked.Increment(ref _queued) > queueLimit)
        {
            // Nobody takes them (a slow reader): a snapshot at the next send says it all.
            Interlocked.Decrement(ref _queued);
            _resync = true;
            return;
        }

        _queue.Writer.TryWrite(message);
    }

    /// <summary>
    /// Everything known now, numbered <paramref name="sequence"/>, with the counters that moved since the ruleset text;
    /// the deltas queued until now are dropped in the same lock (the snapshot holds them).
    /// </summary>
    private (AgentSnapshot Snapshot, AgentCounters? Counters) TakeSnapshot(long sequence)
    {
        lock (_gate)
        {
            while (_queue.Reader.TryRead(out _))
            {
                Interlocked.Decrement(ref _queued);
            }

            var status = _status ?? CollectorStatus.Starting("agent", 0);
            var counters = _moved.Count + _policiesMoved.Count > 0
                ? AgentCounters.Of(sequence + 1, _countersReadAt, _index, [.. _moved.Values.Where(r => _index.ContainsKey(r.Id))], [.. _policiesMoved.Values])
                : null;
            return (new AgentSnapshot(sequence, status, _topology, _firewall), counters);
        }
    }
}

/// <summary>The dashboard's agent hub's method names (<c>AgentHub</c>) an agent calls, kept in one place.</summary>
public static class AgentHubMethods
{
    public const string Hello = nameof(Hello);
    public const string Snapshot = nameof(Snapshot);
    public const string Topology = nameof(Topology);
    public const string Firewall = nameof(Firewall);
    public const string Counters = nameof(Counters);
    public const string Status = nameof(Status);
}
