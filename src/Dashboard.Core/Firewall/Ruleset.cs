namespace Dashboard.Core.Firewall;

/// <summary>Which text a ruleset was read from.</summary>
public enum RulesetFormat
{
    IptablesSave,
    NftJson,
}

/// <summary>Address family of a table (iptables: IPv4 or IPv6; nftables adds inet, bridge, arp, netdev).</summary>
public enum TableFamily
{
    Ipv4,
    Ipv6,
    Inet,
    Bridge,
    Arp,
    Netdev,
}

/// <summary>Who put a rule on the host.</summary>
public enum RuleOwner
{
    /// <summary>Created by the Docker engine.</summary>
    Docker,

    /// <summary>Added by someone else (an administrator, a script, a firewall manager).</summary>
    User,

    /// <summary>Added by this dashboard; carries its comment tag.</summary>
    Dashboard,
}

/// <summary>
/// One match of a rule as (module, option, negated, value): <c>-m conntrack --ctstate RELATED,ESTABLISHED</c>
/// is ("conntrack", "--ctstate", false, "RELATED,ESTABLISHED"); <c>! -o br-1</c> is ("", "-o", true, "br-1").
/// For nftables the option is the left-hand expression (<c>meta iifname</c>, <c>ip daddr</c>) and the module is empty.
/// </summary>
public readonly record struct RuleMatch(string Module, string Option, bool Negated, string? Value)
{
    public override string ToString()
    {
        var neg = Negated ? "! " : "";
        return Value is null ? $"{neg}{Option}" : $"{neg}{Option} {Value}";
    }
}

/// <summary>A rule as read from the host, with its counters and its place in the chain.</summary>
public sealed class FirewallRule
{
    public required TableFamily Family { get; init; }
    public required string Table { get; init; }
    public required string Chain { get; init; }

    /// <summary>1-based position in its chain, as <c>iptables -L --line-numbers</c> shows it.</summary>
    public required int Position { get; init; }

    public required ulong Packets { get; init; }
    public required ulong Bytes { get; init; }

    /// <summary>True when the source carried counters for this rule (iptables-save -c, nft counter expression).</summary>
    public required bool HasCounters { get; init; }

    public required IReadOnlyList<RuleMatch> Matches { get; init; }

    /// <summary>ACCEPT, DROP, a chain name, MASQUERADE...; nftables: accept, drop, jump, goto, return, vmap...; null when the rule has no verdict.</summary>
    public string? Target { get; init; }

    /// <summary>For a jump or goto, the chain it enters; for a verdict map, the chains it may enter.</summary>
    public IReadOnlyList<string> JumpChains { get; init; } = [];

    public required IReadOnlyList<RuleMatch> TargetOptions { get; init; }

    public string? Comment { get; init; }

    /// <summary>The line as the host printed it (iptables-save), or the rule rendered in nft syntax.</summary>
    public required string Text { get; init; }

    /// <summary>The rule's identity within its chain: its content without counters, plus an occurrence suffix for duplicates.
    /// Positions move when rules are inserted; this key does not.</summary>
    public required string Key { get; init; }

    /// <summary>nftables handle, when read from nft.</summary>
    public long? Handle { get; init; }

    /// <summary>1-based source line number (iptables-save) of the rule.</summary>
    public int? Line { get; init; }

    public RuleOwner Owner { get; set; } = RuleOwner.User;

    /// <summary>Interfaces this rule names that are bridges (known Docker bridges, or by Docker's naming when no topology is known).</summary>
    public IReadOnlyList<string> Bridges { get; set; } = [];

    /// <summary>Names of the Docker networks this rule concerns (by bridge or by address), when a topology is known.</summary>
    public IReadOnlyList<string> Networks { get; set; } = [];

    /// <summary>True for <c>-g</c>/<c>goto</c>: the chain is entered without a return to this one.</summary>
    public bool IsGoto { get; init; }

    /// <summary>The first match with this option (e.g. "-o"), or null.</summary>
    public RuleMatch? Find(string option)
    {
        foreach (var m in Matches)
        {
            if (m.Option == option)
            {
                return m;
            }
        }

        return null;
    }

    /// <summary>The value of the first match with this option, or null.</summary>
    public string? FindValue(string option) => Find(option)?.Value;

    public override string ToString() => $"{Table} {Chain} #{Position}: {Text}";
}

/// <summary>A chain with its policy (built-in chains) and rules in order.</summary>
public sealed class FirewallChain
{
    public required string Name { get; init; }

    /// <summary>ACCEPT/DROP for built-in iptables chains and nftables base chains; null for user chains.</summary>
    public string? Policy { get; init; }

    public ulong PolicyPackets { get; init; }
    public ulong PolicyBytes { get; init; }

    /// <summary>nftables base chain hook (prerouting, forward...); iptables built-in chains get their hook by name.</summary>
    public string? Hook { get; init; }

    /// <summary>nftables base chain type (filter, nat, route).</summary>
    public string? Type { get; init; }

    /// <summary>nftables base chain priority.</summary>
    public int? Priority { get; init; }

    public required IReadOnlyList<FirewallRule> Rules { get; init; }

    public bool IsBuiltin => Policy is not null;
}

/// <summary>A table (filter, nat, raw... or an nftables table) and its chains in the order the host listed them.</summary>
public sealed class FirewallTable
{
    public required TableFamily Family { get; init; }
    public required string Name { get; init; }
    public required IReadOnlyList<FirewallChain> Chains { get; init; }

    /// <summary>nftables named sets and maps (name → elements as text), e.g. Docker 29's interface verdict maps.</summary>
    public IReadOnlyDictionary<string, NftSet> Sets { get; init; } = new Dictionary<string, NftSet>();

    public FirewallChain? FindChain(string name) => Chains.FirstOrDefault(c => c.Name == name);

    public IEnumerable<FirewallRule> Rules => Chains.SelectMany(c => c.Rules);
}

/// <summary>An nftables set or map: its elements as text; for a verdict map, each key's verdict.</summary>
public sealed record NftSet(string Name, string Type, string? MapType, IReadOnlyList<NftSetElement> Elements);

public sealed record NftSetElement(string Key, string? Verdict, string? Chain);

/// <summary>Everything read from one dump: all tables of all families present.</summary>
public sealed class Ruleset
{
    public required RulesetFormat Format { get; init; }
    public required IReadOnlyList<FirewallTable> Tables { get; init; }

    /// <summary>What produced the dump (e.g. <c>iptables-save v1.8.9 (nf_tables)</c>, <c>nftables v1.0.6</c>), when it says.</summary>
    public string? Generator { get; init; }

    public FirewallTable? FindTable(string name, TableFamily family = TableFamily.Ipv4) =>
        Tables.FirstOrDefault(t => t.Name == name && t.Family == family);

    public IEnumerable<FirewallRule> Rules => Tables.SelectMany(t => t.Rules);

    public int RuleCount => Tables.Sum(t => t.Chains.Sum(c => c.Rules.Count));
}
