using Dashboard.Core.Firewall;

namespace Dashboard.Host.Netfilter;

/// <summary>
/// A verdict trace as its viewers see it, wherever it runs: here (<see cref="TraceSession"/>) or on another host, whose
/// agent runs it and sends its packets' paths.
/// </summary>
public interface ITraceSession
{
    string Id { get; }

    TraceRequest Request { get; }

    /// <summary>The comment on the trace's TRACE rules.</summary>
    string Tag { get; }

    DateTimeOffset StartedAt { get; }

    DateTimeOffset? EndedAt { get; }

    string? EndMessage { get; }

    bool IsRunning { get; }

    /// <summary>True once the trace's rules are removed and its monitor has exited.</summary>
    bool IsCleanedUp { get; }

    /// <summary>The commands that inserted and removed the trace's rules, with their results.</summary>
    IReadOnlyList<RuleCommandResult> Commands { get; }

    IReadOnlyList<TracedPacket> Packets { get; }

    long UnparsedLines { get; }
}
