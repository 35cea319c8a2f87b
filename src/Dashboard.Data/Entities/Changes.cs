namespace Dashboard.Data.Entities;

/// <summary>proposed → approved or rejected → applied → reverted, expired or failed (a failed apply ends at failed too).</summary>
public enum ChangeState
{
    Proposed,
    Approved,
    Rejected,
    Applied,
    Reverted,
    Expired,
    Failed,
}

/// <summary>A proposed iptables rule that touches the host only after another member approves it.</summary>
public sealed class ChangeRequest
{
    public int Id { get; set; }
    public int LabId { get; set; }

    /// <summary>The structured rule (Dashboard.Core.Changes.ChangeRule as JSON); never free text.</summary>
    public required string RuleJson { get; set; }

    public required string Rationale { get; set; }

    /// <summary>Seconds the rule stays once applied; null keeps it until reverted.</summary>
    public int? TtlSeconds { get; set; }

    public ChangeState State { get; set; }
    public required string ProposedById { get; set; }
    public required string ProposedByName { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public string? DecidedById { get; set; }
    public string? DecidedByName { get; set; }
    public DateTimeOffset? DecidedAt { get; set; }
    public string? DecisionNote { get; set; }

    /// <summary>Approved by its own proposer under the lab's single-member setting.</summary>
    public bool SelfApproved { get; set; }

    /// <summary>The comment the rule carries on the host (netlab:change-INSTANCE-ID).</summary>
    public string? Tag { get; set; }

    /// <summary>The dashboard instance (Host:InstanceId) that applies it; reconciliation looks only at its own.</summary>
    public string? InstanceId { get; set; }

    /// <summary>The agent host the rule goes on (its registered name); null for the dashboard's own host.</summary>
    public string? Host { get; set; }

    public string? ApplyCommand { get; set; }
    public DateTimeOffset? AppliedAt { get; set; }
    public DateTimeOffset? ExpiresAt { get; set; }
    public string? RevertCommand { get; set; }
    public string? EndedByName { get; set; }
    public DateTimeOffset? EndedAt { get; set; }

    /// <summary>When the change was last staged (its rule's match counting on the host with no target); null: never staged.</summary>
    public DateTimeOffset? StagedAt { get; set; }

    public string? StagedByName { get; set; }

    /// <summary>When the staged rule is taken off by itself.</summary>
    public DateTimeOffset? StageExpiresAt { get; set; }

    /// <summary>When the staged rule came off (approval replaced it, a rejection, its time-to-live, or by hand); null while it counts.</summary>
    public DateTimeOffset? UnstagedAt { get; set; }

    public string? StageCommand { get; set; }

    /// <summary>What became of the staged rule (verified on, replaced by the real rule, removed and why).</summary>
    public string? StageOutcome { get; set; }

    /// <summary>Why an apply or a revert failed, or what reconciliation found.</summary>
    public string? Outcome { get; set; }

    /// <summary>Optimistic concurrency: two approvers racing cannot both win.</summary>
    public int Version { get; set; }
}

/// <summary>One append-only audit record: sign-ins, membership, every change state, every host command and its result.</summary>
public sealed class AuditEntry
{
    public long Id { get; set; }
    public DateTimeOffset At { get; set; }
    public string? UserId { get; set; }

    /// <summary>User name, or "system" for the dashboard's own actions (expiry, reconciliation).</summary>
    public required string Actor { get; set; }

    public int? LabId { get; set; }

    /// <summary>e.g. sign-in, sign-in-failed, change.proposed, change.applied, change.revert, reconcile.missing.</summary>
    public required string Action { get; set; }

    /// <summary>What it was about, e.g. "change 12", "user bob", "token 3".</summary>
    public string? Subject { get; set; }

    public required string Detail { get; set; }
    public string? CommandLine { get; set; }
    public string? Result { get; set; }
    public bool Succeeded { get; set; } = true;
    public string? RemoteAddress { get; set; }

    /// <summary>The Docker host an action was on (this dashboard's own or an agent's), for host actions; null otherwise.</summary>
    public string? Host { get; set; }
}
