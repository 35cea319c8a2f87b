using Dashboard.Core.Changes;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.App.Audit;
using Dashboard.App.Contracts;
using Dashboard.App.Access;
using Dashboard.App.Isolation;
using Dashboard.App.Labs;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Dashboard.App.Changes;

/// <summary>
/// Change requests from proposal to revert. Proposals are validated field by field and against the host (interfaces exist,
/// the chain exists in its table). Approval needs a different member with the Approver role (or the lab's single-member
/// self-approval setting, and then the change says so) and applies the rule at once: <c>iptables -w</c> with an argument
/// list, tagged <c>netlab:change-INSTANCE-ID</c>, then a fresh read must show the tag exactly once. Revert deletes exactly
/// that tagged rule and checks it is gone; a time-to-live reverts by itself, also after a restart. A change may be for
/// an agent's host (<c>host</c>): it is checked against that host's rules and interfaces, and applied, verified and
/// reverted by its agent.
/// Putting rules on the host and taking them off is <see cref="ChangeHostApplier"/>'s; start-up reconciliation and expiry are <see cref="ChangeReconciler"/>'s.
/// </summary>
public sealed class ChangeRequestService(
    IDbContextFactory<DashboardDbContext> dbs,
    LabAccess access,
    AuditLog audit,
    ChangeHostApplier applier,
    IsolationService isolation,
    Dashboard.App.Hosts.HostDirectory hosts,
    IOptions<ChangeOptions> options,
    ILogger<ChangeRequestService> logger)
{
    public string TagFor(int id) => applier.TagFor(id);

    public string CommandFor(ChangeRule rule, int id) => applier.CommandFor(rule, id);

    public async Task<IReadOnlyList<ChangeDto>> ListAsync(Actor actor, int labId, ChangeState? state = null, CancellationToken ct = default)
    {
        await access.RequireAsync(actor, labId, LabRole.Viewer, ct).ConfigureAwait(false);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var q = db.ChangeRequests.AsNoTracking().Where(c => c.LabId == labId);
        if (state is { } s)
        {
            q = q.Where(c => c.State == s);
        }

        return [.. (await q.OrderByDescending(c => c.Id).Take(500).ToListAsync(ct).ConfigureAwait(false)).Select(applier.ToDto)];
    }

    public async Task<ChangeDto> GetAsync(Actor actor, int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var c = await LoadAsync(db, actor, id, LabRole.Viewer, ct).ConfigureAwait(false);
        return applier.ToDto(c);
    }

    /// <summary>Field and host checks of a rule, without saving anything (the form shows these as the user types).</summary>
    /// <summary>
    /// Field checks, then checks against the host the change is for (<paramref name="host"/>; null or the dashboard's
    /// own name: this host): the host is connected, the interfaces exist there, the chain exists in its table.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, string>> CheckAsync(ChangeRule rule, string? rationale, int? ttlSeconds, CancellationToken ct = default, string? host = null)
    {
        ArgumentNullException.ThrowIfNull(rule);
        var errors = new Dictionary<string, string>(rule.Validate());
        foreach (var (k, v) in ChangeRule.ValidateRequest(rationale, ttlSeconds))
        {
            errors[k] = v;
        }

        var remote = RemoteOf(host);
        Ruleset? remoteRules = null;
        IReadOnlySet<string>? remoteLinks = null;
        if (remote is not null)
        {
            if (hosts.Remote(remote) is not { State: Dashboard.App.Hosts.AgentState.Connected, Feed: { Ruleset: { } r, Topology: { } t } })
            {
                errors["Host"] = hosts.Remote(remote) is null
                    ? hosts.NoSuchHost(remote)
                    : $"host '{remote}' is not connected (or has not reported its rules): propose the change when its agent is back";
                return errors;
            }

            (remoteRules, remoteLinks) = (r, t.Links.Select(l => l.Name).ToHashSet(StringComparer.Ordinal));
        }

        var on = remote is null ? "this host" : $"host '{remote}'";
        foreach (var (field, name) in new[] { (nameof(ChangeRule.InInterface), rule.InInterface), (nameof(ChangeRule.OutInterface), rule.OutInterface) })
        {
            var exists = name is null ? true : remoteLinks is null ? InterfaceExists(name)
                : name.EndsWith('+') ? remoteLinks.Any(n => n.StartsWith(name[..^1], StringComparison.Ordinal)) : remoteLinks.Contains(name);
            if (!errors.ContainsKey(field) && !string.IsNullOrEmpty(name) && !exists)
            {
                errors[field] = name.EndsWith('+') ? $"no interface on {on} starts with '{name.TrimEnd('+')}'" : $"interface '{name}' does not exist on {on}";
            }
        }

        if (!errors.ContainsKey(nameof(ChangeRule.Chain)) && !errors.ContainsKey(nameof(ChangeRule.Table)))
        {
            var ruleset = remoteRules ?? await isolation.RulesetAsync(ct).ConfigureAwait(false);
            var family = rule.IsIpv6 ? TableFamily.Ipv6 : TableFamily.Ipv4;
            var chain = ruleset.FindTable(rule.Table, family)?.FindChain(rule.Chain);
            if (chain is null)
            {
                errors[nameof(ChangeRule.Chain)] = $"chain {rule.Chain} does not exist in table {rule.Table} on {on}";
            }
            else if (rule.Position is { } p && p > chain.Rules.Count + 1 && !errors.ContainsKey(nameof(ChangeRule.Position)))
            {
                errors[nameof(ChangeRule.Position)] = $"{rule.Chain} has {chain.Rules.Count} rules: insert at 1-{chain.Rules.Count + 1}, or append";
            }
        }

        return errors;
    }

    /// <summary>The agent host a change names, or null for the dashboard's own.</summary>
    private string? RemoteOf(string? host) => string.IsNullOrEmpty(host) || host == isolation.LocalHost ? null : host;

    /// <summary>Proposes a change for the dashboard's own host, or for an agent's (<paramref name="host"/>); needs the Operator role.</summary>
    public async Task<ChangeDto> ProposeAsync(Actor actor, int labId, ChangeRule rule, string rationale, int? ttlSeconds, CancellationToken ct = default, string? host = null)
    {
        ArgumentNullException.ThrowIfNull(rule);
        await access.RequireAsync(actor, labId, LabRole.Operator, ct).ConfigureAwait(false);
        var errors = new Dictionary<string, string>(await CheckAsync(rule, rationale, ttlSeconds, ct, host).ConfigureAwait(false));
        if (await access.HostRefusalAsync(labId, RemoteOf(host) ?? isolation.LocalHost, ct).ConfigureAwait(false) is { } refused)
        {
            errors["Host"] = refused;
            await audit.WriteAsync(actor, "change.propose-refused", $"lab {labId}", refused, labId, succeeded: false, host: RemoteOf(host) ?? hosts.Local.Host, ct: CancellationToken.None).ConfigureAwait(false);
        }

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
            InstanceId = applier.InstanceId,
            Host = RemoteOf(host),
        };
        db.ChangeRequests.Add(c);
        await db.SaveChangesAsync(ct).ConfigureAwait(false);
        c.Tag = TagFor(c.Id);
        await db.SaveChangesAsync(ct).ConfigureAwait(false);
        await audit.WriteAsync(actor, "change.proposed", $"change {c.Id}", $"proposed {rule.Describe()}{Ttl(ttlSeconds)}{(c.Host is { } h ? $" on host '{h}'" : "")}; rationale: {c.Rationale}", labId, CommandFor(rule, c.Id), host: c.Host ?? hosts.Local.Host, ct: ct).ConfigureAwait(false);
        return applier.Published(c);
    }

    /// <summary>Approves and applies at once. Refused unless the actor is a different member with the Approver role.</summary>
    public async Task<ChangeDto> ApproveAsync(Actor actor, int id, string? note, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var c = await LoadAsync(db, actor, id, LabRole.Approver, ct).ConfigureAwait(false);
        RequireState(c, ChangeState.Proposed, "approved");
        using var applying = applier.Applying(c.Id);
        if (await access.HostRefusalAsync(c.LabId, c.Host ?? isolation.LocalHost, ct).ConfigureAwait(false) is { } notHere)
        {
            await audit.WriteAsync(actor, "change.approve-refused", $"change {c.Id}", notHere, c.LabId, succeeded: false, host: c.Host ?? hosts.Local.Host, ct: ct).ConfigureAwait(false);
            throw new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, notHere);
        }

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
                await audit.WriteAsync(actor, "change.approve-refused", $"change {c.Id}", "self-approval refused: " + why, c.LabId, succeeded: false, host: c.Host ?? hosts.Local.Host, ct: ct).ConfigureAwait(false);
                throw new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, why);
            }
        }

        if (c.Host is { } remote && hosts.Remote(remote) is not { State: Dashboard.App.Hosts.AgentState.Connected })
        {
            var why = $"host '{remote}' is disconnected: approve the change once its agent is back (it stays proposed)";
            await audit.WriteAsync(actor, "change.approve-refused", $"change {c.Id}", why, c.LabId, succeeded: false, host: c.Host ?? hosts.Local.Host, ct: ct).ConfigureAwait(false);
            throw new ChangeStateException(why);
        }

        c.State = ChangeState.Approved;
        c.SelfApproved = self;
        c.DecidedById = actor.UserId;
        c.DecidedByName = actor.Name;
        c.DecidedAt = DateTimeOffset.UtcNow;
        c.DecisionNote = Note(note);
        await ChangeHostApplier.SaveStateAsync(db, c, ct).ConfigureAwait(false);
        await audit.WriteAsync(actor, "change.approved", $"change {c.Id}", (self ? "SELF-APPROVED (single-member lab setting)" : "approved") + (c.DecisionNote is { } n ? $"; note: {n}" : ""), c.LabId, host: c.Host ?? hosts.Local.Host, ct: ct).ConfigureAwait(false);
        applier.Published(c);
        return await applier.ApplyAsync(db, c, actor, ct).ConfigureAwait(false);
    }

    /// <summary>The shortest and longest a staged rule counts before it is taken off by itself, and the default.</summary>
    public const int MinStageSeconds = 30;
    public const int MaxStageSeconds = 24 * 3600;
    public const int DefaultStageSeconds = 3600;

    /// <summary>
    /// Stages a proposed change (Operator): its match counts on the host with no target, so the approver sees how many
    /// packets it would decide, for <paramref name="ttlSeconds"/> (default an hour) unless approved or rejected before.
    /// </summary>
    public async Task<ChangeDto> StageAsync(Actor actor, int id, int? ttlSeconds, CancellationToken ct = default)
    {
        if (ttlSeconds is < MinStageSeconds or > MaxStageSeconds)
        {
            throw new ChangeValidationException(new Dictionary<string, string> { ["TtlSeconds"] = $"a staged rule counts for {MinStageSeconds} s to 24 h; leave it empty for an hour" });
        }

        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var c = await LoadAsync(db, actor, id, LabRole.Operator, ct).ConfigureAwait(false);
        RequireState(c, ChangeState.Proposed, "staged");
        if (await access.HostRefusalAsync(c.LabId, c.Host ?? isolation.LocalHost, ct).ConfigureAwait(false) is { } notHere)
        {
            await audit.WriteAsync(actor, "change.stage-refused", $"change {c.Id}", notHere, c.LabId, succeeded: false, host: c.Host ?? hosts.Local.Host, ct: ct).ConfigureAwait(false);
            throw new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, notHere);
        }

        if (c.Host is { } remote && hosts.Remote(remote) is not { State: Dashboard.App.Hosts.AgentState.Connected })
        {
            var why = $"host '{remote}' is disconnected: stage the change once its agent is back";
            await audit.WriteAsync(actor, "change.stage-refused", $"change {c.Id}", why, c.LabId, succeeded: false, host: remote, ct: ct).ConfigureAwait(false);
            throw new ChangeStateException(why);
        }

        return await applier.StageAsync(db, c, actor, TimeSpan.FromSeconds(ttlSeconds ?? DefaultStageSeconds), ct).ConfigureAwait(false);
    }

    /// <summary>Takes a staged change's counting rule off its host (Operator); the change stays proposed.</summary>
    public async Task<ChangeDto> UnstageAsync(Actor actor, int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var c = await LoadAsync(db, actor, id, LabRole.Operator, ct).ConfigureAwait(false);
        if (!ChangeHostApplier.IsStaged(c))
        {
            throw new ChangeStateException($"change {c.Id} is not staged");
        }

        return await applier.UnstageAsync(db, c, actor, $"unstaged by {actor.Name}", ct).ConfigureAwait(false);
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
        await ChangeHostApplier.SaveStateAsync(db, c, ct).ConfigureAwait(false);
        await audit.WriteAsync(actor, "change.rejected", $"change {c.Id}", "rejected" + (c.DecisionNote is { } n ? $"; note: {n}" : ""), c.LabId, host: c.Host ?? hosts.Local.Host, ct: ct).ConfigureAwait(false);
        if (ChangeHostApplier.IsStaged(c))
        {
            try
            {
                return await applier.UnstageAsync(db, c, actor, "rejected", CancellationToken.None).ConfigureAwait(false);
            }
            catch (ChangeStateException ex)
            {
                // The rejection stands; the staged rule goes when its host is back (reconciliation) and the change says so.
                logger.LogWarning("change {Change} rejected, staged rule not removed yet: {Error}", c.Id, ex.Message);
            }
        }

        return applier.Published(c);
    }

    /// <summary>Removes the applied rule (exactly the one with this change's tag) and checks it is gone.</summary>
    public async Task<ChangeDto> RevertAsync(Actor actor, int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var c = await LoadAsync(db, actor, id, LabRole.Operator, ct).ConfigureAwait(false);
        RequireState(c, ChangeState.Applied, "reverted");
        return await applier.RemoveAsync(db, c, actor, ChangeState.Reverted, ct).ConfigureAwait(false);
    }

    /// <summary>The isolation matrix of the change's host now and with this rule (and with the lab's other open proposals for that host too), and the exact command.</summary>
    public async Task<ChangeWhatIf> WhatIfAsync(Actor actor, int id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var c = await LoadAsync(db, actor, id, LabRole.Viewer, ct).ConfigureAwait(false);
        var rule = ChangeRule.FromJson(c.RuleJson);
        var alone = await isolation.WhatIfOnAsync(c.Host, [rule.ToSpec(TagFor(c.Id))], "networks", MatrixProbe.Ping, ct).ConfigureAwait(false);
        var others = await db.ChangeRequests.AsNoTracking().Where(x => x.LabId == c.LabId && x.State == ChangeState.Proposed && x.Id != c.Id && x.Host == c.Host).OrderBy(x => x.Id).ToListAsync(ct).ConfigureAwait(false);
        WhatIf? together = null;
        if (others.Count > 0)
        {
            var specs = others.Select(o => ChangeRule.FromJson(o.RuleJson).ToSpec(TagFor(o.Id))).Prepend(rule.ToSpec(TagFor(c.Id))).ToList();
            try
            {
                together = await isolation.WhatIfOnAsync(c.Host, specs, "networks", MatrixProbe.Ping, ct).ConfigureAwait(false);
            }
            catch (WhatIfException ex)
            {
                logger.LogInformation("what-if with other proposals not possible: {Reason}", ex.Message);
            }
        }

        return new ChangeWhatIf(alone with { Command = CommandFor(rule, c.Id), Commands = [CommandFor(rule, c.Id)] }, together, [.. others.Select(o => o.Id)]);
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
            await audit.WriteAsync(actor, "change.refused", $"change {id}", ex.Message, c.LabId, succeeded: false, host: c.Host ?? hosts.Local.Host, ct: CancellationToken.None).ConfigureAwait(false);
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




    private bool InterfaceExists(string name)
    {
        if (!Directory.Exists(options.Value.InterfacesPath))
        {
            return false;
        }

        var names = Directory.GetDirectories(options.Value.InterfacesPath).Select(Path.GetFileName);
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
