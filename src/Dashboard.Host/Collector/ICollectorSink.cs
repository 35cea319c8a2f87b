using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;

namespace Dashboard.Host.Collector;

/// <summary>Counter changes since the previous read, with the time of the read that saw them.</summary>
public sealed record CountersUpdate(string Host, DateTimeOffset ReadAt, IReadOnlyList<RuleCounterChange> Rules, IReadOnlyList<PolicyCounterChange> Policies);

/// <summary>Where the collector publishes. In the web process: the live feed; in a remote agent: the collector hub.</summary>
public interface ICollectorSink
{
    void TopologyChanged(HostTopology topology);

    /// <summary>A new ruleset whose structure differs from the last one (rules added, removed or moved), classified.</summary>
    void FirewallChanged(Ruleset ruleset, DateTimeOffset readAt);

    /// <summary>The same, with the read it came from (its raw text): an agent sends the text, the dashboard parses it itself.</summary>
    void FirewallChanged(Ruleset ruleset, Netfilter.FirewallSnapshot snapshot) => FirewallChanged(ruleset, snapshot.ReadAt);

    void CountersChanged(CountersUpdate update);

    void StatusChanged(CollectorStatus status);

    /// <summary>How many watch this host's counters now (pages showing them, hub clients of the host's group): while any
    /// do, the collector reads as often as its duty cap allows instead of at its target rate.</summary>
    int CounterWatchers { get; }
}
