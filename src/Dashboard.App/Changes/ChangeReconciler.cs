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
/// Then, every <see cref="ChangeOptions.ExpiryPoll"/>, changes whose time-to-live ran out are reverted. An agent's host
/// is reconciled the same way each time its agent connects (after a restart of either side, or a lost link). Every
/// finding is audited and shown on the changes page.
/// </summary>
public sealed class ChangeReconciler(IDbContextFactory<DashboardDbContext> dbs, ChangeHostApplier applier, Dashboard.App.Hosts.HostDirectory hosts, AuditLog audit, IOptions<ChangeOptions> options, Dashboard.App.Replicas.IDutyLease lease, ILogger<ChangeReconciler> logger) : BackgroundService
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ReconciliationReport> _reports = new(StringComparer.Ordinal);

    /// <summary>The dashboard's own host's last reconciliation.</summary>
    public ReconciliationReport? LastReconciliation => LastReconciliationOf(null);

    /// <summary>A host's last reconciliation (null: the dashboard's own host).</summary>
    public ReconciliationReport? LastReconciliationOf(string? host) => _reports.GetValueOrDefault(host ?? "");

    private void OnAgentConnected(Dashboard.App.Hosts.RemoteHost host) => _ = ReconcileRemoteAsync(host.Name);

    private async Task ReconcileRemoteAsync(string host)
    {
        try
        {
            // After the agent's snapshot; the command waits for nothing else.
            await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            await ReconcileAsync(host).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is Dashboard.App.Hosts.HostUnavailableException or ChangeStateException or DbUpdateException)
        {
            logger.LogWarning("changes on host {Host} not reconciled: {Error}", host, ex.Message);
            _reports[host] = new ReconciliationReport(DateTimeOffset.UtcNow, [$"reconciliation of host '{host}' could not run: {ex.Message}"], Host: host);
            await audit.WriteAsync(Actor.System, "reconcile.failed", $"host {host}", $"reconciliation of host '{host}' could not run: {ex.Message}", succeeded: false, host: host, ct: CancellationToken.None).ConfigureAwait(false);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // A singleton duty: with replicas, only the one holding the lease reconciles and expires.
        await lease.WaitAsync(stoppingToken).ConfigureAwait(false);
        hosts.Connected += OnAgentConnected;
        try
        {
            await RunAsync(stoppingToken).ConfigureAwait(false);
        }
        finally
        {
            hosts.Connected -= OnAgentConnected;
        }
    }

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        foreach (var connected in hosts.Remotes.Where(h => h.State == Dashboard.App.Hosts.AgentState.Connected))
        {
            OnAgentConnected(connected);
        }

        try
        {
            await ReconcileAsync(null, stoppingToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogError(ex, "change reconciliation failed");
            _reports[""] = new ReconciliationReport(DateTimeOffset.UtcNow, [$"reconciliation could not run: {ex.Message}"]);
            await audit.WriteAsync(Actor.System, "reconcile.failed", null, $"reconciliation could not run: {ex.Message}", succeeded: false, host: hosts.Local.Host, ct: CancellationToken.None).ConfigureAwait(false);
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

    /// <summary>
    /// Reverts applied changes whose time-to-live has run out (state expired), and takes off staged rules whose staging
    /// time ran out; one on a disconnected host waits for its agent.
    /// </summary>
    public async Task ExpireDueAsync(CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow;
        // Staged rules whose time ran out, and those of changes decided while their removal could not be done (a host away).
        var stagesDue = await db.ChangeRequests.Where(c => c.InstanceId == applier.InstanceId && c.StagedAt != null && c.UnstagedAt == null
            && (c.State != ChangeState.Proposed || (c.StageExpiresAt != null && c.StageExpiresAt <= now))).ToListAsync(ct).ConfigureAwait(false);
        foreach (var c in stagesDue.Where(c => !applier.IsApplying(c.Id) && (c.Host is null || hosts.Remote(c.Host) is { State: Dashboard.App.Hosts.AgentState.Connected })))
        {
            try
            {
                await applier.UnstageAsync(db, c, Actor.System, c.State == ChangeState.Proposed ? $"its staging time ran out ({(c.StageExpiresAt!.Value - c.StagedAt!.Value).TotalSeconds:0} s)" : $"the change is {c.State.ToString().ToLowerInvariant()}", ct).ConfigureAwait(false);
            }
            catch (ChangeStateException ex)
            {
                logger.LogInformation("staged rule of change {Change} not removed yet: {Error}", c.Id, ex.Message);
            }
        }

        var due = await db.ChangeRequests.Where(c => c.State == ChangeState.Applied && c.InstanceId == applier.InstanceId && c.ExpiresAt != null && c.ExpiresAt <= now).ToListAsync(ct).ConfigureAwait(false);
        foreach (var c in due)
        {
            if (c.Host is { } remote && hosts.Remote(remote) is not { State: Dashboard.App.Hosts.AgentState.Connected })
            {
                // Its agent is away: the revert is tried once it is back (reconciliation reverts what expired meanwhile).
                continue;
            }

            try
            {
                await applier.RemoveAsync(db, c, Actor.System, ChangeState.Expired, ct).ConfigureAwait(false);
            }
            catch (ChangeStateException ex) when (c.Host is not null)
            {
                logger.LogInformation("change {Change} on host {Host} expired, not removed yet: {Error}", c.Id, c.Host, ex.Message);
            }
        }
    }

    /// <summary>
    /// Compares this instance's tagged rules on <paramref name="host"/> (null: the dashboard's own) with the host's
    /// applied changes in the database (see the class remarks for the policy).
    /// </summary>
    public async Task<ReconciliationReport> ReconcileAsync(string? host = null, CancellationToken ct = default)
    {
        var findings = new List<string>();
        var expired = new List<ChangeRequest>();
        var expiredStages = new List<ChangeRequest>();
        var on = host is null ? "the host" : $"host '{host}'";
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        await applier.ExclusiveAsync(host, async writer =>
        {
            var prefix = applier.TagPrefix;
            var onHost = (await writer.FindAllTaggedAsync(ct).ConfigureAwait(false)).Where(r => r.Comment!.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            var applied = await db.ChangeRequests.Where(c => c.InstanceId == applier.InstanceId && c.Host == host && (c.State == ChangeState.Applied || c.State == ChangeState.Approved)).ToListAsync(ct).ConfigureAwait(false);
            var now = DateTimeOffset.UtcNow;
            foreach (var c in applied.Where(c => !applier.IsApplying(c.Id)))
            {
                var copies = onHost.Count(r => r.Comment == c.Tag);
                if (c.State == ChangeState.Approved)
                {
                    // Approved but the apply never finished (the dashboard stopped in between).
                    if (copies > 0)
                    {
                        await writer.DeleteTaggedAsync(c.Tag!, ct).ConfigureAwait(false);
                    }

                    await applier.EndAsync(db, c, ChangeState.Failed, Actor.System, host is null
                        ? "the dashboard stopped between approval and verification; any copy of the rule was removed, propose it again"
                        : $"the dashboard or host '{host}''s agent stopped between approval and verification; any copy of the rule was removed, propose it again", null, ct).ConfigureAwait(false);
                    findings.Add($"change {c.Id}: approved but not verified before a stop; marked failed ({copies} cop{(copies == 1 ? "y" : "ies")} removed)");
                }
                else if (copies == 0)
                {
                    await applier.EndAsync(db, c, ChangeState.Failed, Actor.System, host is null
                        ? "the rule was removed outside the dashboard (missing at start-up reconciliation); not re-applied without a new approval"
                        : $"the rule was removed outside the dashboard (missing on host '{host}' when its agent connected); not re-applied without a new approval", null, ct).ConfigureAwait(false);
                    findings.Add($"change {c.Id}: applied in the database but missing on {on}; marked failed, not re-applied");
                }
                else
                {
                    if (copies > 1)
                    {
                        var rules = onHost.Where(r => r.Comment == c.Tag).Skip(1).ToList();
                        foreach (var r in rules)
                        {
                            await writer.DeleteOneAsync(r, ct).ConfigureAwait(false);
                        }

                        findings.Add($"change {c.Id}: present {copies} times on {on}; removed {copies - 1} extra cop{(copies == 2 ? "y" : "ies")}");
                    }

                    if (c.ExpiresAt <= now)
                    {
                        expired.Add(c);
                    }
                }
            }

            // Staged changes: the counting rule of a proposed change stays (once), anything else staged goes.
            var staged = await db.ChangeRequests.Where(c => c.InstanceId == applier.InstanceId && c.Host == host && c.StagedAt != null && c.UnstagedAt == null).ToListAsync(ct).ConfigureAwait(false);
            var keepStaged = new HashSet<string>(StringComparer.Ordinal);
            foreach (var c in staged.Where(c => !applier.IsApplying(c.Id)))
            {
                var stagedTag = Dashboard.Host.Netfilter.StagedRules.TagOf(c.Tag!);
                var copies = onHost.Count(r => r.Comment == stagedTag);
                if (c.State != ChangeState.Proposed)
                {
                    var removed = copies > 0 ? await writer.DeleteTaggedAsync(stagedTag, ct).ConfigureAwait(false) : [];
                    onHost.RemoveAll(r => r.Comment == stagedTag);
                    await applier.RecordUnstagedAsync(db, c, $"the change is {c.State.ToString().ToLowerInvariant()}: its staged rule {(copies > 0 ? $"was still on {on} and was removed" : "was already gone")} (reconciliation)", host, ct).ConfigureAwait(false);
                    findings.Add($"change {c.Id}: {c.State.ToString().ToLowerInvariant()} but staged in the database; {removed.Count} staged cop{(removed.Count == 1 ? "y" : "ies")} removed");
                }
                else if (copies == 0)
                {
                    await applier.RecordUnstagedAsync(db, c, $"the staged rule was removed outside the dashboard (missing on {on} at reconciliation); stage it again to count", host, ct).ConfigureAwait(false);
                    findings.Add($"change {c.Id}: staged in the database but its counting rule is missing on {on}; marked unstaged");
                }
                else
                {
                    keepStaged.Add(stagedTag);
                    foreach (var r in onHost.Where(r => r.Comment == stagedTag).Skip(1).ToList())
                    {
                        await writer.DeleteOneAsync(r, ct).ConfigureAwait(false);
                    }

                    if (copies > 1)
                    {
                        findings.Add($"change {c.Id}: its staged rule is present {copies} times on {on}; removed {copies - 1} extra cop{(copies == 2 ? "y" : "ies")}");
                    }

                    if (c.StageExpiresAt <= now)
                    {
                        expiredStages.Add(c);
                    }
                }
            }

            var known = applied.Where(c => c.State == ChangeState.Applied || applier.IsApplying(c.Id)).Select(c => c.Tag).ToHashSet();
            known.UnionWith(keepStaged);
            known.UnionWith(staged.Where(c => applier.IsApplying(c.Id)).Select(c => Dashboard.Host.Netfilter.StagedRules.TagOf(c.Tag!)));
            foreach (var group in onHost.Where(r => !known.Contains(r.Comment)).GroupBy(r => r.Comment!))
            {
                var results = await writer.DeleteTaggedAsync(group.Key, ct).ConfigureAwait(false);
                findings.Add($"{group.Key}: on {on} without an applied change in the database; removed ({string.Join("; ", results.Select(r => $"{r.CommandLine} → {r.Message}"))})");
                await audit.WriteAsync(Actor.System, "reconcile.orphan-removed", group.Key, $"tagged rule without an applied change removed from {on}: {group.First().Text}", command: string.Join("\n", results.Select(r => r.CommandLine)), result: string.Join("\n", results.Select(r => r.Message)), succeeded: results.All(r => r.Succeeded), host: host ?? hosts.Local.Host, ct: CancellationToken.None).ConfigureAwait(false);
            }
        }, ct).ConfigureAwait(false);

        foreach (var c in expired)
        {
            await applier.RemoveAsync(db, c, Actor.System, ChangeState.Expired, ct).ConfigureAwait(false);
            findings.Add($"change {c.Id}: its time-to-live ran out while the dashboard was stopped; reverted as expired");
        }

        foreach (var c in expiredStages)
        {
            await applier.UnstageAsync(db, c, Actor.System, "its staging time ran out while the dashboard was stopped", ct).ConfigureAwait(false);
            findings.Add($"change {c.Id}: its staging time ran out while the dashboard was stopped; staged rule removed");
        }

        var report = new ReconciliationReport(DateTimeOffset.UtcNow, findings.Count == 0 ? [$"{on} and the database agree: every applied change's rule is present once, no other tagged rule of this instance"] : findings, findings.Count == 0, host);
        _reports[host ?? ""] = report;
        await audit.WriteAsync(Actor.System, "reconcile", host is null ? null : $"host {host}", string.Join("\n", report.Findings), succeeded: true, host: host ?? hosts.Local.Host, ct: CancellationToken.None).ConfigureAwait(false);
        return report;
    }
}
