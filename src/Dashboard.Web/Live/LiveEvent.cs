using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Collector;

namespace Dashboard.Web.Live;

/// <summary>What the live feed tells its subscribers.</summary>
public abstract record LiveEvent(string Host);

public sealed record TopologyChangedEvent(string Host, HostTopology Topology) : LiveEvent(Host);

public sealed record FirewallChangedEvent(string Host, Ruleset Ruleset, DateTimeOffset ReadAt) : LiveEvent(Host);

public sealed record CountersChangedEvent(string Host, CountersUpdate Update) : LiveEvent(Host);

public sealed record StatusChangedEvent(string Host, CollectorStatus Status) : LiveEvent(Host);
