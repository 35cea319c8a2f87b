namespace Dashboard.Data.Entities;

/// <summary>A team workspace: experiments, runs and change requests belong to one.</summary>
public sealed class Lab
{
    public int Id { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>
    /// Lets the only member of a lab approve their own change requests (each such change is marked as self-approved).
    /// Has no effect once the lab has a second member.
    /// </summary>
    public bool AllowSelfApprovalWhenAlone { get; set; }

    /// <summary>
    /// The Docker hosts the lab's runs and changes may go to, one name per line (the dashboard's own host by its name,
    /// agents' hosts by their registered names); null: every host. Set by a site administrator.
    /// </summary>
    public string? Hosts { get; set; }

    public List<LabMember> Members { get; set; } = [];
}

/// <summary>Per-lab roles. Each includes the ones before it: an Approver may also do what an Operator and a Viewer may.</summary>
public enum LabRole
{
    /// <summary>Sees the lab's experiments, runs, change requests and audit entries.</summary>
    Viewer = 1,

    /// <summary>Runs experiments, captures and traces, proposes and reverts changes.</summary>
    Operator = 2,

    /// <summary>Approves or rejects other members' change requests.</summary>
    Approver = 3,

    /// <summary>Manages the lab's members and settings.</summary>
    Admin = 4,
}

public sealed class LabMember
{
    public int LabId { get; set; }
    public required string UserId { get; set; }
    public LabRole Role { get; set; }
    public DateTimeOffset AddedAt { get; set; }
    public Lab? Lab { get; set; }
    public DashboardUser? User { get; set; }
}
