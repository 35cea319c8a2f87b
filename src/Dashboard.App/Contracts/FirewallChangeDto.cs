using Dashboard.Data.Entities;

namespace Dashboard.App.Contracts;

/// <summary>One recorded change as the API and the pages show it.</summary>
public sealed record FirewallChangeDto(
    long Id,
    string Host,
    DateTimeOffset At,
    DateTimeOffset RecordedAt,
    string Family,
    string Table,
    string Chain,
    string Kind,
    string? RuleText,
    string? Owner,
    string? Comment,
    int? PositionBefore,
    int? PositionAfter,
    string? PolicyBefore,
    string? PolicyAfter,
    string Cause,
    string? CauseDetail)
{
    public static FirewallChangeDto From(FirewallChangeRecord r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return new(r.Id, r.Host, r.At, r.RecordedAt, r.Family, r.Table, r.Chain, r.Kind, r.RuleText, r.Owner, r.Comment, r.PositionBefore, r.PositionAfter, r.PolicyBefore, r.PolicyAfter, r.Cause, r.CauseDetail);
    }

    /// <summary>The change as one line (<c>+ filter DOCKER-USER #1: -A DOCKER-USER …</c>).</summary>
    public string Line => Dashboard.Core.Firewall.RuleChange.Line(Enum.Parse<Dashboard.Core.Firewall.RuleChangeKind>(Kind), Table, Chain, RuleText, PositionBefore, PositionAfter, PolicyBefore, PolicyAfter);
}

/// <summary>Changes made outside the dashboard on a host, decided together: the banner, the audit entry and the hub message.</summary>
public sealed record OutsideChangeAlert(Guid Id, string Host, DateTimeOffset At, DateTimeOffset DecidedAt, int Total, IReadOnlyList<FirewallChangeDto> Changes)
{
    /// <summary>At most this many changes travel with an alert (the history has them all).</summary>
    public const int MaxListed = 20;
}
