using Dashboard.Core.Capture;
using Dashboard.Core.Firewall;
using Dashboard.Web.Api;
using Dashboard.App.Live;

namespace Dashboard.Web.Hubs;

// The hub's payloads (what /hubs/lab sends to clients). Their suffix is Message, kept for the hub alone: the API's wire
// shapes end in Dto, Request or Response (Api/Contracts); the hub reuses CaptureDto, TraceDto and RulesetDto from there.

public sealed record CountersMessage(string Host, DateTimeOffset ReadAt, IReadOnlyList<RuleCountersMessage> Rules, IReadOnlyList<PolicyCounterChange> Policies);

public sealed record RuleCountersMessage(TableFamily Family, string Table, string Chain, string Key, int Position, ulong Packets, ulong Bytes, ulong DeltaPackets, ulong DeltaBytes, bool Reset);

public sealed record FirewallMessage(string Host, DateTimeOffset ReadAt, DockerLayout Layout, RulesetDto Ruleset);

/// <summary>
/// One batch of a capture: the packets shown one by one, the rest counted per flow (<c>NotShown</c>, <c>NotShownFlows</c>),
/// and the capture's running totals, so a client can account for every packet.
/// </summary>
public sealed record PacketsMessage(string Host, CaptureDto Capture, IReadOnlyList<DecodedPacket> Packets, long NotShown, IReadOnlyList<FlowCount> NotShownFlows, long TotalShown, long TotalNotShown, bool Final)
{
    public static PacketsMessage From(PacketsCapturedEvent e) =>
        new(e.Host, CaptureDto.From(e.Capture.Session), e.Batch.Shown, e.Batch.NotShown, e.Batch.NotShownFlows, e.Capture.Shown, e.Capture.NotShown, e.Final);
}

public sealed record TraceMessage(string Host, TraceDto Trace, IReadOnlyList<TracedPacket> Packets);
