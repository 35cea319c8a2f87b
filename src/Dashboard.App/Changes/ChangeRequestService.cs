using Dashboard.Core.Changes;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.Host.Netfilter;
using Dashboard.Host.Processes;
using Dashboard.App.Audit;
using Dashboard.App.Contracts;
using Dashboard.App.Access;
using Dashboard.App.Isolation;
using Dashboard.App.Labs;
using Dashboard.App.Live;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Dashboard.App.Changes;

/// <summary>
/// Change requests from proposal to revert. Proposals are validated field by field and against the host (interfaces exist,
/// the chain exists in its table). Approval needs a different member with the Approver role (or the lab's single-member
/// self-approval setting, and then the change says so) and applies the rule at once: <c>iptables -w</c> with an argument
/// list, tagged <c>netlab:change-INSTANCE-ID</c>, then a fresh read must show the tag exactly once. Revert deletes exactly
/// that tagged rule and checks it is gone; a time-to-live reverts by itself, also after a restart.
/// <para>
/// Reconciliation at start-up (policy): the host is never changed to match the database except by removing this instance's
/// own tagged rules. An applied change whose rule is missing becomes failed ("removed outside the dashboard"), never
/// re-applied without a new approval; a tagged rule with no applied change behind it is removed; duplicates are removed
/// down to one; an applied change past its expiry is reverted as expired. Every finding is audited and shown on the page.
/// </para>
/// </summary>
public sealed class ChangeRequestService(
    IDbContextFactory<DashboardDbContext> dbs,
    LabAccess access,
    AuditLog audit,
    IptablesRuleWriter writer,
    IsolationService isolation,
    LiveFeed feed,
    IOptions<Dashboard.Host.DockerHostOptions> hostOptions,
    ILogger<ChangeRequestService> logger) : BackgroundService
{
    private readonly SemaphoreSlim _hostGate = new(1, 1);
    private readonly Dashboard.Host.DockerHostOptions _host = hostOptions.Value;

    /// <summary>Where interface names are checked (a folder per interface, as in /sys/class/net).</summary>
    public string InterfacesPath { get; set; } = "/sys/class/net";

    public static TimeSpan ExpiryPoll { get; set; } = TimeSpan.FromSeconds(1);

    public ReconciliationReport? LastReconciliation { get; private set; }

    public string TagFor(int id) => RuleTag.For($"change-{_host.InstanceId}-{id}");

    public string CommandFor(ChangeRule rule, int id) =>
        CommandLine.Format(ProgramFor(rule), rule.ToSpec(TagFor(id)).InsertArguments(_host.XtablesLockWaitSeconds));

    public async Task<IReadOnlyList<ChangeDto>> ListAsync(Actor actor, int labId, ChangeState? state = null, CancellationToken ct = default)
    {
        await access.RequireAsync(actor, labId, LabRole.Viewer, ct).ConfigureAwait(false);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var q = db.ChangeRequests.AsNoTracking().Where(c => c.LabId == labId);
        if (state is { } s)
        {
            q = q.Where(c => c.State == s);
        }

        return [.. (await q.OrderByDescending(c => c.Id).Take(500).ToListAsync(ct).ConfigureAwait(false)).Select(ToDto)];
    }

    public async Task<ChangeDto> GetAsync(Actor actor, int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var c = await LoadAsync(db, actor, id, LabRole.Viewer, ct).ConfigureAwait(false);
        return ToDto(c);
    }

    /// <summary>Field and host checks of a rule, without saving anything (the form shows these as the user types).</summary>
    public async Task<IReadOnlyDictionary<string, string>> CheckAsync(ChangeRule rule, string? rationale, int? ttlSeconds, CancellationToken ct = default)
    {
        var errors = new Dictionary<string, string>(rule.Validate());
        foreach (var (k, v) in ChangeRule.ValidateRequest(rationale, ttlSeconds))
        {
            errors[k] = v;
        }

        foreach (var (field, name) in new[] { (nameof(ChangeRule.InInterface), rule.InInterface), (nameof(ChangeRule.OutInterface), rule.OutInterface) })
        {
            if (!errors.ContainsKey(field) && !string.IsNullOrEmpty(name) && !InterfaceExists(name))
            {
                errors[field] = name.EndsWith('+') ? $"no interface on this host starts with '{name.TrimEnd('+')}'" : $"interface '{name}' does not exist on this host";
            }
        }

        if (!errors.ContainsKey(nameof(ChangeRule.Chain)) && !errors.ContainsKey(nameof(ChangeRule.Table)))
        {
            var ruleset = await isolation.RulesetAsync(ct).ConfigureAwait(false);
            var family = rule.IsIpv6 ? TableFamily.Ipv6 : TableFamily.Ipv4;
            var chain = ruleset.FindTable(rule.Table, family)?.FindChain(rule.Chain);
            if (chain is null)
            {
                errors[nameof(ChangeRule.Chain)] = $"chain {rule.Chain} does not exist in table {rule.Table} on this host";
            }
            else if (rule.Position is { } p && p > chain.Rules.Count + 1 && !errors.ContainsKey(nameof(ChangeRule.Position)))
            {
                errors[nameof(ChangeRule.Position)] = $"{rule.Chain} has {chain.Rules.Count} rules: insert at 1-{chain.Rules.Count + 1}, or append";
            }
        }

        return errors;
    }

    public async Task<ChangeDto> ProposeAsync(Actor actor, int labId, ChangeRule rule, string rationale, int? ttlSeconds, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(rule);
        await access.RequireAsync(actor, labId, LabRole.Operator, ct).ConfigureAwait(false);
        var errors = await CheckAsync(rule, rationale, ttlSeconds, ct).ConfigureAwait(false);
        if (errors.Count > 0)
        {
            throw new ChangeValidationException(errors);
        }

        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow;
        var c = new ChangeRequest
        {
            LabId = labId,
            RuleJson = rule.ToJson(),
            Rationale = rationale.Trim(),
            TtlSeconds = ttlSeconds,
            State = ChangeState.Proposed,
            ProposedById = actor.UserId!,
            ProposedByName = actor.Name,
            CreatedAt = now,
            UpdatedAt = now,
            InstanceId = _host.InstanceId,
        };
        db.ChangeRequests.Add(c);
        await db.SaveChangesAsync(ct).ConfigureAwait(false);
        c.Tag = TagFor(c.Id);
        await db.SaveChangesAsync(ct).ConfigureAwait(false);
        await audit.WriteAsync(actor, "change.proposed", $"change {c.Id}", $"proposed {rule.Describe()}{Ttl(ttlSeconds)}; rationale: {c.Rationale}", labId, CommandFor(rule, c.Id), ct: ct).ConfigureAwait(false);
        return Published(c);
    }

    /// <summary>Approves and applies at once. Refused unless the actor is a different member with the Approver role.</summary>
    public async Task<ChangeDto> ApproveAsync(Actor actor, int id, string? note, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var c = await LoadAsync(db, actor, id, LabRole.Approver, ct).ConfigureAwait(false);
        RequireState(c, ChangeState.Proposed, "approved");
        var self = c.ProposedById == actor.UserId;
        if (self)
        {
            var lab = await db.Labs.AsNoTracking().SingleAsync(l => l.Id == c.LabId, ct).ConfigureAwait(false);
            var members = await db.LabMembers.CountAsync(m => m.LabId == c.LabId, ct).ConfigureAwait(false);

            // Alone since the proposal, not made alone: removing the other members (the append-only audit says when) does
            // not open self-approval for a change proposed while they were there.
            var proposedAt = c.CreatedAt;
            var someoneLeft = await db.AuditEntries.AnyAsync(a => a.LabId == c.LabId && a.Action == "lab.member-removed" && a.At >= proposedAt, ct).ConfigureAwait(false);
            if (!lab.AllowSelfApprovalWhenAlone || members != 1 || someoneLeft)
            {
                var why = members != 1 ? "you proposed this change: a different member with the Approver role must approve it"
                    : someoneLeft ? "you proposed this change while the lab had other members: self-approval is only for a lab that has had one member since the change was proposed"
                    : "you proposed this change: self-approval is off in this lab (a lab Admin can allow it while the lab has one member)";
                await audit.WriteAsync(actor, "change.approve-refused", $"change {c.Id}", "self-approval refused: " + why, c.LabId, succeeded: false, ct: ct).ConfigureAwait(false);
                throw new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, why);
            }
        }

        c.State = ChangeState.Approved;
        c.SelfApproved = self;
        c.DecidedById = actor.UserId;
        c.DecidedByName = actor.Name;
        c.DecidedAt = DateTimeOffset.UtcNow;
        c.DecisionNote = Note(note);
        await SaveStateAsync(db, c, ct).ConfigureAwait(false);
        await audit.WriteAsync(actor, "change.approved", $"change {c.Id}", (self ? "SELF-APPROVED (single-member lab setting)" : "approved") + (c.DecisionNote is { } n ? $"; note: {n}" : ""), c.LabId, ct: ct).ConfigureAwait(false);
        Published(c);
        return await ApplyAsync(db, c, actor, ct).ConfigureAwait(false);
    }

    public async Task<ChangeDto> RejectAsync(Actor actor, int id, string? note, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var c = await LoadAsync(db, actor, id, LabRole.Approver, ct).ConfigureAwait(false);
        RequireState(c, ChangeState.Proposed, "rejected");
        c.State = ChangeState.Rejected;
        c.DecidedById = actor.UserId;
        c.DecidedByName = actor.Name;
        c.DecidedAt = DateTimeOffset.UtcNow;
        c.DecisionNote = Note(note);
        await SaveStateAsync(db, c, ct).ConfigureAwait(false);
        await audit.WriteAsync(actor, "change.rejected", $"change {c.Id}", "rejected" + (c.DecisionNote is { } n ? $"; note: {n}" : ""), c.LabId, ct: ct).ConfigureAwait(false);
        return Published(c);
    }

    /// <summary>Removes the applied rule (exactly the one with this change's tag) and checks it is gone.</summary>
    public async Task<ChangeDto> RevertAsync(Actor actor, int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var c = await LoadAsync(db, actor, id, LabRole.Operator, ct).ConfigureAwait(false);
        RequireState(c, ChangeState.Applied, "reverted");
        return await RemoveAsync(db, c, actor, ChangeState.Reverted, ct).ConfigureAwait(false);
    }

    /// <summary>The isolation matrix now and with this rule (and with the lab's other open proposals too), and the exact command.</summary>
    public async Task<ChangeWhatIf> WhatIfAsync(Actor actor, int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var c = await LoadAsync(db, actor, id, LabRole.Viewer, ct).ConfigureAwait(false);
        var rule = ChangeRule.FromJson(c.RuleJson);
        var alone = await isolation.WhatIfAsync([rule.ToSpec(TagFor(c.Id))], "networks", MatrixProbe.Ping, ct).ConfigureAwait(false);
        var others = await db.ChangeRequests.AsNoTracking().Where(x => x.LabId == c.LabId && x.State == ChangeState.Proposed && x.Id != c.Id).OrderBy(x => x.Id).ToListAsync(ct).ConfigureAwait(false);
        WhatIf? together = null;
        if (others.Count > 0)
        {
            var specs = others.Select(o => ChangeRule.FromJson(o.RuleJson).ToSpec(TagFor(o.Id))).Prepend(rule.ToSpec(TagFor(c.Id))).ToList();
            try
            {
                together = await isolation.WhatIfAsync(specs, "networks", MatrixProbe.Ping, ct).ConfigureAwait(false);
            }
            catch (WhatIfException ex)
            {
                logger.LogInformation("what-if with other proposals not possible: {Reason}", ex.Message);
            }
        }

        return new ChangeWhatIf(alone with { Command = CommandFor(rule, c.Id) }, together, [.. others.Select(o => o.Id)]);
    }

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

        using var timer = new PeriodicTimer(ExpiryPoll);
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
        var due = await db.ChangeRequests.Where(c => c.State == ChangeState.Applied && c.InstanceId == _host.InstanceId && c.ExpiresAt != null && c.ExpiresAt <= now).ToListAsync(ct).ConfigureAwait(false);
        foreach (var c in due)
        {
            await RemoveAsync(db, c, Actor.System, ChangeState.Expired, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Compares this instance's tagged rules on the host with the applied changes in the database (see the class remarks for the policy).</summary>
    public async Task<ReconciliationReport> ReconcileAsync(CancellationToken ct = default)
    {
        var findings = new List<string>();
        var expired = new List<ChangeRequest>();
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        await _hostGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var prefix = RuleTag.For($"change-{_host.InstanceId}-");
            var onHost = (await writer.FindAllTaggedAsync(ct).ConfigureAwait(false)).Where(r => r.Comment!.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            var applied = await db.ChangeRequests.Where(c => c.InstanceId == _host.InstanceId && (c.State == ChangeState.Applied || c.State == ChangeState.Approved)).ToListAsync(ct).ConfigureAwait(false);
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

                    await EndAsync(db, c, ChangeState.Failed, Actor.System, "the dashboard stopped between approval and verification; any copy of the rule was removed, propose it again", null, ct).ConfigureAwait(false);
                    findings.Add($"change {c.Id}: approved but not verified before a stop; marked failed ({copies} cop{(copies == 1 ? "y" : "ies")} removed)");
                }
                else if (copies == 0)
                {
                    await EndAsync(db, c, ChangeState.Failed, Actor.System, "the rule was removed outside the dashboard (missing at start-up reconciliation); not re-applied without a new approval", null, ct).ConfigureAwait(false);
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
        }
        finally
        {
            _hostGate.Release();
        }

        foreach (var c in expired)
        {
            await RemoveAsync(db, c, Actor.System, ChangeState.Expired, ct).ConfigureAwait(false);
            findings.Add($"change {c.Id}: its time-to-live ran out while the dashboard was stopped; reverted as expired");
        }

        var report = new ReconciliationReport(DateTimeOffset.UtcNow, findings.Count == 0 ? ["host and database agree: every applied change's rule is present once, no other tagged rule of this instance"] : findings);
        LastReconciliation = report;
        await audit.WriteAsync(Actor.System, "reconcile", null, string.Join("\n", report.Findings), succeeded: true, ct: CancellationToken.None).ConfigureAwait(false);
        return report;
    }

    private async Task<ChangeDto> ApplyAsync(DashboardDbContext db, ChangeRequest c, Actor actor, CancellationToken ct)
    {
        var rule = ChangeRule.FromJson(c.RuleJson);
        var spec = rule.ToSpec(c.Tag!);
        await _hostGate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            // Not cancellable from here on: the host and the database must end up agreeing.
            var result = await writer.InsertAsync(spec, CancellationToken.None).ConfigureAwait(false);
            c.ApplyCommand = result.CommandLine;
            await audit.WriteAsync(actor, "change.apply", $"change {c.Id}", $"apply {rule.Describe()}", c.LabId, result.CommandLine, result.Message, result.Succeeded, CancellationToken.None).ConfigureAwait(false);
            if (!result.Succeeded)
            {
                await EndAsync(db, c, ChangeState.Failed, actor, $"iptables refused the rule: {result.Message}", null, CancellationToken.None).ConfigureAwait(false);
                return ToDto(c);
            }

            var found = await writer.FindTaggedAsync(c.Tag!, CancellationToken.None).ConfigureAwait(false);
            if (found.Count == 1 && found[0].Table == spec.Table && found[0].Chain == spec.Chain)
            {
                c.State = ChangeState.Applied;
                c.AppliedAt = DateTimeOffset.UtcNow;
                c.ExpiresAt = c.TtlSeconds is { } ttl ? c.AppliedAt + TimeSpan.FromSeconds(ttl) : null;
                c.Outcome = $"verified: present once in {spec.Table} {spec.Chain} at position {found[0].Position}";
                await SaveStateAsync(db, c, CancellationToken.None).ConfigureAwait(false);
                await audit.WriteAsync(actor, "change.applied", $"change {c.Id}", c.Outcome + (c.ExpiresAt is { } e ? $"; expires {e:u}" : ""), c.LabId, ct: CancellationToken.None).ConfigureAwait(false);
                return Published(c);
            }

            // Not there, there twice, or somewhere else: take our copies out again and say so.
            var cleanup = await writer.DeleteTaggedAsync(c.Tag!, CancellationToken.None).ConfigureAwait(false);
            var why = found.Count == 0 ? "iptables succeeded but a fresh read does not show the rule" : $"a fresh read shows the rule {found.Count} time(s) in {string.Join(", ", found.Select(f => $"{f.Table} {f.Chain}"))}";
            await EndAsync(db, c, ChangeState.Failed, actor, why + "; every copy was removed", cleanup, CancellationToken.None).ConfigureAwait(false);
            return ToDto(c);
        }
        finally
        {
            _hostGate.Release();
        }
    }

    private async Task<ChangeDto> RemoveAsync(DashboardDbContext db, ChangeRequest c, Actor actor, ChangeState end, CancellationToken ct)
    {
        await _hostGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // DeleteTaggedAsync reads the host itself: no command means the rule was not there.
            var results = await writer.DeleteTaggedAsync(c.Tag!, CancellationToken.None).ConfigureAwait(false);
            var after = await writer.FindTaggedAsync(c.Tag!, CancellationToken.None).ConfigureAwait(false);
            var command = string.Join("\n", results.Select(r => r.CommandLine));
            var verb = end == ChangeState.Expired ? "change.expired" : "change.revert";
            if (after.Count > 0)
            {
                c.Outcome = $"revert failed: the rule is still on the host ({string.Join("; ", results.Select(r => r.Message))})";
                c.RevertCommand = command;
                await SaveStateAsync(db, c, CancellationToken.None).ConfigureAwait(false);
                await audit.WriteAsync(actor, verb, $"change {c.Id}", c.Outcome, c.LabId, command, string.Join("\n", results.Select(r => r.Message)), false, CancellationToken.None).ConfigureAwait(false);
                Published(c);
                throw new ChangeStateException(c.Outcome);
            }

            var outcome = results.Count == 0
                ? "the rule was already gone from the host (removed outside the dashboard)"
                : end == ChangeState.Expired ? $"time-to-live of {c.TtlSeconds} s ran out; rule removed and verified gone" : "rule removed and verified gone";
            await EndAsync(db, c, end, actor, outcome, results, CancellationToken.None).ConfigureAwait(false);
            return ToDto(c);
        }
        finally
        {
            _hostGate.Release();
        }
    }

    private async Task EndAsync(DashboardDbContext db, ChangeRequest c, ChangeState state, Actor actor, string outcome, IReadOnlyList<RuleCommandResult>? commands, CancellationToken ct)
    {
        c.State = state;
        c.Outcome = outcome;
        c.EndedAt = DateTimeOffset.UtcNow;
        c.EndedByName = actor.Name;
        if (commands is { Count: > 0 })
        {
            c.RevertCommand = string.Join("\n", commands.Select(r => r.CommandLine));
        }

        await SaveStateAsync(db, c, ct).ConfigureAwait(false);
        await audit.WriteAsync(
            actor,
            "change." + state.ToString().ToLowerInvariant(),
            $"change {c.Id}",
            outcome,
            c.LabId,
            commands is { Count: > 0 } ? string.Join("\n", commands.Select(r => r.CommandLine)) : null,
            commands is { Count: > 0 } ? string.Join("\n", commands.Select(r => r.Message)) : null,
            state != ChangeState.Failed,
            ct).ConfigureAwait(false);
        Published(c);
    }

    private static async Task SaveStateAsync(DashboardDbContext db, ChangeRequest c, CancellationToken ct)
    {
        c.UpdatedAt = DateTimeOffset.UtcNow;
        c.Version++;
        try
        {
            await db.SaveChangesAsync(ct).ConfigureAwait(false);
        }
        catch (DbUpdateConcurrencyException)
        {
            throw new ChangeStateException($"change {c.Id} was changed by someone else meanwhile; reload it");
        }
    }

    private async Task<ChangeRequest> LoadAsync(DashboardDbContext db, Actor actor, int id, LabRole minimum, CancellationToken ct)
    {
        var c = await db.ChangeRequests.SingleOrDefaultAsync(x => x.Id == id, ct).ConfigureAwait(false);
        var role = c is null ? null : await LabAccess.RoleAsync(db, actor, c.LabId, ct).ConfigureAwait(false);
        if (c is null || role is null)
        {
            throw new LabAccessException(Dashboard.App.Access.AccessDenial.NotFound, $"change {id} does not exist or is in a lab you are not a member of");
        }

        try
        {
            LabAccess.Check(role, c.LabId, minimum);
        }
        catch (LabAccessException ex)
        {
            await audit.WriteAsync(actor, "change.refused", $"change {id}", ex.Message, c.LabId, succeeded: false, ct: CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        return c;
    }

    private static void RequireState(ChangeRequest c, ChangeState expected, string verb)
    {
        if (c.State != expected)
        {
            throw new ChangeStateException($"change {c.Id} is {c.State.ToString().ToLowerInvariant()}: only a {expected.ToString().ToLowerInvariant()} change can be {verb}");
        }
    }

    private ChangeDto Published(ChangeRequest c)
    {
        var dto = ToDto(c);
        feed.ChangeUpdated(dto);
        return dto;
    }

    private ChangeDto ToDto(ChangeRequest c)
    {
        var rule = ChangeRule.FromJson(c.RuleJson);
        return new ChangeDto(c.Id, c.LabId, rule, rule.Describe(), c.Rationale, c.TtlSeconds, c.State, c.ProposedByName, c.CreatedAt, c.UpdatedAt, c.DecidedByName, c.DecidedAt, c.DecisionNote, c.SelfApproved,
            c.Tag ?? TagFor(c.Id), CommandFor(rule, c.Id), c.ApplyCommand, c.AppliedAt, c.ExpiresAt, c.RevertCommand, c.EndedByName, c.EndedAt, c.Outcome);
    }

    private string ProgramFor(ChangeRule rule) => rule.IsIpv6 ? _host.Ip6tables : _host.Iptables;

    private bool InterfaceExists(string name)
    {
        if (!Directory.Exists(InterfacesPath))
        {
            return false;
        }

        var names = Directory.GetDirectories(InterfacesPath).Select(Path.GetFileName);
        return name.EndsWith('+') ? names.Any(n => n!.StartsWith(name[..^1], StringComparison.Ordinal)) : names.Contains(name);
    }

    private static string? Note(string? note)
    {
        if (string.IsNullOrWhiteSpace(note))
        {
            return null;
        }

        note = note.Trim();
        return note.Length > ChangeRule.MaxRationale ? throw new ChangeValidationException(new Dictionary<string, string> { ["Note"] = $"a note is at most {ChangeRule.MaxRationale} characters" }) : note;
    }

    private static string Ttl(int? ttl) => ttl is { } t ? $" for {t} s" : "";
}
