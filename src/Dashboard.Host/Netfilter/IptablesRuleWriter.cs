using Dashboard.Core.Changes;
using Dashboard.Core.Firewall;
using Dashboard.Host.Processes;
using Microsoft.Extensions.Options;

namespace Dashboard.Host.Netfilter;

/// <summary>The outcome of one iptables command, with the exact command line for the audit.</summary>
public sealed record RuleCommandResult(bool Succeeded, string CommandLine, string Message);

/// <summary>
/// Adds and removes the dashboard's own iptables rules. Every rule carries the dashboard's comment tag; removal finds
/// rules by that exact tag in a fresh read and deletes each by its full specification. It never flushes a chain, never
/// changes a policy and never touches a rule without the tag.
/// </summary>
public sealed class IptablesRuleWriter(IProcessRunner runner, IOptions<DockerHostOptions> options)
{
    private readonly DockerHostOptions _options = options.Value;

    public async Task<RuleCommandResult> InsertAsync(RuleSpec spec, CancellationToken ct = default)
    {
        var program = spec.IsIpv6 ? _options.Ip6tables : _options.Iptables;
        var args = spec.InsertArguments(_options.XtablesLockWaitSeconds);
        return await RunAsync(program, args, ct).ConfigureAwait(false);
    }

    /// <summary>Deletes every rule, in every table of both families, whose comment is exactly <paramref name="tag"/>.</summary>
    public Task<IReadOnlyList<RuleCommandResult>> DeleteTaggedAsync(string tag, CancellationToken ct = default)
    {
        if (!RuleTag.IsDashboardComment(tag))
        {
            throw new ArgumentException("only the dashboard's own tagged rules can be removed", nameof(tag));
        }

        return DeleteTaggedWhereAsync(comment => comment == tag, ct);
    }

    /// <summary>Deletes every rule carrying a dashboard tag that <paramref name="select"/> picks (rules without the dashboard's prefix are never offered).</summary>
    public async Task<IReadOnlyList<RuleCommandResult>> DeleteTaggedWhereAsync(Func<string, bool> select, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(select);
        var results = new List<RuleCommandResult>();
        foreach (var (save, program, family) in new[] { (_options.IptablesSave, _options.Iptables, TableFamily.Ipv4), (_options.Ip6tablesSave, _options.Ip6tables, TableFamily.Ipv6) })
        {
            var dump = await runner.RunAsync(save, ["-c"], _options.CommandTimeout, ct).ConfigureAwait(false);
            if (!dump.Succeeded || string.IsNullOrWhiteSpace(dump.StdOut))
            {
                continue;
            }

            var ruleset = IptablesSaveReader.Read(dump.StdOut, family);
            foreach (var rule in ruleset.Rules.Where(r => RuleTag.IsDashboardComment(r.Comment) && select(r.Comment!)).ToList())
            {
                var args = new List<string> { "-w", _options.XtablesLockWaitSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), "-t", rule.Table, "-D", rule.Chain };
                args.AddRange(IptablesSaveReader.SpecArguments(rule.Text));
                results.Add(await RunAsync(program, args, ct).ConfigureAwait(false));
            }
        }

        return results;
    }

    /// <summary>Deletes one dashboard-tagged rule by its full specification (iptables removes the first rule that matches it).</summary>
    public Task<RuleCommandResult> DeleteRuleAsync(FirewallRule rule, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(rule);
        if (!RuleTag.IsDashboardComment(rule.Comment))
        {
            throw new ArgumentException("only the dashboard's own tagged rules can be removed", nameof(rule));
        }

        var args = new List<string> { "-w", _options.XtablesLockWaitSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), "-t", rule.Table, "-D", rule.Chain };
        args.AddRange(IptablesSaveReader.SpecArguments(rule.Text));
        return RunAsync(rule.Family == TableFamily.Ipv6 ? _options.Ip6tables : _options.Iptables, args, ct);
    }

    /// <summary>
    /// Replaces a staged (counting) rule by the real one in one transaction: <c>iptables-restore --noflush</c> with the
    /// staged rule's delete (by its specification as iptables-save printed it) and the real rule's insert in the same
    /// table block, so no packet sees neither or both. Nothing else in the table is touched.
    /// </summary>
    public async Task<RuleCommandResult> ReplaceStagedAsync(RuleSpec staged, RuleSpec real, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(staged);
        ArgumentNullException.ThrowIfNull(real);
        string input;
        try
        {
            // Both lines from the dashboard's own validated specs, never from text read back from the host: a staged rule
            // someone altered there (a target added, another chain) does not match the delete, and the whole transaction fails.
            if (!staged.CountOnly || real.CountOnly || staged.Table != real.Table || staged.Chain != real.Chain || staged.IsIpv6 != real.IsIpv6)
            {
                return new RuleCommandResult(false, "", "a staged rule is replaced only by its own change's rule, in the same table and chain");
            }

            input = $"*{staged.Table}\n-D {staged.Chain} {string.Join(' ', staged.SpecArguments())}\n{real.RestoreLine()}\nCOMMIT\n";
        }
        catch (ArgumentException ex)
        {
            return new RuleCommandResult(false, "", "the rule cannot be written to iptables-restore: " + ex.Message);
        }

        var program = real.IsIpv6 ? _options.Ip6tablesRestore : _options.IptablesRestore;
        string[] args = ["-w", _options.XtablesLockWaitSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), "--noflush"];
        var line = CommandLine.Format(program, args) + " <<EOF\n" + input + "EOF";
        try
        {
            var r = await runner.RunAsync(program, args, input, _options.CommandTimeout, ct).ConfigureAwait(false);
            return new RuleCommandResult(r.Succeeded, line, r.Succeeded ? "ok" : $"exit code {r.ExitCode}: {r.Message}");
        }
        catch (ProcessFailedException ex)
        {
            return new RuleCommandResult(false, line, ex.Message);
        }
    }

    /// <summary>A fresh read of both families: every rule whose comment is exactly <paramref name="tag"/> (to verify an insert or a removal).</summary>
    public async Task<IReadOnlyList<FirewallRule>> FindTaggedAsync(string tag, CancellationToken ct = default) =>
        [.. (await FindAllTaggedAsync(ct).ConfigureAwait(false)).Where(r => r.Comment == tag)];

    /// <summary>A fresh read of both families: every rule carrying a dashboard tag.</summary>
    public async Task<IReadOnlyList<FirewallRule>> FindAllTaggedAsync(CancellationToken ct = default)
    {
        var found = new List<FirewallRule>();
        foreach (var (save, family) in new[] { (_options.IptablesSave, TableFamily.Ipv4), (_options.Ip6tablesSave, TableFamily.Ipv6) })
        {
            var dump = await runner.RunAsync(save, [], _options.CommandTimeout, ct).ConfigureAwait(false);
            if (!dump.Succeeded)
            {
                if (family == TableFamily.Ipv4)
                {
                    throw new FirewallUnavailableException($"{save} failed: {dump.Message}");
                }

                continue;
            }

            if (!string.IsNullOrWhiteSpace(dump.StdOut))
            {
                found.AddRange(IptablesSaveReader.Read(dump.StdOut, family).Rules.Where(r => RuleTag.IsDashboardComment(r.Comment)));
            }
        }

        return found;
    }

    private async Task<RuleCommandResult> RunAsync(string program, IReadOnlyList<string> args, CancellationToken ct)
    {
        var line = CommandLine.Format(program, args);
        try
        {
            var r = await runner.RunAsync(program, args, _options.CommandTimeout, ct).ConfigureAwait(false);
            return new RuleCommandResult(r.Succeeded, line, r.Succeeded ? "ok" : $"exit code {r.ExitCode}: {r.Message}");
        }
        catch (ProcessFailedException ex)
        {
            return new RuleCommandResult(false, line, ex.Message);
        }
    }
}
