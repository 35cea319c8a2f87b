namespace Dashboard.Core.Firewall;

/// <summary>A rule's identity: table and chain, and its content within the chain (never its position, which moves).</summary>
public readonly record struct RuleId(TableFamily Family, string Table, string Chain, string Key)
{
    public static RuleId Of(FirewallRule r) => new(r.Family, r.Table, r.Chain, r.Key);

    public override string ToString() => $"{Table}/{Chain}/{Key}";
}

/// <summary>One rule whose counters moved between two reads.</summary>
public sealed record RuleCounterChange(RuleId Id, int Position, ulong Packets, ulong Bytes, ulong DeltaPackets, ulong DeltaBytes, bool Reset);

/// <summary>A chain policy counter that moved (packets that fell off the end of a built-in chain).</summary>
public sealed record PolicyCounterChange(TableFamily Family, string Table, string Chain, ulong Packets, ulong Bytes, ulong DeltaPackets);

/// <summary>What changed between two reads: counters that moved, and rules that appeared or disappeared.</summary>
public sealed record RulesetDiff(
    IReadOnlyList<RuleCounterChange> Counters,
    IReadOnlyList<PolicyCounterChange> Policies,
    IReadOnlyList<RuleId> Added,
    IReadOnlyList<RuleId> Removed,
    bool PositionsMoved)
{
    public bool StructureChanged => Added.Count > 0 || Removed.Count > 0 || PositionsMoved;

    public bool IsEmpty => Counters.Count == 0 && Policies.Count == 0 && !StructureChanged;
}

/// <summary>Diffs two reads of the same host, rule by rule, keyed by <see cref="RuleId"/>.</summary>
public static class CounterDelta
{
    public static RulesetDiff Compare(Ruleset? previous, Ruleset current)
    {
        var before = new Dictionary<RuleId, FirewallRule>();
        var policiesBefore = new Dictionary<(TableFamily, string, string), FirewallChain>();
        if (previous is not null)
        {
            foreach (var t in previous.Tables)
            {
                foreach (var c in t.Chains)
                {
                    policiesBefore[(t.Family, t.Name, c.Name)] = c;
                    foreach (var r in c.Rules)
                    {
                        before[RuleId.Of(r)] = r;
                    }
                }
            }
        }

        var counters = new List<RuleCounterChange>();
        var policies = new List<PolicyCounterChange>();
        var added = new List<RuleId>();
        var moved = false;
        var seen = new HashSet<RuleId>();
        foreach (var t in current.Tables)
        {
            foreach (var c in t.Chains)
            {
                if (c.IsBuiltin && policiesBefore.TryGetValue((t.Family, t.Name, c.Name), out var pc) && pc.PolicyPackets != c.PolicyPackets)
                {
                    policies.Add(new PolicyCounterChange(t.Family, t.Name, c.Name, c.PolicyPackets, c.PolicyBytes,
                        c.PolicyPackets >= pc.PolicyPackets ? c.PolicyPackets - pc.PolicyPackets : c.PolicyPackets));
                }

                foreach (var r in c.Rules)
                {
                    var id = RuleId.Of(r);
                    seen.Add(id);
                    if (!before.TryGetValue(id, out var old))
                    {
                        if (previous is not null)
                        {
                            added.Add(id);
                        }

                        continue;
                    }

                    moved |= old.Position != r.Position;
                    if (old.Packets == r.Packets && old.Bytes == r.Bytes)
                    {
                        continue;
                    }

                    // Counters only fall when they were zeroed (iptables -Z) or the rule was replaced: the new value is the delta.
                    var reset = r.Packets < old.Packets || r.Bytes < old.Bytes;
                    counters.Add(new RuleCounterChange(id, r.Position, r.Packets, r.Bytes,
                        reset ? r.Packets : r.Packets - old.Packets,
                        reset ? r.Bytes : r.Bytes - old.Bytes,
                        reset));
                }
            }
        }

        var removed = before.Keys.Where(k => !seen.Contains(k)).ToList();
        return new RulesetDiff(counters, policies, added, removed, moved);
    }
}
