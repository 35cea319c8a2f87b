using Dashboard.Core.Firewall;

namespace Dashboard.TestSupport;

/// <summary>Ruleset structures equal by chain, policy and rule keys and owners, in order.</summary>
public sealed class ShapeComparer : IEqualityComparer<RulesetShape?>
{
    public static readonly ShapeComparer Instance = new();

    public bool Equals(RulesetShape? x, RulesetShape? y) => x is null || y is null ? ReferenceEquals(x, y) : Describe(x) == Describe(y);

    public int GetHashCode(RulesetShape? obj) => obj is null ? 0 : Describe(obj).GetHashCode(StringComparison.Ordinal);

    public static string Describe(RulesetShape s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return string.Join("\n", s.Chains
            .OrderBy(c => (c.Family, c.Table, c.Chain).ToString(), StringComparer.Ordinal)
            .Select(c => $"{c.Family} {c.Table} {c.Chain} {c.Policy}: " + string.Join(" | ", c.Rules.Select(r => $"{r.Key}={r.Owner}"))));
    }
}
