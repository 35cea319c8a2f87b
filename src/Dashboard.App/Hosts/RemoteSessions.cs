using Dashboard.Core.Firewall;
using Dashboard.Host.Agents;
using Dashboard.Host.Capture;
using Dashboard.Host.Netfilter;

namespace Dashboard.App.Hosts;

/// <summary>
/// A capture that runs on an agent's host, as this dashboard knows it: what was asked (and by whom), and the counts and
/// state its batches brought. Its packets reach viewers through the host's live feed as the batches come.
/// </summary>
public sealed class RemoteCaptureSession(string id, string host, CaptureRequest request) : ICaptureSession
{
    private readonly object _gate = new();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _next;

    public string Id { get; } = id;

    /// <summary>The host whose agent runs it.</summary>
    public string Host { get; } = host;

    public CaptureRequest Request { get; } = request;

    public DateTimeOffset StartedAt { get; private set; } = DateTimeOffset.UtcNow;

    public DateTimeOffset? EndedAt { get; private set; }

    public CaptureEndReason EndReason { get; private set; } = CaptureEndReason.Running;

    public string? EndMessage { get; private set; }

    public CaptureStats Stats { get; private set; } = new(0, 0, null, null, null);

    /// <summary>Batches that never arrived (numbers skipped): their packets are missing from the counts, and the end says so.</summary>
    public long LostBatches { get; private set; }

    public Task Completion => _done.Task;

    /// <summary>Batches taken at most per second and capture (a host sends about ten); beyond that they are dropped and counted lost.</summary>
    public const double MaxBatchesPerSecond = 12;

    private double _tokens = 2 * MaxBatchesPerSecond;
    private long _refilledAt = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>
    /// Whether a batch numbered <paramref name="sequence"/> may be taken (decoded and shown) now: numbers only go up, and
    /// a capture gets about as many batches a second as its host sends when all is well. A batch refused here is one
    /// the capture's end will say never arrived.
    /// </summary>
    internal bool Admit(long sequence, bool final)
    {
        lock (_gate)
        {
            if (EndReason != CaptureEndReason.Running || sequence < _next || sequence == long.MaxValue)
            {
                return false;
            }

            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            _tokens = Math.Min(2 * MaxBatchesPerSecond, _tokens + (System.Diagnostics.Stopwatch.GetElapsedTime(_refilledAt, now).TotalSeconds * MaxBatchesPerSecond));
            _refilledAt = now;
            if (_tokens < 1 && !final)
            {
                return false;
            }

            _tokens -= 1;
            return true;
        }
    }

    internal void Started(DateTimeOffset at)
    {
        lock (_gate)
        {
            StartedAt = at;
        }
    }

    /// <summary>Takes a batch's counts and state; false when the capture had ended already (nothing changes then).</summary>
    internal bool Take(AgentCaptureBatch b)
    {
        lock (_gate)
        {
            if (EndReason != CaptureEndReason.Running || b.Sequence < _next)
            {
                return false;
            }

            if (b.Sequence != _next)
            {
                LostBatches += b.Sequence - _next;
            }

            _next = b.Sequence + 1;
            Stats = b.Stats;
            if (b.Final)
            {
                EndedAt = b.EndedAt ?? DateTimeOffset.UtcNow;
                EndReason = b.EndReason;
                EndMessage = LostBatches == 0 ? b.EndMessage
                    : $"{(b.EndMessage is null ? "" : b.EndMessage + "; ")}{LostBatches} batches from the host never arrived: their packets are not in the counts here (the pcap has them)";
            }
        }

        if (b.Final)
        {
            _done.TrySetResult();
        }

        return true;
    }

    /// <summary>Ends it without its final batch (the agent went away); false when it had ended already.</summary>
    internal bool End(CaptureEndReason reason, string message)
    {
        lock (_gate)
        {
            if (EndReason != CaptureEndReason.Running)
            {
                return false;
            }

            EndedAt = DateTimeOffset.UtcNow;
            EndReason = reason;
            EndMessage = message;
        }

        _done.TrySetResult();
        return true;
    }
}

/// <summary>A verdict trace that runs on an agent's host: what was asked, and the paths its updates brought.</summary>
public sealed class RemoteTraceSession(string id, string host, TraceRequest request) : ITraceSession
{
    private readonly object _gate = new();
    private readonly Dictionary<string, TracedPacket> _packets = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private IReadOnlyList<RuleCommandResult> _commands = [];
    private readonly TaskCompletionSource _cleanedUp = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the agent says the trace's rules are gone and its monitor ended (or the agent went away).</summary>
    public Task CleanedUp => _cleanedUp.Task;

    /// <summary>The most packets kept per trace, as a local trace keeps.</summary>
    public const int MaxPackets = 500;

    /// <summary>The characters of rule texts and names kept per trace in all (a host's agent could otherwise fill memory).</summary>
    public const long MaxText = 2 * 1024 * 1024;

    private long _text;

    /// <summary>Packets (or grown paths) not kept: beyond <see cref="MaxPackets"/> or <see cref="MaxText"/>.</summary>
    public long NotKept { get; private set; }

    public string Id { get; } = id;

    public string Host { get; } = host;

    public TraceRequest Request { get; } = request;

    public string Tag { get; private set; } = "";

    public DateTimeOffset StartedAt { get; private set; } = DateTimeOffset.UtcNow;

    public DateTimeOffset? EndedAt { get; private set; }

    public string? EndMessage { get; private set; }

    public bool IsRunning => EndedAt is null;

    public bool IsCleanedUp { get; private set; }

    public long UnparsedLines { get; private set; }

    public IReadOnlyList<RuleCommandResult> Commands
    {
        get
        {
            lock (_gate)
            {
                return _commands;
            }
        }
    }

    public IReadOnlyList<TracedPacket> Packets
    {
        get
        {
            lock (_gate)
            {
                return [.. _order.Select(k => _packets[k])];
            }
        }
    }

    internal void Started(DateTimeOffset at, string tag, IReadOnlyList<RuleCommandResult> commands)
    {
        lock (_gate)
        {
            (StartedAt, Tag, _commands) = (at, tag, commands);
        }
    }

    /// <summary>Takes an update: its packets (new or grown), and the trace's state; the packets actually kept are returned.</summary>
    internal IReadOnlyList<TracedPacket> Take(AgentTraceUpdate u)
    {
        var kept = new List<TracedPacket>(u.Packets.Count);
        lock (_gate)
        {
            if (IsCleanedUp)
            {
                return [];
            }

            foreach (var p in u.Packets)
            {
                var size = TextOf(p);
                var known = _packets.TryGetValue(p.Key, out var before);
                if ((!known && _order.Count >= MaxPackets) || _text - (known ? TextOf(before!) : 0) + size > MaxText)
                {
                    NotKept++;
                    continue;
                }

                if (!known)
                {
                    _order.Add(p.Key);
                }

                _text += size - (known ? TextOf(before!) : 0);
                _packets[p.Key] = p;
                kept.Add(p);
            }

            _commands = u.Commands;
            UnparsedLines = u.UnparsedLines;
            if (u.EndedAt is { } ended && EndedAt is null)
            {
                EndedAt = ended;
                EndMessage = u.EndMessage;
            }

            IsCleanedUp |= u.CleanedUp;
        }

        if (u.CleanedUp)
        {
            _cleanedUp.TrySetResult();
        }

        return kept;
    }

    private static long TextOf(TracedPacket p) => p.Key.Length + p.Steps.Sum(s => (long)s.Table.Length + s.Chain.Length + s.Verdict.Length + (s.JumpTarget?.Length ?? 0) + (s.RuleText?.Length ?? 0));

    /// <summary>The commands the agent reported when it stopped the trace (they say whether its rules were removed).</summary>
    internal void Stopped(IReadOnlyList<RuleCommandResult> commands)
    {
        lock (_gate)
        {
            if (commands.Count > 0)
            {
                _commands = commands;
            }
        }
    }

    /// <summary>Ends it without the agent's word (the agent went away); false when it had ended already.</summary>
    internal bool End(string message)
    {
        lock (_gate)
        {
            if (EndedAt is not null)
            {
                return false;
            }

            EndedAt = DateTimeOffset.UtcNow;
            EndMessage = message;
        }

        _cleanedUp.TrySetResult();
        return true;
    }
}
