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

            // Not cancellable from here on: the host and the database must end up agreeing.
            var result = await target.InsertAsync(rule, c.Tag!, CancellationToken.None).ConfigureAwait(false);
            c.ApplyCommand = result.CommandLine;
            await audit.WriteAsync(actor, "change.apply", $"change {c.Id}", $"apply {rule.Describe()}", c.LabId, result.CommandLine, result.Message, result.Succeeded, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
            if (!result.Succeeded)
            {
                await EndAsync(db, c, ChangeState.Failed, actor, $"iptables refused the rule: {result.Message}", null, CancellationToken.None).ConfigureAwait(false);
                return ToDto(c);
            }

            var found = await target.FindTaggedAsync(c.Tag!, CancellationToken.None).ConfigureAwait(false);
            if (found.Count == 1 && found[0].Table == spec.Table && found[0].Chain == spec.Chain)
            {
                c.State = ChangeState.Applied;
                c.AppliedAt = DateTimeOffset.UtcNow;
                c.ExpiresAt = c.TtlSeconds is { } ttl ? c.AppliedAt + TimeSpan.FromSeconds(ttl) : null;
                c.Outcome = $"verified: present once in {spec.Table} {spec.Chain} at position {found[0].Position}";
                await SaveStateAsync(db, c, CancellationToken.None).ConfigureAwait(false);
                await audit.WriteAsync(actor, "change.applied", $"change {c.Id}", c.Outcome + (c.ExpiresAt is { } e ? $"; expires {e:u}" : ""), c.LabId, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
                return Published(c);
            }

            // Not there, there twice, or somewhere else: take our copies out again and say so.
            var cleanup = await target.DeleteTaggedAsync(c.Tag!, CancellationToken.None).ConfigureAwait(false);
            var why = found.Count == 0 ? "iptables succeeded but a fresh read does not show the rule" : $"a fresh read shows the rule {found.Count} time(s) in {string.Join(", ", found.Select(f => $"{f.Table} {f.Chain}"))}";
            await EndAsync(db, c, ChangeState.Failed, actor, why + "; every copy was removed", cleanup, CancellationToken.None).ConfigureAwait(false);
            return ToDto(c);
        }
        catch (ChangeStateException ex) when (c.Host is not null)
        {
            // The agent refused or the host failed a step: nothing of it may stay, and the change says why.
            await audit.WriteAsync(actor, "change.apply", $"change {c.Id}", ex.Message, c.LabId, CommandFor(rule, c.Id), ex.Message, false, host: c.Host ?? _host.Name, ct: CancellationToken.None).ConfigureAwait(false);
            var cleanup = await TryRemoveCopiesAsync(target, c.Tag!).ConfigureAwait(false);
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
            c.Tag ?? TagFor(c.Id), CommandFor(rule, c.Id), c.ApplyCommand, c.AppliedAt, c.ExpiresAt, c.RevertCommand, c.EndedByName, c.EndedAt, c.Outcome, c.Host);
    }

    private string ProgramFor(ChangeRule rule) => rule.IsIpv6 ? _host.Ip6tables : _host.Iptables;
}
