using System.Globalization;

namespace Dashboard.Core.Firewall;

public enum TraceStepKind
{
    Rule,
    Policy,
    Return,
}

/// <summary>
/// One line of a packet's path as the kernel reported it: a rule that matched (with its verdict, CONTINUE for a
/// non-terminal target such as TRACE or LOG), a chain's policy, or an implicit return at a chain's end.
/// <see cref="Position"/> is the rule's 1-based number in its chain, resolved against the ruleset (null if not found).
/// </summary>
public sealed record TraceStep(string Table, string Chain, TraceStepKind Kind, string Verdict, string? JumpTarget, string? RuleText, int? Position = null)
{
    public bool IsTerminal => Verdict is "ACCEPT" or "DROP" or "REJECT" or "QUEUE";

    /// <summary>How the path reads in the UI: <c>filter DOCKER-ISOLATION-STAGE-2 #2 DROP</c>, <c>filter FORWARD policy ACCEPT</c>.</summary>
    public string Label => Kind switch
    {
        TraceStepKind.Policy => $"{Table} {Chain} policy {Verdict}",
        TraceStepKind.Return => $"{Table} {Chain} end, return",
        _ => $"{Table} {Chain} {(Position is { } p ? "#" + p.ToString(CultureInfo.InvariantCulture) : "(rule not in the last read)")} {Verdict}{(JumpTarget is null ? "" : " " + JumpTarget)}",
    };
}

/// <summary>
/// A traced packet: its headers as first seen (before any NAT) and every step of its path through the hooks.
/// Packets are told apart by source address and IP identification, which stay the same from raw PREROUTING to
/// POSTROUTING (the kernel's trace id changes between hooks).
/// </summary>
public sealed record TracedPacket(string Key, DateTimeOffset SeenAt, string? InInterface, string? OutInterface, string Source, string Destination, int Length, int IpId, IReadOnlyList<TraceStep> Steps)
{
    /// <summary>The step that decided the packet's fate in the filter table (or a DROP anywhere); null while none has.</summary>
    public TraceStep? Decision =>
        Steps.LastOrDefault(s => s.IsTerminal && s.Table == "filter")
        ?? Steps.FirstOrDefault(s => s.Verdict is "DROP" or "REJECT");
}
