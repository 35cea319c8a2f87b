using Dashboard.App.Access;
using Dashboard.App.Audit;
using Dashboard.App.Contracts;
using Dashboard.App.Live;
using Dashboard.Core.Changes;
using Dashboard.Core.Firewall;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.Host.Netfilter;
using Dashboard.Host.Processes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Dashboard.App.Changes;

/// <summary>
/// Puts a decided change on its host and takes it off again, one host action at a time per host: <c>iptables -w</c>
/// with an argument list (in this process, or by the host's agent), tagged <c>netlab:change-INSTANCE-ID</c>, then a
/// fresh read must show the tag exactly once; a revert deletes exactly that tagged rule and checks it is gone. Every
/// step is audited and published to the change's lab. Not cancellable once a host command started: the host and the
/// database must end up agreeing (an agent that goes away meanwhile leaves that to reconciliation when it is back).
/// </summary>
public sealed class ChangeHostApplier(IptablesRuleWriter writer, Dashboard.App.Hosts.IAgentCommands agents, AuditLog audit, LiveFeed feed, IOptions<Dashboard.Host.DockerHostOptions> hostOptions)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> _gates = new(StringComparer.Ordinal);
    private readonly Dashboard.Host.DockerHostOptions _host = hostOptions.Value;

    /// <summary>Where a change for <paramref name="host"/> goes (null or the dashboard's own name: this host).</summary>
    public IChangeTarget TargetOf(string? host) => host is null || host == feed.Host ? new LocalChangeTarget(writer) : new AgentChangeTarget(host, agents);

    private SemaphoreSlim GateOf(string? host) => _gates.GetOrAdd(host ?? "", _ => new SemaphoreSlim(1, 1));

    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, byte> _applying = new();

    /// <summary>Marks a change as being approved and applied from now until the result is disposed: reconciliation leaves it alone.</summary>
    public IDisposable Applying(int id)
    {
        _applying[id] = 0;
        return new Done(() => _applying.TryRemove(id, out _));
    }

    /// <summary>Whether the change is being approved and applied right now (its Approved state is not a leftover).</summary>
    public bool IsApplying(int id) => _applying.ContainsKey(id);

    private sealed class Done(Action done) : IDisposable
    {
        public void Dispose() => done();
    }

    public string InstanceId => _host.InstanceId;

    /// <summary>The comment prefix of this instance's change rules.</summary>
    public string TagPrefix => RuleTag.For($"change-{_host.InstanceId}-");

    public string TagFor(int id) => RuleTag.For($"change-{_host.InstanceId}-{id}");

    public string CommandFor(ChangeRule rule, int id) =>
        CommandLine.Format(ProgramFor(rule), rule.ToSpec(TagFor(id)).InsertArguments(_host.XtablesLockWaitSeconds));

    /// <summary>Runs <paramref name="work"/> with no other change being applied or removed on <paramref name="host"/> meanwhile (reconciliation).</summary>
    public async Task ExclusiveAsync(string? host, Func<IChangeTarget, Task> work, CancellationToken ct)
    {
        var gate = GateOf(host);
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await work(TargetOf(host)).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    public async Task<ChangeDto> ApplyAsync(DashboardDbContext db, ChangeRequest c, Actor actor, CancellationToken ct)
    {
        var rule = ChangeRule.FromJson(c.RuleJson);
        var spec = rule.ToSpec(c.Tag!);
        var target = TargetOf(c.Host);
        var gate = GateOf(c.Host);
        await gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            // Whatever held the host meanwhile (a reconciliation) may have decided the change: only an approved one goes on.
            await db.Entry(c).ReloadAsync(CancellationToken.None).ConfigureAwait(false);
            if (c.State != ChangeState.Approved)
            {
                return ToDto(c);
            }

            // Not cancellable from here on: the host and the database must end up agreeing. A staged change's counting
            // rule is replaced by the real one in one transaction; without it on the host the rule is inserted as usual.
            var stagedTag = StagedRules.TagOf(c.Tag!);
            var staged = IsStaged(c);
            var result = staged ? await target.PromoteAsync(rule, c.Tag!, CancellationToken.None).ConfigureAwait(false) : null;
            string? stageNote = null;
            if (result is { Succeeded: false, CommandLine: "" })
            {
                stageNote = result.Message;
                result = null;
            }

            result ??= await target.InsertAsync(rule, c.Tag!, CancellationToken.None).ConfigureAwait(false);
            c.ApplyCommand = result.CommandLine;
            await audit.WriteAsync(actor, "change.apply", $"change {c.Id}", $"apply {rule.Describe()}{(staged && stageNote is null ? " in place of its staged rule (one iptables-restore transaction)" : "")}", c.LabId, result.CommandLine, result.Message, result.Succeeded, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
            if (!result.Succeeded)
            {
                var leftover = staged ? await TryRemoveCopiesAsync(target, stagedTag).ConfigureAwait(false) : null;
                if (staged)
                {
                    Unstaged(c, $"approval failed; staged rule: {leftover}");
                }

                await EndAsync(db, c, ChangeState.Failed, actor, $"iptables refused the rule: {result.Message}", null, CancellationToken.None).ConfigureAwait(false);
                return ToDto(c);
            }

            var tagged = await target.FindAllTaggedAsync(CancellationToken.None).ConfigureAwait(false);
            var found = tagged.Where(r => r.Comment == c.Tag).ToList();
            var stillStaged = tagged.Count(r => r.Comment == stagedTag);
            IReadOnlyList<RuleCommandResult> leftovers = [];
            if (stillStaged > 0)
            {
                // A staged copy the approval did not take (the promotion fell back to a plain insert, or a staging raced
                // in): it comes off now, whatever the outcome.
                leftovers = await target.DeleteTaggedAsync(stagedTag, CancellationToken.None).ConfigureAwait(false);
                stillStaged = (await target.FindTaggedAsync(stagedTag, CancellationToken.None).ConfigureAwait(false)).Count;
                await audit.WriteAsync(actor, "change.unstaged", $"change {c.Id}", $"a staged copy was still on the host after the apply: {leftovers.Count} removed, {stillStaged} left", c.LabId,
                    string.Join("\n", leftovers.Select(r => r.CommandLine)), string.Join("\n", leftovers.Select(r => r.Message)), stillStaged == 0, c.Host ?? _host.Name, CancellationToken.None).ConfigureAwait(false);
            }

            if (found.Count == 1 && found[0].Table == spec.Table && found[0].Chain == spec.Chain && stillStaged == 0)
            {
                c.State = ChangeState.Applied;
                c.AppliedAt = DateTimeOffset.UtcNow;
                c.ExpiresAt = c.TtlSeconds is { } ttl ? c.AppliedAt + TimeSpan.FromSeconds(ttl) : null;
                c.Outcome = $"verified: present once in {spec.Table} {spec.Chain} at position {found[0].Position}";
                if (staged || leftovers.Count > 0)
                {
                    Unstaged(c, staged && stageNote is null && leftovers.Count == 0 ? "replaced by the real rule at approval (one iptables-restore transaction)"
                        : $"{stageNote ?? "a staged copy was left"}; the real rule was inserted on its own and every staged copy removed");
                }

                await SaveStateAsync(db, c, CancellationToken.None).ConfigureAwait(false);
                await audit.WriteAsync(actor, "change.applied", $"change {c.Id}", c.Outcome + (c.ExpiresAt is { } e ? $"; expires {e:u}" : ""), c.LabId, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
                return Published(c);
            }

            // Not there, there twice, somewhere else, or the staged rule still there: take our copies out again and say so.
            var cleanup = await target.DeleteTaggedAsync(c.Tag!, CancellationToken.None).ConfigureAwait(false);
            cleanup = [.. cleanup, .. await target.DeleteTaggedAsync(stagedTag, CancellationToken.None).ConfigureAwait(false)];
            if (staged || leftovers.Count > 0)
            {
                Unstaged(c, "approval failed; the staged rule was removed");
            }

            var why = stillStaged > 0 && found.Count == 1 ? "the real rule is on the host but its staged rule was not replaced"
                : found.Count == 0 ? "iptables succeeded but a fresh read does not show the rule" : $"a fresh read shows the rule {found.Count} time(s) in {string.Join(", ", found.Select(f => $"{f.Table} {f.Chain}"))}";
            await EndAsync(db, c, ChangeState.Failed, actor, why + "; every copy was removed", cleanup, CancellationToken.None).ConfigureAwait(false);
            return ToDto(c);
        }
        catch (ChangeStateException ex) when (c.Host is not null)
        {
            // The agent refused or the host failed a step: nothing of it may stay, and the change says why.
            await audit.WriteAsync(actor, "change.apply", $"change {c.Id}", ex.Message, c.LabId, CommandFor(rule, c.Id), ex.Message, false, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
            var cleanup = await TryRemoveCopiesAsync(target, c.Tag!).ConfigureAwait(false);
            if (IsStaged(c))
            {
                Unstaged(c, "approval failed; staged rule: " + await TryRemoveCopiesAsync(target, StagedRules.TagOf(c.Tag!)).ConfigureAwait(false));
            }

            await EndAsync(db, c, ChangeState.Failed, actor, $"{ex.Message}{(cleanup is null ? "" : "; " + cleanup)}", null, CancellationToken.None).ConfigureAwait(false);
            return ToDto(c);
        }
        catch (Dashboard.App.Hosts.HostUnavailableException ex)
        {
            // No answer in time, or the agent went away. Still connected: its steps run in order, so a removal sent
            // now follows the insert, and the change fails cleanly. Gone: reconciliation finds out when it is back.
            await audit.WriteAsync(actor, "change.apply", $"change {c.Id}", ex.Message, c.LabId, CommandFor(rule, c.Id), ex.Message, false, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
            if (await TryRemoveCopiesAsync(target, c.Tag!).ConfigureAwait(false) is { } removed && !removed.StartsWith("not removed", StringComparison.Ordinal))
            {
                if (IsStaged(c))
                {
                    Unstaged(c, "approval failed; staged rule: " + await TryRemoveCopiesAsync(target, StagedRules.TagOf(c.Tag!)).ConfigureAwait(false));
                }

                await EndAsync(db, c, ChangeState.Failed, actor, $"{ex.Message}; {removed}", null, CancellationToken.None).ConfigureAwait(false);
                return ToDto(c);
            }

            c.Outcome = $"{ex.Message}; whether the rule reached the host is checked when its agent connects again (until then the change stays approved)";
            await SaveStateAsync(db, c, CancellationToken.None).ConfigureAwait(false);
            Published(c);
            throw new ChangeStateException(c.Outcome);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Removes every copy of a change's rule after a failed apply; says what happened (null for the local host's own path).</summary>
    private static async Task<string?> TryRemoveCopiesAsync(IChangeTarget target, string tag)
    {
        try
        {
            var results = await target.DeleteTaggedAsync(tag, CancellationToken.None).ConfigureAwait(false);
            return results.Count == 0 ? "no copy of the rule is on the host" : $"{results.Count} cop{(results.Count == 1 ? "y" : "ies")} of the rule removed";
        }
        catch (Exception ex) when (ex is Dashboard.App.Hosts.HostUnavailableException or ChangeStateException)
        {
            return "not removed: " + ex.Message;
        }
    }

    /// <summary>Whether the change's counting rule is on its host as far as the database knows.</summary>
    public static bool IsStaged(ChangeRequest c) => c.StagedAt is not null && c.UnstagedAt is null;

    private static void Unstaged(ChangeRequest c, string outcome)
    {
        c.UnstagedAt = DateTimeOffset.UtcNow;
        c.StageOutcome = outcome;
    }

    /// <summary>Records that a change's staged rule is off its host (reconciliation's findings), audits and publishes it.</summary>
    public async Task RecordUnstagedAsync(DashboardDbContext db, ChangeRequest c, string outcome, string? host, CancellationToken ct)
    {
        Unstaged(c, outcome);
        await SaveStateAsync(db, c, ct).ConfigureAwait(false);
        await audit.WriteAsync(Actor.System, "change.unstaged", $"change {c.Id}", outcome, c.LabId, host: host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
        Published(c);
    }

    /// <summary>
    /// Stages a proposed change: its match at its position with no target, tagged <c>…-staged</c>, so it counts the
    /// packets the rule would decide without changing their fate; a fresh read must show it once. Taken off after
    /// <paramref name="ttl"/>, at rejection, or replaced by the real rule at approval.
    /// </summary>
    public async Task<ChangeDto> StageAsync(DashboardDbContext db, ChangeRequest c, Actor actor, TimeSpan ttl, CancellationToken ct)
    {
        var rule = ChangeRule.FromJson(c.RuleJson);
        var stagedTag = StagedRules.TagOf(c.Tag!);
        var spec = rule.ToStagedSpec(stagedTag);
        var command = CommandLine.Format(ProgramFor(rule), spec.InsertArguments(_host.XtablesLockWaitSeconds));
        var target = TargetOf(c.Host);
        var gate = GateOf(c.Host);
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await db.Entry(c).ReloadAsync(CancellationToken.None).ConfigureAwait(false);
            if (c.State != ChangeState.Proposed || IsStaged(c))
            {
                throw new ChangeStateException(IsStaged(c) ? $"change {c.Id} is staged already (since {c.StagedAt:u})" : $"change {c.Id} is {c.State.ToString().ToLowerInvariant()}: only a proposed change can be staged");
            }

            // The same cap an agent keeps, on every host: an Operator cannot fill a chain with counting rules.
            if (ChangeRule.CountOn(await target.FindAllTaggedAsync(CancellationToken.None).ConfigureAwait(false)) >= ChangeRule.MaxPerHost)
            {
                var full = $"the host holds {ChangeRule.MaxPerHost} change rules already (staged or applied): revert or unstage some first";
                await audit.WriteAsync(actor, "change.stage-refused", $"change {c.Id}", full, c.LabId, succeeded: false, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
                throw new ChangeStateException(full);
            }

            RuleCommandResult result;
            try
            {
                result = await target.StageAsync(rule, stagedTag, CancellationToken.None).ConfigureAwait(false);
            }
            catch (ChangeStateException ex)
            {
                await audit.WriteAsync(actor, "change.stage", $"change {c.Id}", ex.Message, c.LabId, command, ex.Message, false, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
                throw;
            }

            await audit.WriteAsync(actor, "change.stage", $"change {c.Id}", $"stage {rule.Describe()} (counting only, no target)", c.LabId, result.CommandLine, result.Message, result.Succeeded, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
            if (!result.Succeeded)
            {
                throw new ChangeStateException($"iptables refused the staged rule: {result.Message}");
            }

            try
            {
                return await VerifyStagedAsync(db, c, actor, ttl, spec, result, target).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ChangeStateException or FirewallUnavailableException)
            {
                // Read back or recorded it could not be (a change decided meanwhile, a failed read): it does not stay on the host.
                var removed = await TryRemoveCopiesAsync(target, stagedTag).ConfigureAwait(false);
                await audit.WriteAsync(actor, "change.stage-failed", $"change {c.Id}", $"{ex.Message}; staged rule: {removed}", c.LabId, succeeded: false, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
                throw new ChangeStateException($"{ex.Message}; staged rule: {removed}");
            }
        }
        catch (Dashboard.App.Hosts.HostUnavailableException ex)
        {
            await audit.WriteAsync(actor, "change.stage", $"change {c.Id}", ex.Message, c.LabId, command, ex.Message, false, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
            var removed = await TryRemoveCopiesAsync(target, stagedTag).ConfigureAwait(false);
            throw new ChangeStateException($"{ex.Message}; staged rule: {removed}");
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>A fresh read must show the staged rule once where it was put; then the change records it (a failure throws, and the caller takes the rule off).</summary>
    private async Task<ChangeDto> VerifyStagedAsync(DashboardDbContext db, ChangeRequest c, Actor actor, TimeSpan ttl, RuleSpec spec, RuleCommandResult result, IChangeTarget target)
    {
        var found = await target.FindTaggedAsync(spec.Tag, CancellationToken.None).ConfigureAwait(false);
        if (found.Count != 1 || found[0].Table != spec.Table || found[0].Chain != spec.Chain)
        {
            throw new ChangeStateException(found.Count == 0 ? "iptables succeeded but a fresh read does not show the staged rule"
                : $"a fresh read shows the staged rule {found.Count} time(s) in {string.Join(", ", found.Select(f => $"{f.Table} {f.Chain}"))}");
        }

        var now = DateTimeOffset.UtcNow;
        c.StagedAt = now;
        c.StagedByName = actor.Name;
        c.StageExpiresAt = now + ttl;
        c.UnstagedAt = null;
        c.StageCommand = result.CommandLine;
        c.StageOutcome = $"counting: present once in {spec.Table} {spec.Chain} at position {found[0].Position}";
        await SaveStateAsync(db, c, CancellationToken.None).ConfigureAwait(false);
        await audit.WriteAsync(actor, "change.staged", $"change {c.Id}", $"{c.StageOutcome}; taken off at {c.StageExpiresAt:u} unless approved or rejected before", c.LabId, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
        return Published(c);
    }

    /// <summary>Takes a staged change's counting rule off its host and checks it is gone; <paramref name="why"/> goes into the outcome and the audit.</summary>
    public async Task<ChangeDto> UnstageAsync(DashboardDbContext db, ChangeRequest c, Actor actor, string why, CancellationToken ct)
    {
        var stagedTag = StagedRules.TagOf(c.Tag!);
        var target = TargetOf(c.Host);
        var gate = GateOf(c.Host);
        var seen = c.StagedAt;
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // The staging the caller saw, as the database has it now: one unstaged (or staged again) meanwhile is left alone.
            await db.Entry(c).ReloadAsync(CancellationToken.None).ConfigureAwait(false);
            if (!IsStaged(c) || c.StagedAt != seen)
            {
                return ToDto(c);
            }

            var results = await target.DeleteTaggedAsync(stagedTag, CancellationToken.None).ConfigureAwait(false);
            var after = await target.FindTaggedAsync(stagedTag, CancellationToken.None).ConfigureAwait(false);
            var command = results.Count == 0 ? null : string.Join("\n", results.Select(r => r.CommandLine));
            var result = results.Count == 0 ? null : string.Join("\n", results.Select(r => r.Message));
            if (after.Count > 0)
            {
                c.StageOutcome = $"{why}; removal failed: the staged rule is still on the host ({result})";
                await SaveStateAsync(db, c, CancellationToken.None).ConfigureAwait(false);
                await audit.WriteAsync(actor, "change.unstage", $"change {c.Id}", c.StageOutcome, c.LabId, command, result, false, c.Host ?? _host.Name, CancellationToken.None).ConfigureAwait(false);
                Published(c);
                throw new ChangeStateException(c.StageOutcome);
            }

            Unstaged(c, results.Count == 0 ? $"{why}; the staged rule was already gone from the host (removed outside the dashboard)" : $"{why}; staged rule removed and verified gone");
            await audit.WriteAsync(actor, "change.unstaged", $"change {c.Id}", c.StageOutcome!, c.LabId, command, result, true, c.Host ?? _host.Name, CancellationToken.None).ConfigureAwait(false);
            await SaveStateAsync(db, c, CancellationToken.None).ConfigureAwait(false);
            return Published(c);
        }
        catch (Dashboard.App.Hosts.HostUnavailableException ex)
        {
            await audit.WriteAsync(actor, "change.unstage", $"change {c.Id}", $"{why}; not removed: {ex.Message}", c.LabId, null, ex.Message, false, c.Host ?? _host.Name, CancellationToken.None).ConfigureAwait(false);
            throw new ChangeStateException($"{ex.Message}: the staged rule stays until the host's agent is back (reconciliation removes it then)");
        }
        finally
        {
            gate.Release();
        }
    }

    public async Task<ChangeDto> RemoveAsync(DashboardDbContext db, ChangeRequest c, Actor actor, ChangeState end, CancellationToken ct)
    {
        var target = TargetOf(c.Host);
        var gate = GateOf(c.Host);
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // DeleteTaggedAsync reads the host itself: no command means the rule was not there.
            var results = await target.DeleteTaggedAsync(c.Tag!, CancellationToken.None).ConfigureAwait(false);
            var after = await target.FindTaggedAsync(c.Tag!, CancellationToken.None).ConfigureAwait(false);
            var command = string.Join("\n", results.Select(r => r.CommandLine));
            var verb = end == ChangeState.Expired ? "change.expired" : "change.revert";
            if (after.Count > 0)
            {
                c.Outcome = $"revert failed: the rule is still on the host ({string.Join("; ", results.Select(r => r.Message))})";
                c.RevertCommand = command;
                await SaveStateAsync(db, c, CancellationToken.None).ConfigureAwait(false);
                await audit.WriteAsync(actor, verb, $"change {c.Id}", c.Outcome, c.LabId, command, string.Join("\n", results.Select(r => r.Message)), false, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
                Published(c);
                throw new ChangeStateException(c.Outcome);
            }

            var outcome = results.Count == 0
                ? "the rule was already gone from the host (removed outside the dashboard)"
                : end == ChangeState.Expired ? $"time-to-live of {c.TtlSeconds} s ran out; rule removed and verified gone" : "rule removed and verified gone";
            await EndAsync(db, c, end, actor, outcome, results, CancellationToken.None).ConfigureAwait(false);
            return ToDto(c);
        }
        catch (Dashboard.App.Hosts.HostUnavailableException ex)
        {
            var verb = end == ChangeState.Expired ? "change.expired" : "change.revert";
            await audit.WriteAsync(actor, verb, $"change {c.Id}", $"not removed: {ex.Message}", c.LabId, null, ex.Message, false, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
            throw new ChangeStateException($"{ex.Message}: the change stays applied; revert it once the host's agent is back");
        }
        finally
        {
            gate.Release();
        }
    }

    public async Task EndAsync(DashboardDbContext db, ChangeRequest c, ChangeState state, Actor actor, string outcome, IReadOnlyList<RuleCommandResult>? commands, CancellationToken ct)
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
            c.Host ?? _host.Name,
            ct).ConfigureAwait(false);
        Published(c);
    }

    public static async Task SaveStateAsync(DashboardDbContext db, ChangeRequest c, CancellationToken ct)
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

    public ChangeDto Published(ChangeRequest c)
    {
        var dto = ToDto(c);
        feed.ChangeUpdated(dto);
        return dto;
    }

    public ChangeDto ToDto(ChangeRequest c)
    {
        var rule = ChangeRule.FromJson(c.RuleJson);
        return new ChangeDto(c.Id, c.LabId, rule, rule.Describe(), c.Rationale, c.TtlSeconds, c.State, c.ProposedByName, c.CreatedAt, c.UpdatedAt, c.DecidedByName, c.DecidedAt, c.DecisionNote, c.SelfApproved,
            c.Tag ?? TagFor(c.Id), CommandFor(rule, c.Id), c.ApplyCommand, c.AppliedAt, c.ExpiresAt, c.RevertCommand, c.EndedByName, c.EndedAt, c.Outcome, c.Host,
            c.StagedAt is { } at ? new ChangeStageDto(IsStaged(c), StagedRules.TagOf(c.Tag ?? TagFor(c.Id)), at, c.StagedByName, c.StageExpiresAt, c.UnstagedAt, c.StageCommand, c.StageOutcome) : null);
    }

    private string ProgramFor(ChangeRule rule) => rule.IsIpv6 ? _host.Ip6tables : _host.Iptables;
}
