namespace Dashboard.App.Live;

/// <summary>
/// What a live subscriber listens to. The feed matches every event against its subscribers' topics on the publisher's
/// thread, before anything is posted to a circuit: a page that shows networks never hears a counter or a packet.
/// </summary>
public abstract record LiveTopic
{
    /// <summary>The engine's networks, containers and bridges (a new topology).</summary>
    public static LiveTopic Topology { get; } = new TopologyTopic();

    /// <summary>The collector's health: engine and firewall readable, reads, warnings.</summary>
    public static LiveTopic Status { get; } = new StatusTopic();

    /// <summary>A new ruleset (rules added, removed or moved; counters alone come as <see cref="Counters"/>).</summary>
    public static LiveTopic Firewall { get; } = new FirewallTopic();

    /// <summary>Firewall changes made outside the dashboard (neither Docker's nor its own), as the firewall history decided them.</summary>
    public static LiveTopic OutsideChanges { get; } = new OutsideChangesTopic();

    /// <summary>Counters that moved, of every chain, or of one chain of one table.</summary>
    public static LiveTopic Counters(string? table = null, string? chain = null) => new CountersTopic(table, chain);

    /// <summary>Packets of every capture, or of one.</summary>
    public static LiveTopic Captures(string? captureId = null) => new CapturesTopic(captureId);

    /// <summary>Traced packets and trace states, of every trace or of one.</summary>
    public static LiveTopic Traces(string? traceId = null) => new TracesTopic(traceId);

    /// <summary>Progress of one lab's runs, or of one run.</summary>
    public static LiveTopic Runs(int? labId = null, Guid? runId = null) => new RunsTopic(labId, runId);

    /// <summary>Change requests of one lab, or of every lab (receivers still check membership before showing one).</summary>
    public static LiveTopic Changes(int? labId = null) => new ChangesTopic(labId);

    /// <summary>Every topic: what the hub forwarder relays (it picks recipients per event itself).</summary>
    public static IReadOnlyList<LiveTopic> Everything { get; } = [Topology, Status, Firewall, OutsideChanges, Counters(), Captures(), Traces(), Runs(), Changes()];

    /// <summary>Whether this topic wants the event; cheap, called on the publisher's thread.</summary>
    public abstract bool Matches(LiveEvent e);

    /// <summary>True for counter topics: their subscribers make the collector read faster (<see cref="LiveFeed.CounterWatchers"/>).</summary>
    internal virtual bool WatchesCounters => false;

    private sealed record TopologyTopic : LiveTopic
    {
        public override bool Matches(LiveEvent e) => e is TopologyChangedEvent;
    }

    private sealed record StatusTopic : LiveTopic
    {
        public override bool Matches(LiveEvent e) => e is StatusChangedEvent;
    }

    private sealed record FirewallTopic : LiveTopic
    {
        public override bool Matches(LiveEvent e) => e is FirewallChangedEvent;
    }

    private sealed record OutsideChangesTopic : LiveTopic
    {
        public override bool Matches(LiveEvent e) => e is FirewallChangedOutsideEvent;
    }

    private sealed record CountersTopic(string? Table, string? Chain) : LiveTopic
    {
        internal override bool WatchesCounters => true;

        public override bool Matches(LiveEvent e) => e is CountersChangedEvent c && (Chain is null && Table is null
            || c.Update.Rules.Any(r => (Table is null || r.Id.Table == Table) && (Chain is null || r.Id.Chain == Chain))
            || c.Update.Policies.Any(p => (Table is null || p.Table == Table) && (Chain is null || p.Chain == Chain)));
    }

    private sealed record CapturesTopic(string? Id) : LiveTopic
    {
        public override bool Matches(LiveEvent e) => e is PacketsCapturedEvent p && (Id is null || p.Capture.Id == Id);
    }

    private sealed record TracesTopic(string? Id) : LiveTopic
    {
        public override bool Matches(LiveEvent e) => e is TraceUpdatedEvent t && (Id is null || t.Trace.Id == Id);
    }

    private sealed record RunsTopic(int? LabId, Guid? RunId) : LiveTopic
    {
        public override bool Matches(LiveEvent e) => e is RunUpdatedEvent r && (LabId is null || r.Progress.LabId == LabId) && (RunId is null || r.Progress.RunId == RunId);
    }

    private sealed record ChangesTopic(int? LabId) : LiveTopic
    {
        public override bool Matches(LiveEvent e) => e is ChangeRequestUpdatedEvent c && (LabId is null || c.Change.LabId == LabId);
    }
}
