using Dashboard.App.Access;
using Dashboard.App.Audit;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Dashboard.App.Changes;

/// <summary>
/// Keeps the host and the database agreeing about changes. At start-up (policy): the host is never changed to match the
/// database except by removing this instance's own tagged rules. An applied change whose rule is missing becomes failed
/// ("removed outside the dashboard"), never re-applied without a new approval; a tagged rule with no applied change
/// behind it is removed; duplicates are removed down to one; an applied change past its expiry is reverted as expired.
/// Then, every <see cref="ChangeOptions.ExpiryPoll"/>, changes whose time-to-live ran out are reverted. Every finding is
/// audited and shown on the changes page.
/// </summary>
public sealed class ChangeReconciler(IDbContextFactory<DashboardDbContext> dbs, ChangeHostApplier applier, AuditLog audit, IOptions<ChangeOptions> options, ILogger<ChangeReconciler> logger) : BackgroundService
{
    public ReconciliationReport? LastReconciliation { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await ReconcileAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogError(ex, "change reconciliation failed");
            LastReconciliation = new ReconciliationReport(DateTimeOffset.UtcNow, [$"reconciliation could not run: {ex.Message}"]);
            await audit.WriteAsync(Actor.System, "reconcile.failed", null, $"reconciliation could not run: {ex.Message}", succeeded: false, ct: CancellationToken.None).ConfigureAwait(false);
        }

        using var timer = new PeriodicTimer(options.Value.ExpiryPoll);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            try
            {
                await ExpireDueAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "expiry check failed");
            }
        }
    }

    /// <summary>Reverts applied changes whose time-to-live has run out (state expired).</summary>
    public async Task ExpireDueAsync(CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow;
        var due = await db.ChangeRequests.Where(c => c.State == ChangeState.Applied && c.InstanceId == applier.InstanceId && c.ExpiresAt != null && c.ExpiresAt <= now).ToListAsync(ct).ConfigureAwait(false);
        foreach (var c in due)
        {
            await applier.RemoveAsync(db, c, Actor.System, ChangeState.Expired, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Compares this instance's tagged rules on the host with the applied changes in the database (see the class remarks for the policy).</summary>
    public async Task<ReconciliationReport> ReconcileAsync(CancellationToken ct = default)
    {
        var findings = new List<string>();
        var expired = new List<ChangeRequest>();
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        await applier.ExclusiveAsync(async writer =>
        {
            var prefix = applier.TagPrefix;
            var onHost = (await writer.FindAllTaggedAsync(ct).ConfigureAwait(false)).Where(r => r.Comment!.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            var applied = await db.ChangeRequests.Where(c => c.InstanceId == applier.InstanceId && (c.State == ChangeState.Applied || c.State == ChangeState.Approved)).ToListAsync(ct).ConfigureAwait(false);
            var now = DateTimeOffset.UtcNow;
            foreach (var c in applied)
            {
                var copies = onHost.Count(r => r.Comment == c.Tag);
                if (c.State == ChangeState.Approved)
                {
                    // Approved but the apply never finished (the dashboard stopped in between).
                    if (copies > 0)
                    {
                        await writer.DeleteTaggedAsync(c.Tag!, ct).ConfigureAwait(false);
                    }

                    await applier.EndAsync(db, c, ChangeState.Failed, Actor.System, "the dashboard stopped between approval and verification; any copy of the rule was removed, propose it again", null, ct).ConfigureAwait(false);
                    findings.Add($"change {c.Id}: approved but not verified before a stop; marked failed ({copies} cop{(copies == 1 ? "y" : "ies")} removed)");
                }
                else if (copies == 0)
                {
                    await applier.EndAsync(db, c, ChangeState.Failed, Actor.System, "the rule was removed outside the dashboard (missing at start-up reconciliation); not re-applied without a new approval", null, ct).ConfigureAwait(false);
                    findings.Add($"change {c.Id}: applied in the database but missing on the host; marked failed, not re-applied");
                }
                else
                {
                    if (copies > 1)
                    {
                        var rules = onHost.Where(r => r.Comment == c.Tag).Skip(1).ToList();
                        foreach (var r in rules)
                        {
                            await writer.DeleteRuleAsync(r, ct).ConfigureAwait(false);
                        }

                        findings.Add($"change {c.Id}: present {copies} times on the host; removed {copies - 1} extra cop{(copies == 2 ? "y" : "ies")}");
                    }

                    if (c.ExpiresAt <= now)
                    {
                        expired.Add(c);
                    }
                }
            }

            var known = applied.Where(c => c.State == ChangeState.Applied).Select(c => c.Tag).ToHashSet();
            foreach (var group in onHost.Where(r => !known.Contains(r.Comment)).GroupBy(r => r.Comment!))
            {
                var results = await writer.DeleteTaggedAsync(group.Key, ct).ConfigureAwait(false);
                findings.Add($"{group.Key}: on the host without an applied change in the database; removed ({string.Join("; ", results.Select(r => $"{r.CommandLine} → {r.Message}"))})");
                await audit.WriteAsync(Actor.System, "reconcile.orphan-removed", group.Key, $"tagged rule without an applied change removed: {group.First().Text}", command: string.Join("\n", results.Select(r => r.CommandLine)), result: string.Join("\n", results.Select(r => r.Message)), succeeded: results.All(r => r.Succeeded), ct: CancellationToken.None).ConfigureAwait(false);
            }
        }, ct).ConfigureAwait(false);

        foreach (var c in expired)
        {
            await applier.RemoveAsync(db, c, Actor.System, ChangeState.Expired, ct).ConfigureAwait(false);
            findings.Add($"change {c.Id}: its time-to-live ran out while the dashboard was stopped; reverted as expired");
        }

        var report = new ReconciliationReport(DateTimeOffset.UtcNow, findings.Count == 0 ? ["host and database agree: every applied change's rule is present once, no other tagged rule of this instance"] : findings);
        LastReconciliation = report;
        await audit.WriteAsync(Actor.System, "reconcile", null, string.Join("\n", report.Findings), succeeded: true, ct: CancellationToken.None).ConfigureAwait(false);
        return report;
    }
}
