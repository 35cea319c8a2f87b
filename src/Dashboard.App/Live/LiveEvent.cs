using Dashboard.App.Contracts;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Collector;

namespace Dashboard.App.Live;

/// <summary>What the live feed tells its subscribers.</summary>
public abstract record LiveEvent(string Host)
{
    /// <summary>
    /// Made by another replica and relayed here (replicas with Redis): this replica's pages show it, but it is neither
    /// relayed again nor sent to hub clients (the replica that made it did, through the backplane).
    /// </summary>
    public bool Relayed { get; init; }
}

public sealed record TopologyChangedEvent(string Host, HostTopology Topology) : LiveEvent(Host);

public sealed record FirewallChangedEvent(string Host, Ruleset Ruleset, DateTimeOffset ReadAt) : LiveEvent(Host);

public sealed record CountersChangedEvent(string Host, CountersUpdate Update) : LiveEvent(Host);

public sealed record StatusChangedEvent(string Host, CollectorStatus Status) : LiveEvent(Host);

/// <summary>A batch of a capture's packets (<see cref="CaptureView"/> holds the running totals).</summary>
public sealed record PacketsCapturedEvent(string Host, CaptureView Capture, Dashboard.Core.Capture.PacketBatch Batch, bool Final) : LiveEvent(Host);

/// <summary>Traced packets whose path grew since the last event, and the trace's state.</summary>
public sealed record TraceUpdatedEvent(string Host, TraceView Trace, IReadOnlyList<Dashboard.Core.Firewall.TracedPacket> Packets) : LiveEvent(Host);

/// <summary>An experiment run moved to another step, or ended.</summary>
public sealed record RunUpdatedEvent(string Host, RunProgress Progress) : LiveEvent(Host);

/// <summary>A change request was proposed or moved to another state (sent to its lab's members only).</summary>
public sealed record ChangeRequestUpdatedEvent(string Host, ChangeDto Change) : LiveEvent(Host);

/// <summary>Someone outside the dashboard (not Docker, not this dashboard) changed the host's firewall.</summary>
public sealed record FirewallChangedOutsideEvent(string Host, Dashboard.App.Contracts.OutsideChangeAlert Alert) : LiveEvent(Host);
