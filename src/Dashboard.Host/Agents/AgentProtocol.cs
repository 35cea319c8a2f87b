using Dashboard.Core.Changes;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Collector;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;

namespace Dashboard.Host.Agents;

/// <summary>
/// The agent protocol (version <see cref="Version"/>) spoken over SignalR on <see cref="HubPath"/>. The agent connects
/// out with its token (<c>Authorization: Bearer nla_…</c>), calls <c>Hello</c>, then sends a <c>Snapshot</c> and after
/// it deltas (<c>Topology</c>, <c>Firewall</c>, <c>Counters</c>, <c>Status</c>), each numbered by one sequence per
/// connection. The dashboard answers a gap (or anything before a snapshot) with <c>SnapshotRequested</c>, and tells the
/// agent how many watch its counters (<c>WatchersChanged</c>) so it reads faster while anyone does. Firewall rules travel
/// as the tools printed them: the dashboard parses them with its own readers, so an agent's input gets the same checks
/// as a pasted dump.
/// </summary>
public static class AgentProtocol
{
    public const int Version = 1;

    public const string HubPath = "/hubs/agent";

    /// <summary>Agent tokens: this prefix and 43 URL-safe characters (API tokens start nlt_ and are refused here).</summary>
    public const string TokenPrefix = "nla_";

    /// <summary>The largest message either side accepts (a 10,000-rule ruleset is about 1.4 MiB of text).</summary>
    public const long MaxMessageBytes = 16 * 1024 * 1024;

    /// <summary>Client methods the dashboard calls on an agent.</summary>
    public const string SnapshotRequested = nameof(SnapshotRequested);

    public const string WatchersChanged = nameof(WatchersChanged);

    /// <summary>A command with a result (SignalR client results): a bounded ping from inside a lab container (<see cref="AgentProbeRequest"/>).</summary>
    public const string Probe = nameof(Probe);

    /// <summary>A command with a result: one step of a run, or of an approved change, on the agent's host (<see cref="AgentStep"/>, answered by <see cref="AgentStepReply"/>).</summary>
    public const string Step = nameof(Step);

    /// <summary>The largest pcap an agent returns for a run's capture (its captures are limited to this size).</summary>
    public const long MaxRunPcapBytes = 8L * 1024 * 1024;

    /// <summary>
    /// A command with a result: a host-wide capture or trace that someone started from the dashboard
    /// (<see cref="AgentSessionCommand"/>, answered by <see cref="AgentSessionReply"/>). The agent then sends its packets
    /// as they come (<c>CaptureBatch</c>, <c>TraceUpdate</c> on the hub), and a capture's pcap in pieces when asked.
    /// </summary>
    public const string Session = nameof(Session);

    /// <summary>The most bytes of a capture's pcap in one <see cref="AgentSessionAction.ReadPcap"/> reply (a download holds one piece at a time).</summary>
    public const int MaxPcapChunk = 1024 * 1024;

    /// <summary>
    /// The most bytes of each frame a capture batch carries for the live view (Ethernet, IP and transport headers with
    /// room to spare); the whole frame stays in the pcap on the agent's host.
    /// </summary>
    public const int MaxBatchFrameBytes = 2_048;

    /// <summary>This build's version, as agents and dashboards exchange it.</summary>
    public static string BuildVersion { get; } = typeof(AgentProtocol).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
}

/// <summary>What an agent says first. <paramref name="Host"/> is the name it was configured with, if any (checked against its token's).</summary>
public sealed record AgentHello(int ProtocolVersion, string AgentVersion, string? Host);

/// <summary>The dashboard's answer: accepted (with the host name the token is for), or refused with the reason.</summary>
public sealed record AgentWelcome(bool Accepted, string? Reason, string Host, int ProtocolVersion, string DashboardVersion);

/// <summary>Firewall rules as read: <c>iptables-save -c</c> (and <c>ip6tables-save -c</c>) text, or <c>nft -j list ruleset</c>.</summary>
public sealed record AgentFirewall(RulesetFormat Format, string Text, string? Ipv6Text, DateTimeOffset ReadAt)
{
    public static AgentFirewall From(Ruleset ruleset, Netfilter.FirewallSnapshot s) =>
        new(ruleset.Format, s.RawText, s.RawIpv6Text, s.ReadAt);

    /// <summary>Parses the text with the dashboard's own readers; a <see cref="RulesetFormatException"/> names the line or item.</summary>
    public Ruleset Parse()
    {
        if (Format == RulesetFormat.NftJson)
        {
            return NftJsonReader.Read(Text);
        }

        var v4 = IptablesSaveReader.Read(Text, TableFamily.Ipv4);
        if (string.IsNullOrWhiteSpace(Ipv6Text))
        {
            return v4;
        }

        var v6 = IptablesSaveReader.Read(Ipv6Text, TableFamily.Ipv6);
        return new Ruleset { Format = v4.Format, Generator = v4.Generator, Tables = [.. v4.Tables, .. v6.Tables] };
    }
}

/// <summary>Everything the dashboard needs to show a host, sent on connect and whenever the dashboard asks.</summary>
public sealed record AgentSnapshot(long Sequence, CollectorStatus Status, HostTopology? Topology, AgentFirewall? Firewall);

public sealed record AgentTopology(long Sequence, HostTopology Topology);

public sealed record AgentFirewallChange(long Sequence, AgentFirewall Firewall);

/// <summary>
/// Counters that moved, compactly: <paramref name="Moved"/> holds triples (index, packets, bytes), where index is the
/// rule's place among the rules of the last <c>Firewall</c> text in the order the dashboard's readers list them (table
/// by table, chain by chain, as printed); both sides parse the same text with the same reader. The dashboard computes
/// the deltas itself (a count that went down is a reset, never a negative delta).
/// </summary>
public sealed record AgentCounters(long Sequence, DateTimeOffset ReadAt, IReadOnlyList<ulong> Moved, IReadOnlyList<PolicyCounterChange> Policies)
{
    /// <summary>The changes as triples, by the rules' index; null when one of them is not in <paramref name="index"/> (the agent then sends a snapshot).</summary>
    public static AgentCounters? Of(long sequence, DateTimeOffset readAt, IReadOnlyDictionary<RuleId, int> index, IEnumerable<RuleCounterChange> rules, IReadOnlyList<PolicyCounterChange> policies)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(rules);
        var moved = new List<ulong>();
        foreach (var r in rules)
        {
            if (!index.TryGetValue(r.Id, out var i))
            {
                return null;
            }

            moved.Add((ulong)i);
            moved.Add(r.Packets);
            moved.Add(r.Bytes);
        }

        return new AgentCounters(sequence, readAt, moved, policies);
    }

    /// <summary>Each rule's index as <see cref="Moved"/> uses it: its place in <see cref="Ruleset.Rules"/>.</summary>
    public static Dictionary<RuleId, int> IndexOf(Ruleset ruleset)
    {
        ArgumentNullException.ThrowIfNull(ruleset);
        var index = new Dictionary<RuleId, int>();
        var i = 0;
        foreach (var r in ruleset.Rules)
        {
            index.TryAdd(RuleId.Of(r), i++);
        }

        return index;
    }
}

public sealed record AgentStatus(long Sequence, CollectorStatus Status);

/// <summary><c>ping -c Count -W TimeoutSeconds Address</c> from inside <paramref name="Container"/> (the agent checks it is a lab container and a lab address).</summary>
public sealed record AgentProbeRequest(string Container, string Address, int Count, int TimeoutSeconds);

/// <summary>What the ping printed and counted, or why the agent would not run it (<paramref name="Refused"/>).</summary>
public sealed record AgentProbeReply(int Sent, int Received, string Output, string? Refused);

/// <summary>
/// The steps an agent carries out on its host: a run's (each checked by the agent: run names, labels, tags, lab
/// addresses) and an approved change's (a rule tagged <c>netlab:change-&lt;instance&gt;-&lt;id&gt;</c>, inserted, read
/// back, removed).
/// </summary>
public enum AgentStepAction
{
    /// <summary>The busybox image present (imported from the host's busybox when missing).</summary>
    EnsureImage,

    /// <summary>A labelled bridge network <see cref="AgentStep.Name"/> (a /24 inside 172.16.0.0/12).</summary>
    CreateNetwork,

    /// <summary>A labelled busybox container <see cref="AgentStep.Name"/> on the run's <see cref="AgentStep.Network"/>.</summary>
    RunContainer,

    /// <summary>The engine's version and firewall backend.</summary>
    ReadEngine,

    /// <summary>A fresh read of the rules, as text.</summary>
    ReadFirewall,

    /// <summary>One of the run's rules (<see cref="AgentStep.Rule"/>), tagged with the run's tag.</summary>
    InsertRule,

    /// <summary>Every rule carrying exactly the run's tag removed.</summary>
    DeleteTagged,

    /// <summary>A capture on one of the run's bridges (<see cref="AgentStep.Interface"/>); the reply names it.</summary>
    StartCapture,

    /// <summary>The capture <see cref="AgentStep.Capture"/> stopped; the reply carries its pcap.</summary>
    StopCapture,

    /// <summary>A bounded TCP connect from one of the run's containers.</summary>
    Tcp,

    /// <summary>The run's containers and networks removed, its rules and captures too.</summary>
    RemoveRun,

    /// <summary>What runs left behind removed: rules tagged <see cref="AgentStep.TagPrefix"/>… and resources of runs not in <see cref="AgentStep.Keep"/>.</summary>
    Reconcile,

    /// <summary>An approved change's rule (<see cref="AgentStep.Change"/>, tagged <see cref="AgentStep.Tag"/>) inserted.</summary>
    ChangeInsert,

    /// <summary>Every rule carrying exactly the change's tag (<see cref="AgentStep.Tag"/>) removed.</summary>
    ChangeDeleteTagged,

    /// <summary>One rule carrying the change's tag removed (a duplicate found by reconciliation).</summary>
    ChangeDeleteOne,

    /// <summary>Whether the host can trace: the reply's text is why not, or empty.</summary>
    TraceAvailable,

    /// <summary>A proposed change's rule (<see cref="AgentStep.Change"/>) inserted with no target, tagged <see cref="AgentStep.Tag"/> (…-staged): it only counts.</summary>
    ChangeStage,

    /// <summary>The change's staged rule replaced by the real one tagged <see cref="AgentStep.Tag"/>, in one iptables-restore transaction.</summary>
    ChangePromote,

    /// <summary>A trace of the run's flow (<see cref="AgentStep.Trace"/>); the reply names it and its rules' tag.</summary>
    StartTrace,

    /// <summary>The trace <see cref="AgentStep.Capture"/> stopped; the reply carries the packets it traced.</summary>
    StopTrace,
}

/// <summary>
/// One step of a run. <paramref name="RunKey"/> is the run's id (32 hex digits); names, tags and interfaces must be the
/// run's own, and the agent refuses anything else.
/// </summary>
public sealed record AgentStep(
    AgentStepAction Action,
    string RunKey,
    string? Name = null,
    string? Network = null,
    bool Internal = false,
    bool Icc = true,
    FirewallBackend? Backend = null,
    RuleSpec? Rule = null,
    string? Tag = null,
    string? Interface = null,
    string? Capture = null,
    string? Container = null,
    string? Target = null,
    string? Address = null,
    int Port = 0,
    int Count = 1,
    int TimeoutSeconds = 1,
    IReadOnlyList<string>? Keep = null,
    string? TagPrefix = null,
    TraceRequest? Trace = null,
    ChangeRule? Change = null);

/// <summary>
/// A step's outcome: <paramref name="Refused"/> when the agent would not do it (it names why), <paramref name="Failed"/>
/// when the host could not (the engine's or the tool's message), otherwise the fields the step fills.
/// </summary>
public sealed record AgentStepReply(
    string? Refused = null,
    string? Failed = null,
    string? Text = null,
    ProvisionedNetwork? Network = null,
    ProvisionedContainer? Container = null,
    EngineInfo? Engine = null,
    AgentFirewall? Firewall = null,
    RuleCommandResult? Rule = null,
    IReadOnlyList<RuleCommandResult>? Rules = null,
    IReadOnlyList<string>? Removed = null,
    ProbeResult? Probe = null,
    string? Capture = null,
    byte[]? Pcap = null,
    long? KernelDrops = null,
    IReadOnlyList<TracedPacket>? Traced = null);

/// <summary>What a host-wide session command asks of an agent.</summary>
public enum AgentSessionAction
{
    /// <summary>A capture (<see cref="AgentSessionCommand.Capture"/>) on one of the host's Docker bridges or container veths.</summary>
    StartCapture,

    StopCapture,

    /// <summary>A piece of a capture's pcap, from <see cref="AgentSessionCommand.Offset"/>.</summary>
    ReadPcap,

    /// <summary>A verdict trace of a flow between addresses of the host's Docker networks (<see cref="AgentSessionCommand.Trace"/>).</summary>
    StartTrace,

    StopTrace,

    /// <summary>Whether the host can trace: the reply's <see cref="AgentSessionReply.Refused"/> says why not.</summary>
    TraceAvailable,
}

/// <summary>A capture as the dashboard checked it: its limits are always set (the dashboard's defaults when its starter named none).</summary>
public sealed record AgentCaptureStart(string Interface, string? Filter, int SnapLength, long PacketLimit, double TimeLimitSeconds, long ByteLimit);

/// <summary>
/// A host-wide capture or trace command. <paramref name="Id"/> is the dashboard's name for the session (12 or 10
/// lowercase hex digits): the agent tags what it sends with it, and acts only on sessions the dashboard started.
/// </summary>
public sealed record AgentSessionCommand(AgentSessionAction Action, string Id, AgentCaptureStart? Capture = null, TraceRequest? Trace = null, long Offset = 0);

/// <summary>
/// A session command's outcome: <paramref name="Refused"/> when the agent would not (it names why), <paramref name="Failed"/>
/// when the host could not; a started session's time and, for a trace, its rules' tag and commands; a piece of a pcap
/// with the file's whole length.
/// </summary>
public sealed record AgentSessionReply(
    string? Refused = null,
    string? Failed = null,
    DateTimeOffset? StartedAt = null,
    string? Tag = null,
    IReadOnlyList<RuleCommandResult>? Commands = null,
    byte[]? Pcap = null,
    long? PcapLength = null);

/// <summary>One frame of a capture as tcpdump wrote it (cut to <see cref="AgentProtocol.MaxBatchFrameBytes"/>).</summary>
public sealed record AgentFrame(DateTimeOffset Timestamp, int OriginalLength, byte[] Data);

/// <summary>
/// One delivery of a host-wide capture, numbered per capture from 0: the frames kept whole (the dashboard decodes them
/// itself), the rest counted per flow, and the capture's counts and state as they stand. The last one says
/// <paramref name="Final"/>.
/// </summary>
public sealed record AgentCaptureBatch(
    string Id,
    long Sequence,
    uint LinkType,
    IReadOnlyList<AgentFrame> Shown,
    long NotShown,
    IReadOnlyList<Dashboard.Core.Capture.FlowCount> NotShownFlows,
    Capture.CaptureStats Stats,
    Capture.CaptureEndReason EndReason,
    DateTimeOffset? EndedAt,
    string? EndMessage,
    bool Final);

/// <summary>A host-wide trace's news: packets whose path grew, and the trace's state (ended, its rules' commands, cleaned up).</summary>
public sealed record AgentTraceUpdate(
    string Id,
    IReadOnlyList<Dashboard.Core.Firewall.TracedPacket> Packets,
    DateTimeOffset? EndedAt,
    string? EndMessage,
    bool CleanedUp,
    IReadOnlyList<RuleCommandResult> Commands,
    long UnparsedLines);
