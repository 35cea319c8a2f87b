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
/// Puts a decided change on the host and takes it off again, one host action at a time: <c>iptables -w</c> with an
/// argument list, tagged <c>netlab:change-INSTANCE-ID</c>, then a fresh read must show the tag exactly once; a revert
/// deletes exactly that tagged rule and checks it is gone. Every step is audited and published to the change's lab.
/// Not cancellable once a host command started: the host and the database must end up agreeing.
/// </summary>
public sealed class ChangeHostApplier(IptablesRuleWriter writer, AuditLog audit, LiveFeed feed, IOptions<Dashboard.Host.DockerHostOptions> hostOptions)
{
    private readonly SemaphoreSlim _hostGate = new(1, 1);
    private readonly Dashboard.Host.DockerHostOptions _host = hostOptions.Value;

    public string InstanceId => _host.InstanceId;

    /// <summary>The comment prefix of this instance's change rules.</summary>
    public string TagPrefix => RuleTag.For($"change-{_host.InstanceId}-");

    public string TagFor(int id) => RuleTag.For($"change-{_host.InstanceId}-{id}");

    public string CommandFor(ChangeRule rule, int id) =>
        CommandLine.Format(ProgramFor(rule), rule.ToSpec(TagFor(id)).InsertArguments(_host.XtablesLockWaitSeconds));

    /// <summary>Runs <paramref name="work"/> with no other change being applied or removed meanwhile (reconciliation).</summary>
    public async Task ExclusiveAsync(Func<IptablesRuleWriter, Task> work, CancellationToken ct)
    {
        await _hostGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await work(writer).ConfigureAwait(false);
        }
        finally
        {
            _hostGate.Release();
        }
    }

    public async Task<ChangeDto> ApplyAsync(DashboardDbContext db, ChangeRequest c, Actor actor, CancellationToken ct)
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

    public async Task<ChangeDto> RemoveAsync(DashboardDbContext db, ChangeRequest c, Actor actor, ChangeState end, CancellationToken ct)
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
            c.Tag ?? TagFor(c.Id), CommandFor(rule, c.Id), c.ApplyCommand, c.AppliedAt, c.ExpiresAt, c.RevertCommand, c.EndedByName, c.EndedAt, c.Outcome);
    }

    private string ProgramFor(ChangeRule rule) => rule.IsIpv6 ? _host.Ip6tables : _host.Iptables;
}
