namespace Dashboard.Data.Entities;

/// <summary>
/// One structural change of a host's firewall as the collector saw it between two reads: a rule added, removed or moved
/// (by its identity in the chain), a chain added or removed, a policy changed; with who caused it. All changes of one read
/// share <see cref="At"/>; replayed in order of <see cref="At"/> onto a <see cref="FirewallCheckpoint"/> they rebuild the
/// ruleset of any moment.
/// </summary>
public sealed class FirewallChangeRecord
{
    public long Id { get; set; }

    public required string Host { get; set; }

    /// <summary>When the read that saw the change was made.</summary>
    public DateTimeOffset At { get; set; }

    /// <summary>When its cause was decided and it was written (later than <see cref="At"/> while Docker's window was open).</summary>
    public DateTimeOffset RecordedAt { get; set; }

    /// <summary>Ipv4, Ipv6, Inet... (<c>TableFamily</c>).</summary>
    public required string Family { get; set; }

    public required string Table { get; set; }

    public required string Chain { get; set; }

    /// <summary>Added, Removed, Moved, ChainAdded, ChainRemoved, PolicyChanged.</summary>
    public required string Kind { get; set; }

    /// <summary>The rule's identity in its chain (its text, with an occurrence suffix for duplicates).</summary>
    public string? RuleKey { get; set; }

    public string? RuleText { get; set; }

    /// <summary>Docker, User or Dashboard, as the collector classified the rule.</summary>
    public string? Owner { get; set; }

    public string? Comment { get; set; }

    public int? PositionBefore { get; set; }

    public int? PositionAfter { get; set; }

    public string? PolicyBefore { get; set; }

    public string? PolicyAfter { get; set; }

    /// <summary>Docker, Dashboard, Outside, Unobserved.</summary>
    public required string Cause { get; set; }

    /// <summary>What names the cause: the dashboard's tag owner (<c>change-…</c>), or why it is Docker's or outside.</summary>
    public string? CauseDetail { get; set; }
}

/// <summary>A host's whole ruleset structure (counters aside) at a moment, as JSON: where a replay of the history starts.</summary>
public sealed class FirewallCheckpoint
{
    public long Id { get; set; }

    public required string Host { get; set; }

    public DateTimeOffset At { get; set; }

    public int RuleCount { get; set; }

    public required string Shape { get; set; }
}
