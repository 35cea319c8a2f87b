namespace Dashboard.App.Changes;

/// <summary>What a reconciliation of one host found and did; <paramref name="Agreed"/> when there was nothing to do.</summary>
public sealed record ReconciliationReport(DateTimeOffset At, IReadOnlyList<string> Findings, bool Agreed = false, string? Host = null);
