namespace Dashboard.Data.Entities;

/// <summary>A question a lab asks of its host, run many times: e.g. "the seed, isolated and with ACCEPT rules".</summary>
public sealed class Experiment
{
    public Guid Id { get; set; }
    public int LabId { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }

    /// <summary>The scenario's definition (JSON) as the experiment last ran it.</summary>
    public required string ScenarioJson { get; set; }

    public bool BuiltIn { get; set; }
    public required string CreatedBy { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>Where an imported experiment came from (file name and instance); null when made here.</summary>
    public string? Origin { get; set; }
}

public enum RunStatus
{
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

/// <summary>
/// One run of an experiment's variant: its summary columns (what lists show) here, its payloads in separate tables so
/// lists never load them.
/// </summary>
public sealed class Run
{
    public Guid Id { get; set; }
    public int LabId { get; set; }
    public Guid ExperimentId { get; set; }
    public required string ExperimentName { get; set; }
    public required string Variant { get; set; }
    public RunStatus Status { get; set; }
    public required string Author { get; set; }
    public DateTimeOffset StartedAt { get; set; }
    public DateTimeOffset? EndedAt { get; set; }
    public string? Host { get; set; }
    public string? EngineVersion { get; set; }
    public string? FirewallBackend { get; set; }
    public string? Layout { get; set; }
    public int ProbesSent { get; set; }
    public int ProbesReceived { get; set; }

    /// <summary>e.g. "0 of 3 replies" or "3 of 3 replies".</summary>
    public string? Outcome { get; set; }

    public string? Error { get; set; }

    /// <summary>The step the run reached (for interrupted and failed runs: where it stopped).</summary>
    public string? LastStep { get; set; }

    public bool KeepResources { get; set; }

    public string? Origin { get; set; }

    /// <summary>When cancelling was asked through a replica that does not run it (replicas on PostgreSQL); the replica running it cancels.</summary>
    public DateTimeOffset? CancelRequestedAt { get; set; }
}

/// <summary>A large payload of a run: rulesets and topologies before and after, the scenario, the predicted matrix, traces.</summary>
public sealed class RunArtifact
{
    public long Id { get; set; }
    public Guid RunId { get; set; }
    public required string Kind { get; set; }
    public required string Content { get; set; }
}

/// <summary>How one rule's counters moved during a run (or that it was added or removed).</summary>
public sealed class RunRuleDelta
{
    public long Id { get; set; }
    public Guid RunId { get; set; }
    public required string Table { get; set; }
    public required string Chain { get; set; }
    public int Position { get; set; }
    public required string Rule { get; set; }
    public required string Owner { get; set; }
    public long DeltaPackets { get; set; }
    public long DeltaBytes { get; set; }

    /// <summary>"added" (only in the after snapshot), "removed", or null.</summary>
    public string? Change { get; set; }
}

/// <summary>A probe's result, with the evaluator's prediction for its flow.</summary>
public sealed class RunProbe
{
    public long Id { get; set; }
    public Guid RunId { get; set; }
    public int Order { get; set; }
    public required string Kind { get; set; }
    public required string From { get; set; }
    public required string To { get; set; }
    public required string Address { get; set; }
    public int? Port { get; set; }
    public int Sent { get; set; }
    public int Received { get; set; }
    public bool? Predicted { get; set; }
    public string? PredictedRule { get; set; }
    public required string Output { get; set; }
}

/// <summary>A capture of a run: the interface, its pcap on disk (relative to the data folder), and its counts.</summary>
public sealed class RunCapture
{
    public long Id { get; set; }
    public Guid RunId { get; set; }
    public required string Interface { get; set; }
    public required string Network { get; set; }
    public string? PcapFile { get; set; }
    public long Packets { get; set; }
    public long Stored { get; set; }
    public long? KernelDrops { get; set; }
}

/// <summary>
/// A captured packet of a run, decoded (at most a bounded number per capture; the pcap holds all): its kernel timestamp
/// to the microsecond, the header fields that run analysis decides by, and tcpdump's summary for people to read.
/// </summary>
public sealed class RunPacket
{
    public long Id { get; set; }
    public Guid RunId { get; set; }
    public required string Interface { get; set; }

    /// <summary>The kernel's capture time, kept whole (stored as UTC ticks).</summary>
    public DateTimeOffset Timestamp { get; set; }

    public int Length { get; set; }
    public required string Protocol { get; set; }
    public string? Source { get; set; }
    public string? Destination { get; set; }
    public required string Summary { get; set; }

    /// <summary>False for rows kept before the header fields were stored (summary only); they are decoded again from the run's pcap at start-up.</summary>
    public bool Decoded { get; set; }

    public int EtherType { get; set; } = -1;
    public int? IpProtocol { get; set; }
    public int? SourcePort { get; set; }
    public int? DestinationPort { get; set; }
    public int? IcmpType { get; set; }
    public int? IcmpCode { get; set; }
    public int? IcmpId { get; set; }
    public int? IcmpSequence { get; set; }
    public int? TcpFlags { get; set; }
}
