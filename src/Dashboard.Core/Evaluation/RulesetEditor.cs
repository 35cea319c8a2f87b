using System.Globalization;
using System.Text;
using Dashboard.Core.Changes;
using Dashboard.Core.Firewall;

namespace Dashboard.Core.Evaluation;

/// <summary>A proposed rule cannot be placed in this ruleset: why.</summary>
public sealed class WhatIfException(string message) : Exception(message);

/// <summary>Produces the ruleset as it would be with a proposed rule (for what-if matrices), without touching the host.</summary>
public static class RulesetEditor
{
    /// <summary>The ruleset with <paramref name="spec"/> inserted where iptables would put it (its position, or appended).</summary>
    public static Ruleset WithRule(Ruleset ruleset, RuleSpec spec)
    {
        ArgumentNullException.ThrowIfNull(ruleset);
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Validate() is { Count: > 0 } errors)
        {
            throw new WhatIfException(string.Join("; ", errors.Select(e => $"{e.Key}: {e.Value}")));
        }

        if (ruleset.Format != RulesetFormat.IptablesSave)
        {
            throw new WhatIfException("a proposed iptables rule can only be tried on an iptables ruleset (this host's firewall is nftables)");
        }

        if (spec.IsIpv6)
        {
            throw new WhatIfException("the matrix is IPv4; an IPv6 rule does not change it");
        }

        var table = ruleset.FindTable(spec.Table) ?? throw new WhatIfException($"table {spec.Table} is not in the ruleset");
        var chain = table.FindChain(spec.Chain) ?? throw new WhatIfException($"chain {spec.Chain} does not exist in table {spec.Table}");
        if (spec.Position is { } p && p > chain.Rules.Count + 1)
        {
            throw new WhatIfException($"chain {spec.Chain} has {chain.Rules.Count} rules: insert at 1-{chain.Rules.Count + 1}");
        }

        var line = "-A " + spec.Chain + " " + string.Join(' ', spec.SpecArguments());
        var sb = new StringBuilder();
        foreach (var t in ruleset.Tables.Where(t => t.Family == TableFamily.Ipv4))
        {
            sb.Append('*').Append(t.Name).Append('\n');
            foreach (var c in t.Chains)
            {
                sb.Append(':').Append(c.Name).Append(' ').Append(c.Policy ?? "-").Append(" [0:0]\n");
            }

            foreach (var c in t.Chains)
            {
                var inserted = false;
                for (var i = 0; i < c.Rules.Count; i++)
                {
                    if (t == table && c == chain && spec.Position == i + 1)
                    {
                        sb.Append(line).Append('\n');
                        inserted = true;
                    }

                    sb.Append(c.Rules[i].Text).Append('\n');
                }

                if (t == table && c == chain && !inserted)
                {
                    sb.Append(line).Append('\n');
                }
            }

            sb.Append("COMMIT\n");
        }

        try
        {
            var edited = IptablesSaveReader.Read(sb.ToString(), TableFamily.Ipv4);
            return new Ruleset { Format = ruleset.Format, Generator = ruleset.Generator, Tables = [.. edited.Tables, .. ruleset.Tables.Where(t => t.Family != TableFamily.Ipv4)] };
        }
        catch (RulesetFormatException ex)
        {
            throw new WhatIfException(string.Create(CultureInfo.InvariantCulture, $"the proposed rule does not read back: {ex.Message}"));
        }
    }
}
