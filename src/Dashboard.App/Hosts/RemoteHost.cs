using System.Collections.Concurrent;
using Dashboard.App.Live;
using Dashboard.Core.Capture;
using Dashboard.Core.Firewall;
using Dashboard.Host.Agents;
using Dashboard.Host.Collector;

namespace Dashboard.App.Hosts;

/// <summary>How a registered host's agent stands.</summary>
public enum AgentState
{
    /// <summary>Registered, no agent has said hello since this dashboard started.</summary>
    NeverConnected,

    Connected,

    /// <summary>Was connected; its last state is kept and shown as stale.</summary>
    Disconnected,

    /// <summary>Its agent speaks another protocol version: refused until it is upgraded.</summary>
    Incompatible,
}

/// <summary>
/// One host reported by an agent: its live feed (the same kind the local host has, so pages and the hub read it the same
/// way) and the connection's protocol state. Messages are applied in order of their sequence numbers; a gap, or a delta
/// before any snapshot, is not applied and asks the agent for a new snapshot. Whatever the agent claims, everything is
/// recorded under <see cref="Name"/>, the host its token was issued for. Thread-safe: the hub calls it per connection,
/// pages read it.
/// </summary>
public sealed class RemoteHost(string name, LiveFeed? feed = null)
{
    private readonly object _gate = new();
    private long _expected = -1; // next sequence number, -1 while a snapshot is awaited
    private bool _snapshotAsked;
    private FirewallRule[] _rules = []; // the last parsed ruleset's rules, in the order AgentCounters indexes them
    private Action? _abort;
    private DockerLayout? _layout; // detected here from the parsed rules, not taken from the agent

    public string Name { get; } = name;

    /// <summary>The host's live feed: its own, or one given (a replica applies the duty holder's reads of their shared host to its local feed).</summary>
    public LiveFeed Feed { get; } = feed ?? new(name);

    public AgentState State { get; private set; } = AgentState.NeverConnected;

    public string? ConnectionId { get; private set; }

    public DateTimeOffset? ConnectedSince { get; private set; }

    public DateTimeOffset? DisconnectedAt { get; private set; }

    public string? AgentVersion { get; private set; }

    public int? ProtocolVersion { get; private set; }

    /// <summary>Why the agent was refused or why its last message was not applied.</summary>
    public string? LastProblem { get; private set; }

    public DateTimeOffset? LastMessageAt { get; private set; }

    /// <summary>From the agent's read of the counters to their arrival here (the two clocks' offset included).</summary>
    public TimeSpan? Lag { get; private set; }

    public long Messages { get; private set; }

    public long Snapshots { get; private set; }

    /// <summary>Deltas not applied because one before them was missing (each asked for a snapshot).</summary>
    public long Gaps { get; private set; }

    /// <summary>Counter changes for rules the host's ruleset does not hold (dropped, not stored).</summary>
    public long UnknownCounters { get; private set; }

    public bool IsStale => State != AgentState.Connected;

    /// <summary>Captures and traces kept per host beyond the running ones (their pcaps stay on the host for its retention).</summary>
    public const int KeepEndedSessions = 32;

    private readonly ConcurrentDictionary<string, RemoteCaptureSession> _captures = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RemoteTraceSession> _traces = new(StringComparer.Ordinal);

    /// <summary>Batches and updates for sessions this dashboard does not know (dropped and counted).</summary>
    public long UnknownSessionMessages { get; private set; }

    /// <summary>Host-wide captures started on this host from this dashboard, oldest first.</summary>
    public IReadOnlyList<RemoteCaptureSession> Captures => [.. _captures.Values.OrderBy(c => c.StartedAt)];

    public IReadOnlyList<RemoteTraceSession> Traces => [.. _traces.Values.OrderBy(t => t.StartedAt)];

    public RemoteCaptureSession? FindCapture(string id) => _captures.GetValueOrDefault(id);

    public RemoteTraceSession? FindTrace(string id) => _traces.GetValueOrDefault(id);

    /// <summary>How long after its time limit a session still running here is ended by the dashboard (its host never said it ended).</summary>
    public static readonly TimeSpan EndGrace = TimeSpan.FromSeconds(30);

    /// <summary>Running captures and traces this dashboard keeps on one host at most (the agent's own limits: 8 and 4).</summary>
    public int RunningCaptures => _captures.Values.Count(c => c.EndReason == Dashboard.Host.Capture.CaptureEndReason.Running);

    public int RunningTraces => _traces.Values.Count(t => t.IsRunning);

    /// <summary>A capture about to be asked of the agent: known before the command goes, so no batch of it is lost.</summary>
    public void Track(RemoteCaptureSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        _captures[session.Id] = session;
        _ = EndLateAsync(session.Request.TimeLimit ?? TimeSpan.FromHours(4), () =>
        {
            if (session.End(Dashboard.Host.Capture.CaptureEndReason.Failed, $"host {Name} never said the capture ended (its time limit passed {EndGrace.TotalSeconds:0} s ago): it is taken as ended"))
            {
                Feed.PacketsCaptured(session, PacketBatch.Empty, true);
            }
        });
        foreach (var old in _captures.Values.Where(c => c.EndReason != Dashboard.Host.Capture.CaptureEndReason.Running).OrderByDescending(c => c.StartedAt).Skip(KeepEndedSessions).ToList())
        {
            _captures.TryRemove(old.Id, out _);
        }
    }

    public void Track(RemoteTraceSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        _traces[session.Id] = session;
        _ = EndLateAsync(session.Request.TimeLimit ?? Dashboard.Host.Netfilter.TraceService.DefaultDuration, () =>
        {
            if (session.End($"host {Name} never said the trace ended (its time limit passed {EndGrace.TotalSeconds:0} s ago): it is taken as ended"))
            {
                Feed.TraceUpdated(session, []);
            }
        });
        foreach (var old in _traces.Values.Where(t => !t.IsRunning).OrderByDescending(t => t.StartedAt).Skip(KeepEndedTraces).ToList())
        {
            _traces.TryRemove(old.Id, out _);
        }
    }

    /// <summary>Ended traces kept per host (their paths are held here; an ended capture holds only counts).</summary>
    public const int KeepEndedTraces = 8;

    private static async Task EndLateAsync(TimeSpan limit, Action end)
    {
        await Task.Delay(limit + EndGrace).ConfigureAwait(false);
        end();
    }

    private readonly Dictionary<string, long> _stopsAsked = new(StringComparer.Ordinal);
    private long _dropLoggedAt;

    /// <summary>
    /// Whether to ask the agent to stop a session it reports but this dashboard does not run (any more): once per
    /// session and 30 s, for at most 64 sessions at a time, so a host cannot make the dashboard send commands in a loop.
    /// </summary>
    public bool AskToStop(string id)
    {
        if (FindCapture(id) is { EndReason: Dashboard.Host.Capture.CaptureEndReason.Running } || FindTrace(id) is { IsRunning: true })
        {
            return false;
        }

        lock (_gate)
        {
            var now = Environment.TickCount64;
            foreach (var old in _stopsAsked.Where(kv => now - kv.Value > 30_000).Select(kv => kv.Key).ToList())
            {
                _stopsAsked.Remove(old);
            }

            if (_stopsAsked.ContainsKey(id) || _stopsAsked.Count >= 64)
            {
                return false;
            }

            _stopsAsked[id] = now;
            return true;
        }
    }

    /// <summary>Whether a dropped message should be logged now (at most one line in 10 s per host).</summary>
    public bool ShouldLogDrop()
    {
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _dropLoggedAt);
        return now - last > 10_000 && Interlocked.CompareExchange(ref _dropLoggedAt, now, last) == last;
    }

    /// <summary>A capture the agent refused or never started: forgotten.</summary>
    public void Forget(RemoteCaptureSession session) => _captures.TryRemove(new KeyValuePair<string, RemoteCaptureSession>(session.Id, session));

    public void Forget(RemoteTraceSession session) => _traces.TryRemove(new KeyValuePair<string, RemoteTraceSession>(session.Id, session));

    /// <summary>
    /// A capture's batch from the host's current connection: its frames decoded here (the dashboard's own decoder), its
    /// counts taken, and the batch handed to the host's viewers. Null when applied, else why not.
    /// </summary>
    public string? Apply(string connectionId, AgentCaptureBatch b)
    {
        ArgumentNullException.ThrowIfNull(b);
        if (!IsCurrent(connectionId))
        {
            return "";
        }

        lock (_gate)
        {
            Received();
        }

        if (FindCapture(b.Id) is not { EndReason: Dashboard.Host.Capture.CaptureEndReason.Running } session)
        {
            lock (_gate)
            {
                UnknownSessionMessages++;
            }

            return $"no capture {b.Id} runs on this host for this dashboard";
        }

        // Decoded only once the batch is known to be taken: a host cannot make the dashboard decode more than its captures' pace.
        if (!session.Admit(b.Sequence, b.Final))
        {
            return null;
        }

        var batch = new RawPacketBatch([.. b.Shown.Select(f => new PcapRecord(f.Timestamp, f.OriginalLength, f.Data))], b.NotShown, b.NotShownFlows).Decode(b.LinkType);
        if (session.Take(b))
        {
            Feed.PacketsCaptured(session, batch, b.Final);
        }

        return null;
    }

    /// <summary>A trace's update from the host's current connection; null when applied, else why not.</summary>
    public string? Apply(string connectionId, AgentTraceUpdate u)
    {
        ArgumentNullException.ThrowIfNull(u);
        if (!IsCurrent(connectionId))
        {
            return "";
        }

        lock (_gate)
        {
            Received();
        }

        if (FindTrace(u.Id) is not { IsCleanedUp: false } session)
        {
            lock (_gate)
            {
                UnknownSessionMessages++;
            }

            return $"no trace {u.Id} runs on this host for this dashboard";
        }

        Feed.TraceUpdated(session, session.Take(u));
        return null;
    }

    /// <summary>The agent's link went away: what ran there for this dashboard ended with it (the agent stops it when it loses the link).</summary>
    private void EndSessions(DateTimeOffset at, string why)
    {
        foreach (var c in _captures.Values)
        {
            if (c.End(Dashboard.Host.Capture.CaptureEndReason.Failed, $"{why} at {at:u}: the agent stops its captures then; the pcap can be downloaded while that agent runs"))
            {
                Feed.PacketsCaptured(c, PacketBatch.Empty, true);
            }
        }

        foreach (var t in _traces.Values)
        {
            if (t.End($"{why} at {at:u}: the agent stops its traces then and removes their rules"))
            {
                Feed.TraceUpdated(t, []);
            }
        }
    }

    internal void Attach(string connectionId, AgentHello hello, Action abort)
    {
        Action? previous;
        lock (_gate)
        {
            previous = ConnectionId is not null && ConnectionId != connectionId ? _abort : null;
            ConnectionId = connectionId;
            _abort = abort;
            if (State == AgentState.Disconnected && DisconnectedAt is { } down)
            {
                // The link was down from then until now: the feed marks the span, the Hosts page lists it.
                Feed.RecordGap(down, DateTimeOffset.UtcNow);
            }

            State = AgentState.Connected;
            ConnectedSince = DateTimeOffset.UtcNow;
            DisconnectedAt = null;
            AgentVersion = hello.AgentVersion;
            ProtocolVersion = hello.ProtocolVersion;
            LastProblem = null;
            _expected = -1;
            _snapshotAsked = false;
        }

        // One agent per host: the newest connection wins (an agent restarted before the old connection timed out). An
        // agent that connects again has stopped what it ran for the last connection (or is a new process): those end here.
        EndSessions(DateTimeOffset.UtcNow, "the host's agent connected again");
        previous?.Invoke();
    }

    /// <summary>An agent was refused at hello; a host whose agent is connected keeps showing that one.</summary>
    internal void Refuse(AgentHello hello, string reason)
    {
        lock (_gate)
        {
            if (State == AgentState.Connected)
            {
                return;
            }

            State = AgentState.Incompatible;
            AgentVersion = hello.AgentVersion;
            ProtocolVersion = hello.ProtocolVersion;
            LastProblem = reason;
        }
    }

    private double _tokens = BucketSize;
    private long _refilledAt = System.Diagnostics.Stopwatch.GetTimestamp();
    private const double BucketSize = 400;
    private const double RefillPerSecond = 100;

    /// <summary>
    /// Whether a message costing <paramref name="cost"/> may be taken now: a token bucket of 400 refilled at 100 a second
    /// (an agent reading 20 times a second sends about 40 messages; a snapshot or a ruleset costs 20, its parse is the dear part).
    /// </summary>
    public bool Admit(double cost)
    {
        lock (_gate)
        {
            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            _tokens = Math.Min(BucketSize, _tokens + (System.Diagnostics.Stopwatch.GetElapsedTime(_refilledAt, now).TotalSeconds * RefillPerSecond));
            _refilledAt = now;
            if (_tokens < cost)
            {
                return false;
            }

            _tokens -= cost;
            return true;
        }
    }

    /// <summary>
    /// The connection ended; false when it was not the host's current one (a newer one replaced it). The status says
    /// why with <paramref name="engineError"/> and <paramref name="firewallError"/> (by default: the agent disconnected).
    /// </summary>
    internal bool Detach(string connectionId, string? engineError = null, string? firewallError = null)
    {
        CollectorStatus status;
        lock (_gate)
        {
            if (ConnectionId != connectionId)
            {
                return false;
            }

            ConnectionId = null;
            _abort = null;
            State = AgentState.Disconnected;
            DisconnectedAt = DateTimeOffset.UtcNow;
            _expected = -1;
            status = Feed.Status with
            {
                EngineAvailable = false,
                FirewallAvailable = false,
                EngineError = engineError ?? $"the agent is disconnected since {DisconnectedAt:u}: the last state it reported is shown",
                FirewallError = firewallError ?? "the agent is disconnected: counters are not read",
            };
        }

        Feed.StatusChanged(status);
        EndSessions(DateTimeOffset.UtcNow, "the host's agent disconnected");
        return true;
    }

    /// <summary>Ends the live connection (the token was revoked).</summary>
    public void Abort()
    {
        Action? abort;
        lock (_gate)
        {
            abort = _abort;
        }

        abort?.Invoke();
    }

    /// <summary>Whether <paramref name="connectionId"/> is this host's current connection (a replaced one may not report).</summary>
    public bool IsCurrent(string connectionId)
    {
        lock (_gate)
        {
            return ConnectionId == connectionId;
        }
    }

    /// <summary>Applies a snapshot from the host's current connection: everything the dashboard knows of the host is replaced by it.</summary>
    public void Apply(string connectionId, AgentSnapshot s)
    {
        ArgumentNullException.ThrowIfNull(s);
        lock (_gate)
        {
            if (ConnectionId != connectionId)
            {
                return; // a replaced connection's last words
            }

            Received();
            Snapshots++;
            _expected = s.Sequence + 1;
            _snapshotAsked = false;
        }

        if (s.Topology is { } topology)
        {
            Feed.TopologyChanged(topology);
        }

        var status = s.Status;
        if (s.Firewall is { } firewall && !ApplyFirewall(firewall, ref status))
        {
            status = status with { FirewallAvailable = false };
        }

        Feed.StatusChanged(Stamp(status));
    }

    /// <summary>
    /// Applies a delta that is next in sequence and returns null. Otherwise it is not applied, and the answer is why a
    /// snapshot is needed (send <see cref="AgentProtocol.SnapshotRequested"/>), or empty when one was asked for already.
    /// </summary>
    public string? Apply(string connectionId, AgentTopology m) => InSequence(connectionId, m.Sequence) ?? Do(() => Feed.TopologyChanged(m.Topology));

    public string? Apply(string connectionId, AgentFirewallChange m) => InSequence(connectionId, m.Sequence) ?? Do(() =>
    {
        var before = Feed.Status;
        var status = before;
        var parsed = ApplyFirewall(m.Firewall, ref status);
        if (!parsed || !before.FirewallAvailable || before.Layout?.Kind != Volatile.Read(ref _layout)?.Kind)
        {
            // Said at once: rules that do not parse, rules that parse again, or a new layout.
            Feed.StatusChanged(Stamp(parsed ? status : status with { FirewallAvailable = false }));
        }
    });

    public string? Apply(string connectionId, AgentCounters m) => InSequence(connectionId, m.Sequence) ?? Do(() =>
    {
        var known = Volatile.Read(ref _rules);
        var rules = new List<RuleCounterChange>(m.Moved.Count / 3);
        var unknown = 0;
        for (var i = 0; i + 2 < m.Moved.Count; i += 3)
        {
            if (m.Moved[i] >= (ulong)known.Length)
            {
                unknown++;
                continue;
            }

            // Deltas from what this dashboard holds: a count that went down is a reset (the rule was zeroed or re-made).
            var r = known[(int)m.Moved[i]];
            var (packets, bytes) = (m.Moved[i + 1], m.Moved[i + 2]);
            var (p0, b0) = Feed.CountersOf(r);
            var reset = packets < p0 || bytes < b0;
            rules.Add(new RuleCounterChange(RuleId.Of(r), r.Position, packets, bytes, reset ? packets : packets - p0, reset ? bytes : bytes - b0, reset));
        }

        var policies = m.Policies.Where(p => Feed.Ruleset?.FindTable(p.Table, p.Family)?.FindChain(p.Chain) is not null).ToList();
        lock (_gate)
        {
            UnknownCounters += unknown + m.Policies.Count - policies.Count;
            Lag = DateTimeOffset.UtcNow - m.ReadAt;
        }

        // Kept under the time they arrived: the history's pruning must not trust another machine's clock.
        if (rules.Count > 0 || policies.Count > 0)
        {
            Feed.CountersChanged(new CountersUpdate(Name, DateTimeOffset.UtcNow, rules, policies));
        }
    });

    public string? Apply(string connectionId, AgentStatus m) => InSequence(connectionId, m.Sequence) ?? Do(() => Feed.StatusChanged(Stamp(m.Status)));

    /// <summary>An agent's status under this host's name, with the layout and rule count of the rules parsed here.</summary>
    private CollectorStatus Stamp(CollectorStatus s) => s with
    {
        Host = Name,
        Layout = Volatile.Read(ref _layout),
        RuleCount = Feed.Ruleset?.RuleCount ?? 0,
    };

    private static string? Do(Action apply)
    {
        apply();
        return null;
    }

    /// <summary>Parses and classifies the agent's rules; a dump that does not parse is recorded as the host's firewall error.</summary>
    private bool ApplyFirewall(AgentFirewall firewall, ref CollectorStatus status)
    {
        Ruleset ruleset;
        try
        {
            ruleset = firewall.Parse();
        }
        catch (RulesetFormatException ex)
        {
            var problem = $"the agent sent rules this dashboard cannot read ({ex.Message}); the last good ruleset is kept";
            lock (_gate)
            {
                LastProblem = problem;
            }

            status = status with { FirewallError = problem };
            return false;
        }

        var topology = Feed.Topology;
        RuleClassifier.Classify(ruleset, topology?.Networks, topology?.Containers);
        Volatile.Write(ref _rules, [.. ruleset.Rules]);
        Volatile.Write(ref _layout, DockerLayoutDetector.Detect(ruleset));
        lock (_gate)
        {
            LastProblem = null;
        }

        Feed.FirewallChanged(ruleset, DateTimeOffset.UtcNow);
        status = status with { FirewallAvailable = true, FirewallError = null };
        return true;
    }

    private string? InSequence(string connectionId, long sequence)
    {
        lock (_gate)
        {
            if (ConnectionId != connectionId)
            {
                return ""; // a replaced connection's last words: nothing to apply, nothing to ask
            }

            Received();
            if (_expected >= 0 && sequence == _expected)
            {
                _expected++;
                return null;
            }

            var why = _expected < 0 ? "no snapshot since the connection began or since a gap" : $"message {sequence} arrived where {_expected} was due";
            if (_expected >= 0)
            {
                Gaps++;
                _expected = -1;
            }

            if (_snapshotAsked)
            {
                return ""; // asked already; wait for it
            }

            _snapshotAsked = true;
            return why;
        }
    }

    private void Received()
    {
        Messages++;
        LastMessageAt = DateTimeOffset.UtcNow;
    }
}
