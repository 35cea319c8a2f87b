using Dashboard.App.Hosts;
using Dashboard.Core.Changes;
using Dashboard.Core.Firewall;
using Dashboard.Host.Agents;
using Dashboard.Host.Netfilter;

namespace Dashboard.App.Changes;

/// <summary>
/// The host a change's rule goes on: the dashboard's own (<see cref="LocalChangeTarget"/>) or an agent's
/// (<see cref="AgentChangeTarget"/>). Both insert, read back by tag and remove with the same Host-layer code.
/// </summary>
public interface IChangeTarget
{
    /// <summary>The host's name as changes record it (null: the dashboard's own).</summary>
    string? Host { get; }

    /// <summary>Inserts the change's rule tagged <paramref name="tag"/>.</summary>
    Task<RuleCommandResult> InsertAsync(ChangeRule rule, string tag, CancellationToken ct);

    /// <summary>Inserts the change's rule as a counting rule (no target) tagged <paramref name="stagedTag"/>.</summary>
    Task<RuleCommandResult> StageAsync(ChangeRule rule, string stagedTag, CancellationToken ct);

    /// <summary>Replaces the staged rule (<paramref name="tag"/> + <c>-staged</c>) by the real one tagged <paramref name="tag"/>, in one transaction.</summary>
    Task<RuleCommandResult> PromoteAsync(ChangeRule rule, string tag, CancellationToken ct);

    /// <summary>A fresh read: every rule carrying a dashboard tag.</summary>
    Task<IReadOnlyList<FirewallRule>> FindAllTaggedAsync(CancellationToken ct);

    Task<IReadOnlyList<RuleCommandResult>> DeleteTaggedAsync(string tag, CancellationToken ct);

    /// <summary>Removes one copy of a tagged rule (a duplicate).</summary>
    Task<RuleCommandResult?> DeleteOneAsync(FirewallRule rule, CancellationToken ct);
}

public static class ChangeTargetExtensions
{
    /// <summary>A fresh read: every rule whose comment is exactly <paramref name="tag"/>.</summary>
    public static async Task<IReadOnlyList<FirewallRule>> FindTaggedAsync(this IChangeTarget target, string tag, CancellationToken ct) =>
        [.. (await target.FindAllTaggedAsync(ct).ConfigureAwait(false)).Where(r => r.Comment == tag)];
}

/// <summary>The dashboard's own host: iptables in this process.</summary>
public sealed class LocalChangeTarget(IptablesRuleWriter writer) : IChangeTarget
{
    public string? Host => null;

    public Task<RuleCommandResult> InsertAsync(ChangeRule rule, string tag, CancellationToken ct) => writer.InsertAsync(rule.ToSpec(tag), ct);

    public Task<RuleCommandResult> StageAsync(ChangeRule rule, string stagedTag, CancellationToken ct) => writer.InsertAsync(rule.ToStagedSpec(stagedTag), ct);

    public Task<RuleCommandResult> PromoteAsync(ChangeRule rule, string tag, CancellationToken ct) => StagedRules.PromoteAsync(writer, rule, tag, ct);

    public Task<IReadOnlyList<FirewallRule>> FindAllTaggedAsync(CancellationToken ct) => writer.FindAllTaggedAsync(ct);

    public Task<IReadOnlyList<RuleCommandResult>> DeleteTaggedAsync(string tag, CancellationToken ct) => writer.DeleteTaggedAsync(tag, ct);

    public async Task<RuleCommandResult?> DeleteOneAsync(FirewallRule rule, CancellationToken ct) => await writer.DeleteRuleAsync(rule, ct).ConfigureAwait(false);
}

/// <summary>
/// A host reached through its agent: each call is one <see cref="AgentProtocol.Step"/> with a deadline; the rules are
/// read as the tools print them and parsed here. A host gone is <see cref="HostUnavailableException"/>; a step the
/// agent refuses or the host fails is <see cref="ChangeStateException"/> naming the host.
/// </summary>
public sealed class AgentChangeTarget(string host, IAgentCommands agents) : IChangeTarget
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public string? Host => host;

    public async Task<RuleCommandResult> InsertAsync(ChangeRule rule, string tag, CancellationToken ct) =>
        (await StepAsync(new AgentStep(AgentStepAction.ChangeInsert, "", Tag: tag, Change: rule), ct).ConfigureAwait(false)).Rule
        ?? throw new ChangeStateException($"host '{host}' did not say what the insert did");

    public async Task<RuleCommandResult> StageAsync(ChangeRule rule, string stagedTag, CancellationToken ct) =>
        (await StepAsync(new AgentStep(AgentStepAction.ChangeStage, "", Tag: stagedTag, Change: rule), ct).ConfigureAwait(false)).Rule
        ?? throw new ChangeStateException($"host '{host}' did not say what the staging did");

    public async Task<RuleCommandResult> PromoteAsync(ChangeRule rule, string tag, CancellationToken ct) =>
        (await StepAsync(new AgentStep(AgentStepAction.ChangePromote, "", Tag: tag, Change: rule), ct).ConfigureAwait(false)).Rule
        ?? throw new ChangeStateException($"host '{host}' did not say what the promotion did");

    public async Task<IReadOnlyList<FirewallRule>> FindAllTaggedAsync(CancellationToken ct)
    {
        var firewall = (await StepAsync(new AgentStep(AgentStepAction.ReadFirewall, ""), ct).ConfigureAwait(false)).Firewall
            ?? throw new ChangeStateException($"host '{host}' sent no rules");
        try
        {
            return [.. firewall.Parse().Rules.Where(r => RuleTag.IsDashboardComment(r.Comment))];
        }
        catch (RulesetFormatException ex)
        {
            throw new ChangeStateException($"host '{host}' sent rules this dashboard cannot read: {ex.Message}");
        }
    }

    public async Task<IReadOnlyList<RuleCommandResult>> DeleteTaggedAsync(string tag, CancellationToken ct) =>
        (await StepAsync(new AgentStep(AgentStepAction.ChangeDeleteTagged, "", Tag: tag), ct).ConfigureAwait(false)).Rules ?? [];

    public async Task<RuleCommandResult?> DeleteOneAsync(FirewallRule rule, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(rule);
        return (await StepAsync(new AgentStep(AgentStepAction.ChangeDeleteOne, "", Tag: rule.Comment), ct).ConfigureAwait(false)).Rules?.FirstOrDefault();
    }

    private async Task<AgentStepReply> StepAsync(AgentStep step, CancellationToken ct)
    {
        var reply = await agents.StepAsync(host, step, Deadline, ct).ConfigureAwait(false);
        return (reply.Refused ?? reply.Failed) is { } problem ? throw new ChangeStateException($"host '{host}': {step.Action}: {problem}") : reply;
    }
}
