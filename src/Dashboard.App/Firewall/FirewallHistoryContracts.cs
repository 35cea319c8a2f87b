using Dashboard.App.Contracts;

namespace Dashboard.App.Firewall;

public sealed class FirewallHistoryOptions
{
    public const string Section = "FirewallHistory";

    /// <summary>Record every structural change of every host's firewall (on by default).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How close to a read the engine's networks or containers must have changed for a rule of Docker's shape to be Docker's.</summary>
    public TimeSpan DockerWindow { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How long changes are kept (a checkpoint at the cut keeps the ruleset of that moment rebuildable).</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>A checkpoint of the whole ruleset after this many recorded changes (bounds a replay).</summary>
    public int CheckpointEvery { get; set; } = 2000;

    /// <summary>How long an outside change stays in the banner of pages opened later (each person may dismiss it sooner).</summary>
    public TimeSpan AlertShownFor { get; set; } = TimeSpan.FromMinutes(30);
}

/// <summary>Which changes to list: by chain (<c>table/chain</c> or a chain name), cause, time, page.</summary>
public sealed record FirewallHistoryFilter(string? Chain = null, string? Cause = null, DateTimeOffset? From = null, DateTimeOffset? To = null, int Page = 1, int PageSize = 100);

public sealed record FirewallHistoryList(string Host, IReadOnlyList<FirewallChangeDto> Changes, int Total, int Page, int PageSize, DateTimeOffset? Since);

/// <summary>How many changes of each cause fell in one time bucket (the page's picture).</summary>
public sealed record FirewallHistoryBucket(DateTimeOffset From, int Docker, int Dashboard, int Outside, int Unobserved);

/// <summary>A line of a diff between two moments, with the cause of the last recorded change that made it so.</summary>
public sealed record FirewallDiffLine(string Kind, string Family, string Table, string Chain, string? RuleText, int? PositionBefore, int? PositionAfter, string? PolicyBefore, string? PolicyAfter, string? Owner, string? Cause, string? CauseDetail);

public sealed record FirewallDiff(string Host, DateTimeOffset From, DateTimeOffset To, int RulesBefore, int RulesAfter, IReadOnlyList<FirewallDiffLine> Lines);

/// <summary>A moment the history cannot rebuild (before its first checkpoint): 400 naming it.</summary>
public sealed class FirewallHistoryRangeException(string message) : Exception(message);
