namespace Dashboard.Core.Firewall;

/// <summary>A rule as the history keeps it: its identity in the chain, its text, who put it there (counters aside).</summary>
public sealed record ShapeRule(string Key, string Text, RuleOwner Owner, string? Comment);

/// <summary>A chain's policy and rules in order, counters aside.</summary>
public sealed record ShapeChain(TableFamily Family, string Table, string Chain, string? Policy, IReadOnlyList<ShapeRule> Rules);

/// <summary>
/// A ruleset's structure without counters: what the firewall history compares between two reads, keeps as checkpoints
/// and rebuilds for any moment by replaying the changes recorded after a checkpoint.
/// </summary>
public sealed record RulesetShape(IReadOnlyList<ShapeChain> Chains)
{
    public static RulesetShape Empty { get; } = new([]);

    public int RuleCount => Chains.Sum(c => c.Rules.Count);

    public static RulesetShape Of(Ruleset ruleset)
    {
        ArgumentNullException.ThrowIfNull(ruleset);
        var chains = new List<ShapeChain>();
        foreach (var t in ruleset.Tables)
        {
            foreach (var c in t.Chains)
            {
                var rules = new ShapeRule[c.Rules.Count];
                for (var i = 0; i < rules.Length; i++)
                {
                    var r = c.Rules[i];
                    rules[i] = new ShapeRule(r.Key, r.Text, r.Owner, r.Comment);
                }

                chains.Add(new ShapeChain(t.Family, t.Name, c.Name, c.Policy, rules));
            }
        }

        return new RulesetShape(chains);
    }
}

public enum RuleChangeKind
{
    /// <summary>A rule that was not in the chain is.</summary>
    Added,

    /// <summary>A rule that was in the chain is not.</summary>
    Removed,

    /// <summary>A rule still in the chain whose order relative to the others changed (rules only shifted by an insert above them are not moved).</summary>
    Moved,

    ChainAdded,
    ChainRemoved,
    PolicyChanged,
}

/// <summary>
/// One structural change between two reads. Positions are 1-based: <see cref="PositionBefore"/> in the chain as it was,
/// <see cref="PositionAfter"/> in the chain as it is (what <see cref="RulesetChanges.Apply"/> needs to rebuild it).
/// </summary>
public sealed record RuleChange(
    RuleChangeKind Kind,
    TableFamily Family,
    string Table,
    string Chain,
    string? Key = null,
    string? Text = null,
    RuleOwner? Owner = null,
    string? Comment = null,
    int? PositionBefore = null,
    int? PositionAfter = null,
    string? PolicyBefore = null,
    string? PolicyAfter = null)
{
    /// <summary>The change as one line: <c>+ filter DOCKER-USER #1: -A DOCKER-USER -j ACCEPT</c>.</summary>
    public override string ToString() => Line(Kind, Table, Chain, Text, PositionBefore, PositionAfter, PolicyBefore, PolicyAfter);

    /// <summary>A change as one line, from its fields (what the history's records and alerts show too).</summary>
    public static string Line(RuleChangeKind kind, string table, string chain, string? text, int? positionBefore, int? positionAfter, string? policyBefore, string? policyAfter) => kind switch
    {
        RuleChangeKind.Added => $"+ {table} {chain} #{positionAfter}: {text}",
        RuleChangeKind.Removed => $"- {table} {chain} #{positionBefore}: {text}",
        RuleChangeKind.Moved => $"~ {table} {chain} #{positionBefore}→#{positionAfter}: {text}",
        RuleChangeKind.ChainAdded => $"+ chain {table} {chain}",
        RuleChangeKind.ChainRemoved => $"- chain {table} {chain}",
        _ => $"~ policy {table} {chain}: {policyBefore} → {policyAfter}",
    };
}

/// <summary>Structural differences between rulesets, and their replay.</summary>
public static class RulesetChanges
{
    /// <summary>
    /// What changed from <paramref name="before"/> to <paramref name="after"/>, chain by chain in the order of
    /// <paramref name="after"/> (chains gone last). Rules are matched by their key (content and occurrence); the rules kept
    /// in place are the longest run in the same relative order, so an insert at the head moves nothing and only rules
    /// whose order changed are reported moved.
    /// </summary>
    public static IReadOnlyList<RuleChange> Compare(RulesetShape before, RulesetShape after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        var changes = new List<RuleChange>();
        var old = new Dictionary<(TableFamily, string, string), ShapeChain>();
        foreach (var c in before.Chains)
        {
            old.TryAdd((c.Family, c.Table, c.Chain), c);
        }

        var seen = new HashSet<(TableFamily, string, string)>();
        foreach (var c in after.Chains)
        {
            var id = (c.Family, c.Table, c.Chain);
            if (!seen.Add(id))
            {
                continue;
            }

            if (!old.TryGetValue(id, out var was))
            {
                changes.Add(new RuleChange(RuleChangeKind.ChainAdded, c.Family, c.Table, c.Chain, PolicyAfter: c.Policy));
                for (var i = 0; i < c.Rules.Count; i++)
                {
                    changes.Add(Added(c, c.Rules[i], i + 1));
                }

                continue;
            }

            if (was.Policy != c.Policy)
            {
                changes.Add(new RuleChange(RuleChangeKind.PolicyChanged, c.Family, c.Table, c.Chain, PolicyBefore: was.Policy, PolicyAfter: c.Policy));
            }

            CompareRules(was, c, changes);
        }

        foreach (var c in before.Chains)
        {
            if (seen.Add((c.Family, c.Table, c.Chain)))
            {
                for (var i = 0; i < c.Rules.Count; i++)
                {
                    changes.Add(Removed(c, c.Rules[i], i + 1));
                }

                changes.Add(new RuleChange(RuleChangeKind.ChainRemoved, c.Family, c.Table, c.Chain, PolicyBefore: c.Policy));
            }
        }

        return changes;
    }

    private static RuleChange Added(ShapeChain c, ShapeRule r, int position) =>
        new(RuleChangeKind.Added, c.Family, c.Table, c.Chain, r.Key, r.Text, r.Owner, r.Comment, PositionAfter: position);

    private static RuleChange Removed(ShapeChain c, ShapeRule r, int position) =>
        new(RuleChangeKind.Removed, c.Family, c.Table, c.Chain, r.Key, r.Text, r.Owner, r.Comment, PositionBefore: position);

    private static void CompareRules(ShapeChain was, ShapeChain now, List<RuleChange> changes)
    {
        // Fast path: the same rules in the same order (a reclassification or another chain's change).
        if (was.Rules.Count == now.Rules.Count)
        {
            var same = true;
            for (var i = 0; i < was.Rules.Count && same; i++)
            {
                same = was.Rules[i].Key == now.Rules[i].Key;
            }

            if (same)
            {
                return;
            }
        }

        var newIndex = new Dictionary<string, int>(now.Rules.Count, StringComparer.Ordinal);
        for (var j = 0; j < now.Rules.Count; j++)
        {
            newIndex.TryAdd(now.Rules[j].Key, j);
        }

        var oldKeys = new HashSet<string>(StringComparer.Ordinal);
        var common = new List<(int Old, int New)>();
        for (var i = 0; i < was.Rules.Count; i++)
        {
            var key = was.Rules[i].Key;
            oldKeys.Add(key);
            if (newIndex.TryGetValue(key, out var j))
            {
                common.Add((i, j));
            }
            else
            {
                changes.Add(Removed(was, was.Rules[i], i + 1));
            }
        }

        // Keys are unique in a chain, so the longest common subsequence of the two orders is the longest increasing run of
        // new positions taken in old order (patience sorting, n log n): everything off it moved.
        var kept = LongestIncreasing(common);
        for (var k = 0; k < common.Count; k++)
        {
            if (!kept.Contains(k))
            {
                var (i, j) = common[k];
                var r = now.Rules[j];
                changes.Add(new RuleChange(RuleChangeKind.Moved, now.Family, now.Table, now.Chain, r.Key, r.Text, r.Owner, r.Comment, i + 1, j + 1));
            }
        }

        for (var j = 0; j < now.Rules.Count; j++)
        {
            if (!oldKeys.Contains(now.Rules[j].Key))
            {
                changes.Add(Added(now, now.Rules[j], j + 1));
            }
        }
    }

    /// <summary>Indices into <paramref name="pairs"/> of a longest run whose New values increase.</summary>
    private static HashSet<int> LongestIncreasing(List<(int Old, int New)> pairs)
    {
        var tails = new List<int>(); // index into pairs of the smallest tail of each run length
        var previous = new int[pairs.Count];
        for (var k = 0; k < pairs.Count; k++)
        {
            var v = pairs[k].New;
            int lo = 0, hi = tails.Count;
            while (lo < hi)
            {
                var mid = (lo + hi) / 2;
                if (pairs[tails[mid]].New < v)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            previous[k] = lo > 0 ? tails[lo - 1] : -1;
            if (lo == tails.Count)
            {
                tails.Add(k);
            }
            else
            {
                tails[lo] = k;
            }
        }

        var kept = new HashSet<int>();
        for (var k = tails.Count > 0 ? tails[^1] : -1; k >= 0; k = previous[k])
        {
            kept.Add(k);
        }

        return kept;
    }

    /// <summary>
    /// Rebuilds the ruleset one read's changes lead to: rules removed and moved are taken out, then rules added and moved
    /// are put at their positions in ascending order (the rules kept keep their relative order, so this is exact).
    /// </summary>
    public static RulesetShape Apply(RulesetShape shape, IEnumerable<RuleChange> changes)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(changes);
        var byChain = changes.GroupBy(c => (c.Family, c.Table, c.Chain)).ToDictionary(g => g.Key, g => g.ToList());
        if (byChain.Count == 0)
        {
            return shape;
        }

        var chains = new List<ShapeChain>(shape.Chains.Count);
        foreach (var c in shape.Chains)
        {
            var id = (c.Family, c.Table, c.Chain);
            if (!byChain.Remove(id, out var list))
            {
                chains.Add(c);
                continue;
            }

            if (list.Any(x => x.Kind == RuleChangeKind.ChainRemoved))
            {
                continue;
            }

            chains.Add(ApplyToChain(c, list));
        }

        // Chains that appear (in the order their first change was recorded).
        foreach (var (id, list) in byChain)
        {
            if (list.Any(x => x.Kind == RuleChangeKind.ChainRemoved))
            {
                continue;
            }

            var policy = list.FirstOrDefault(x => x.Kind == RuleChangeKind.ChainAdded)?.PolicyAfter;
            chains.Add(ApplyToChain(new ShapeChain(id.Family, id.Table, id.Chain, policy, []), list));
        }

        return new RulesetShape(chains);
    }

    private static ShapeChain ApplyToChain(ShapeChain c, List<RuleChange> list)
    {
        var taken = new HashSet<string>(list.Where(x => x.Kind is RuleChangeKind.Removed or RuleChangeKind.Moved && x.Key is not null).Select(x => x.Key!), StringComparer.Ordinal);
        var rules = new List<ShapeRule>(c.Rules.Count + list.Count);
        foreach (var r in c.Rules)
        {
            if (!taken.Contains(r.Key))
            {
                rules.Add(r);
            }
        }

        foreach (var x in list.Where(x => x.Kind is RuleChangeKind.Added or RuleChangeKind.Moved && x.Key is not null).OrderBy(x => x.PositionAfter ?? int.MaxValue))
        {
            var at = Math.Clamp((x.PositionAfter ?? int.MaxValue) - 1, 0, rules.Count);
            rules.Insert(at, new ShapeRule(x.Key!, x.Text ?? x.Key!, x.Owner ?? RuleOwner.User, x.Comment));
        }

        var policy = list.LastOrDefault(x => x.Kind == RuleChangeKind.PolicyChanged) is { } p ? p.PolicyAfter : c.Policy;
        return c with { Policy = policy, Rules = rules };
    }
}

/// <summary>Who changed the firewall.</summary>
public enum ChangeCause
{
    /// <summary>The Docker engine (a rule of Docker's shape seen while the engine's networks or containers changed).</summary>
    Docker,

    /// <summary>This dashboard: the rule carries its tag (a change, a run, a trace, a staged rule).</summary>
    Dashboard,

    /// <summary>Anyone else: an administrator, a script, a firewall manager.</summary>
    Outside,

    /// <summary>Changed while the dashboard was not reading the host (seen at its next start); who did it is not known.</summary>
    Unobserved,
}

/// <summary>Attributing a change to its cause.</summary>
public static class ChangeAttribution
{
    /// <summary>The dashboard's own: the rule carries its tag; the detail is the owner the tag names (<c>change-…</c>, <c>run-…</c>).</summary>
    public static string? DashboardOwner(RuleChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        return RuleTag.IsDashboardComment(change.Comment) ? change.Comment![RuleTag.Prefix.Length..] : null;
    }

    /// <summary>Whether the change could be Docker's: a rule Docker's shape, or a chain of Docker's name, changed.</summary>
    public static bool CouldBeDocker(RuleChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        return change.Kind switch
        {
            RuleChangeKind.Added or RuleChangeKind.Removed or RuleChangeKind.Moved => change.Owner == RuleOwner.Docker,
            _ => change.Chain.StartsWith("DOCKER", StringComparison.Ordinal) || change.Table == "docker-bridges"
                || (change.Kind == RuleChangeKind.PolicyChanged && change.Chain == "FORWARD" && change.Table == "filter"),
        };
    }

    /// <summary>Whether the change's rule text or chain names <paramref name="token"/> (a bridge, a subnet, an address) as a whole word.</summary>
    public static bool Names(RuleChange change, string token)
    {
        ArgumentNullException.ThrowIfNull(change);
        return !string.IsNullOrEmpty(token) && (ContainsWord(change.Text, token) || ContainsWord(change.Chain, token));
    }

    /// <summary>Whether the rule names an IPv4 or IPv6 address or prefix.</summary>
    public static bool NamesAddress(RuleChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        var text = change.Text;
        if (text is null)
        {
            return false;
        }

        foreach (var word in text.Split([' ', '"', ','], StringSplitOptions.RemoveEmptyEntries))
        {
            var w = word.Split('/')[0];
            var colon = w.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && w.Count(ch => ch == ':') == 1)
            {
                w = w[..colon]; // 172.18.0.2:80 (a DNAT target)
            }

            if (w.Length >= 2 && (w.Contains('.', StringComparison.Ordinal) || w.Contains(':', StringComparison.Ordinal)) && System.Net.IPAddress.TryParse(w, out _))
            {
                return true;
            }
        }

        return false;
    }

    private static bool ContainsWord(string? text, string token)
    {
        if (text is null)
        {
            return false;
        }

        for (var i = text.IndexOf(token, StringComparison.Ordinal); i >= 0; i = text.IndexOf(token, i + 1, StringComparison.Ordinal))
        {
            var before = i == 0 ? ' ' : text[i - 1];
            var end = i + token.Length;
            var after = end >= text.Length ? ' ' : text[end];
            if (!char.IsAsciiLetterOrDigit(before) && before is not '.' and not '-' && !char.IsAsciiLetterOrDigit(after) && after is not '.' and not '-' and not '_')
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Whether a rule not of Docker's shape names a Docker-looking bridge (<c>docker0</c>, <c>br-</c> + 12 hex): read before
    /// the topology knew its network, Docker's own rule is not yet recognised as Docker's, so its cause waits for the
    /// engine's activity or its window's end.
    /// </summary>
    public static bool NamesDockerLikeBridge(RuleChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        var text = change.Text;
        if (text is null)
        {
            return false;
        }

        if (text.Contains("docker0", StringComparison.Ordinal))
        {
            return true;
        }

        for (var i = text.IndexOf("br-", StringComparison.Ordinal); i >= 0; i = text.IndexOf("br-", i + 3, StringComparison.Ordinal))
        {
            var n = 0;
            while (i + 3 + n < text.Length && char.IsAsciiHexDigitLower(text[i + 3 + n]))
            {
                n++;
            }

            if (n == 12)
            {
                return true;
            }
        }

        return false;
    }
}
