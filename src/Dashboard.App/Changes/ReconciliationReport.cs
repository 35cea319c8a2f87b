namespace Dashboard.App.Changes;

/// <summary>What start-up reconciliation found and did.</summary>
public sealed record ReconciliationReport(DateTimeOffset At, IReadOnlyList<string> Findings);
