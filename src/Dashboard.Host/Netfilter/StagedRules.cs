using Dashboard.Core.Changes;

namespace Dashboard.Host.Netfilter;

/// <summary>
/// A staged change: its rule's match with no target (it only counts), tagged <c>netlab:change-INSTANCE-ID-staged</c>,
/// until approval replaces it by the real rule in one <c>iptables-restore</c> transaction.
/// </summary>
public static class StagedRules
{
    public const string Suffix = "-staged";

    /// <summary>The staged rule's tag for a change's tag.</summary>
    public static string TagOf(string changeTag) => changeTag + Suffix;

    public static bool IsStaged(string? comment) => comment is not null && comment.EndsWith(Suffix, StringComparison.Ordinal);

    /// <summary>Finds the change's staged rule in a fresh read and replaces it by the real one; a result that failed says why when there is not exactly one.</summary>
    public static async Task<RuleCommandResult> PromoteAsync(IptablesRuleWriter writer, ChangeRule rule, string tag, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(rule);
        var stagedSpec = rule.ToStagedSpec(TagOf(tag));
        var staged = await writer.FindTaggedAsync(TagOf(tag), ct).ConfigureAwait(false);
        return staged.Count != 1 ? new RuleCommandResult(false, "", staged.Count == 0 ? "the staged rule is no longer on the host (removed outside the dashboard)" : $"the staged rule is on the host {staged.Count} times")
            : staged[0].Target is not null || staged[0].JumpChains.Count > 0 || staged[0].Chain != stagedSpec.Chain || staged[0].Table != stagedSpec.Table
                ? new RuleCommandResult(false, "", $"the staged rule was changed on the host (now {staged[0].Table} {staged[0].Chain}: {staged[0].Text})")
            : await writer.ReplaceStagedAsync(stagedSpec, rule.ToSpec(tag), ct).ConfigureAwait(false);
    }
}
