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
            if (EndReason != CaptureEndReason.Running)
            {
                return false;
            }

            if (b.Sequence != _next)
            {
                LostBatches += Math.Max(0, b.Sequence - _next);
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

    /// <summary>The most packets kept per trace (a trace lasts at most 30 minutes; its flow is one pair of addresses).</summary>
    public const int MaxPackets = 10_000;

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
            foreach (var p in u.Packets)
            {
                if (!_packets.ContainsKey(p.Key))
                {
                    if (_order.Count >= MaxPackets)
                    {
                        continue;
                    }

                    _order.Add(p.Key);
                }

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
