using Dashboard.Core.Changes;
using Dashboard.Data.Entities;

namespace Dashboard.App.Contracts;

/// <summary>A change request as the UI, the API and the hub show it; <c>Host</c> is the agent host it is for (null: the dashboard's own).</summary>
public sealed record ChangeDto(
    int Id,
    int LabId,
    ChangeRule Rule,
    string Description,
    string Rationale,
    int? TtlSeconds,
    ChangeState State,
    string ProposedBy,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    string? DecidedBy,
    DateTimeOffset? DecidedAt,
    string? DecisionNote,
    bool SelfApproved,
    string Tag,
    string Command,
    string? ApplyCommand,
    DateTimeOffset? AppliedAt,
    DateTimeOffset? ExpiresAt,
    string? RevertCommand,
    string? EndedBy,
    DateTimeOffset? EndedAt,
    string? Outcome,
    string? Host = null,
    ChangeStageDto? Stage = null);

/// <summary>
/// A change's staging: its match counting on the host with no target (<paramref name="Counting"/> while it is there),
/// tagged <paramref name="Tag"/>, until <paramref name="ExpiresAt"/> unless approval or rejection took it off first.
/// </summary>
public sealed record ChangeStageDto(
    bool Counting,
    string Tag,
    DateTimeOffset StagedAt,
    string? StagedBy,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset? UnstagedAt,
    string? Command,
    string? Outcome);
