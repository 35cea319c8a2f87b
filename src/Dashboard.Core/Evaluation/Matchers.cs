using System.Globalization;
using Dashboard.Core.Firewall;

namespace Dashboard.Core.Evaluation;

internal enum Tri
{
    False,
    True,
    Unknown,
}

/// <summary>The packet as the rules see it at one point of its path.</summary>
internal sealed class Packet
{
    public string In = "";

    /// <summary>The output interface once routing has chosen it (empty in PREROUTING, as in the kernel).</summary>
    public string Out = "";

    /// <summary>Where the flow says the packet is routed out.</summary>
    public string PlannedOut = "";
    public uint Source;
    public uint Destination;
    public int Protocol;
    public int SourcePort;
    public int DestinationPort;
    public int IcmpType;

    /// <summary>NEW, ESTABLISHED or UNTRACKED (after NOTRACK / CT --notrack in raw).</summary>
    public string State = "NEW";

    public bool Dnatted;
    public bool Snatted;

    public Packet Clone() => (Packet)MemberwiseClone();

    public static int ProtocolNumber(string name) => name.ToLowerInvariant() switch
    {
        "icmp" or "1" => 1,
        "tcp" or "6" => 6,
        "udp" or "17" => 17,
        "all" or "0" => 0,
        _ => int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : -1,
    };

    public static string ProtocolName(int n) => n switch { 1 => "icmp", 6 => "tcp", 17 => "udp", _ => n.ToString(CultureInfo.InvariantCulture) };
}

/// <summary>One condition of a rule, compiled once per ruleset.</summary>
internal abstract class Matcher(string text)
{
    public string Text { get; } = text;

    public abstract Tri Test(Packet p, EvaluationContext c);

    /// <summary>Why the match is false or unknown for this packet (only asked when the path is recorded).</summary>
    public abstract string? Why(Packet p, EvaluationContext c);

    protected static Tri Of(bool value, bool negated) => value != negated ? Tri.True : Tri.False;

    /// <summary>
    /// Whether, when this match cannot be decided, the evaluator may try both answers: true where the answer says
    /// nothing else about the packet (a set's members, a module it does not read); false where it would also change
    /// how the packet is routed (whether an address is the host's own).
    /// </summary>
    public virtual bool MayAssume => true;
}

internal sealed class InterfaceMatcher(string text, bool output, IReadOnlyList<string> names, bool negated) : Matcher(text)
{
    private readonly string[] _names = [.. names];

    public bool Output { get; } = output;

    /// <summary>The one literal name this matcher requires (no wildcard, not negated), for indexing.</summary>
    public string? Literal { get; } = !negated && names.Count == 1 && !IsWildcard(names[0]) ? names[0] : null;

    private static bool IsWildcard(string n) => n.EndsWith('+') || n.EndsWith('*');

    public override Tri Test(Packet p, EvaluationContext c)
    {
        var actual = Output ? p.Out : p.In;
        var hit = false;
        foreach (var n in _names)
        {
            if (IsWildcard(n) ? actual.StartsWith(n[..^1], StringComparison.Ordinal) : actual == n)
            {
                hit = true;
                break;
            }
        }

        return Of(hit, negated);
    }

    public override string? Why(Packet p, EvaluationContext c)
    {
        var actual = Output ? p.Out : p.In;
        return $"{(Output ? "out" : "in")} interface is {(actual.Length == 0 ? "not yet chosen" : actual)}";
    }
}

internal sealed class AddressMatcher(string text, bool destination, IReadOnlyList<(uint Network, uint Mask)> prefixes, bool negated) : Matcher(text)
{
    private readonly (uint Network, uint Mask)[] _prefixes = [.. prefixes];

    public bool Destination => destination;

    public bool Negated => negated;

    /// <summary>The single prefix, when there is one (for the pre-check).</summary>
    public (uint Network, uint Mask)? Single => _prefixes.Length == 1 ? _prefixes[0] : null;

    public override Tri Test(Packet p, EvaluationContext c)
    {
        var a = destination ? p.Destination : p.Source;
        foreach (var (net, mask) in _prefixes)
        {
            if ((a & mask) == net)
            {
                return negated ? Tri.False : Tri.True;
            }
        }

        return negated ? Tri.True : Tri.False;
    }

    public override string? Why(Packet p, EvaluationContext c) => $"{(destination ? "destination" : "source")} is {Ipv4.ToText(destination ? p.Destination : p.Source)}";
}

internal sealed class ProtocolMatcher(string text, IReadOnlyList<int> protocols, bool negated) : Matcher(text)
{
    private readonly int[] _protocols = [.. protocols];

    public override Tri Test(Packet p, EvaluationContext c) => Of(Array.IndexOf(_protocols, 0) >= 0 || Array.IndexOf(_protocols, p.Protocol) >= 0, negated);

    public override string? Why(Packet p, EvaluationContext c) => $"protocol is {Packet.ProtocolName(p.Protocol)}";
}

internal sealed class PortMatcher(string text, int protocol, bool destination, IReadOnlyList<(int From, int To)> ranges, bool negated) : Matcher(text)
{
    private readonly (int From, int To)[] _ranges = [.. ranges];

    public override Tri Test(Packet p, EvaluationContext c)
    {
        // A port match names its protocol (tcp dport, -m udp --dport): another protocol never matches it.
        if (protocol != 0 && p.Protocol != protocol || p.Protocol is not (6 or 17))
        {
            return Tri.False;
        }

        var port = destination ? p.DestinationPort : p.SourcePort;
        if (port == 0)
        {
            return Tri.Unknown;
        }

        foreach (var (from, to) in _ranges)
        {
            if (port >= from && port <= to)
            {
                return negated ? Tri.False : Tri.True;
            }
        }

        return negated ? Tri.True : Tri.False;
    }

    public override string? Why(Packet p, EvaluationContext c)
    {
        if (protocol != 0 && p.Protocol != protocol || p.Protocol is not (6 or 17))
        {
            return $"protocol is {Packet.ProtocolName(p.Protocol)}";
        }

        var port = destination ? p.DestinationPort : p.SourcePort;
        return port == 0 ? "the flow gives no port" : $"{(destination ? "destination" : "source")} port is {port}";
    }
}

internal sealed class IcmpTypeMatcher(string text, int type, bool negated) : Matcher(text)
{
    public override Tri Test(Packet p, EvaluationContext c) => p.Protocol != 1 ? Tri.False : Of(type == -1 || p.IcmpType == type, negated);

    public override string? Why(Packet p, EvaluationContext c) => p.Protocol != 1 ? $"protocol is {Packet.ProtocolName(p.Protocol)}" : $"ICMP type is {p.IcmpType}";
}

internal sealed class StateMatcher(string text, IReadOnlyList<string> states, bool negated) : Matcher(text)
{
    private readonly string[] _states = [.. states];

    public override Tri Test(Packet p, EvaluationContext c)
    {
        var hit = Array.IndexOf(_states, p.State) >= 0 || p.Dnatted && Array.IndexOf(_states, "DNAT") >= 0 || p.Snatted && Array.IndexOf(_states, "SNAT") >= 0;
        return Of(hit, negated);
    }

    public override string? Why(Packet p, EvaluationContext c) => $"conntrack state is {p.State}";
}

internal sealed class LocalAddressMatcher(string text, bool destination, bool negated) : Matcher(text)
{
    public override bool MayAssume => false;

    public override Tri Test(Packet p, EvaluationContext c)
    {
        var a = destination ? p.Destination : p.Source;
        if (c.IsLocal(a) is { } local)
        {
            return Of(local, negated);
        }

        // Not told the host's addresses: a packet the flow says is forwarded (destination) or that arrived on an
        // interface (source) is not addressed from or to the host itself.
        return (destination ? p.PlannedOut.Length > 0 : p.In.Length > 0) ? Of(false, negated) : Tri.Unknown;
    }

    public override string? Why(Packet p, EvaluationContext c)
    {
        var a = destination ? p.Destination : p.Source;
        if (c.IsLocal(a) is { } local)
        {
            return $"{Ipv4.ToText(a)} is {(local ? "" : "not ")}a local address";
        }

        if (destination ? p.PlannedOut.Length > 0 : p.In.Length > 0)
        {
            return destination
                ? $"the flow is forwarded out of {p.PlannedOut}, so {Ipv4.ToText(a)} is not a local address (give local addresses to say otherwise)"
                : $"the packet arrived on {p.In}, so {Ipv4.ToText(a)} is not a local address";
        }

        return $"whether {Ipv4.ToText(a)} is a local address of the host is not known";
    }
}

internal sealed class SetMatcher(string text, string set, bool destination, bool negated) : Matcher(text)
{
    public override Tri Test(Packet p, EvaluationContext c)
    {
        if (!c.IpSets.TryGetValue(set, out var members))
        {
            return Tri.Unknown;
        }

        var a = destination ? p.Destination : p.Source;
        return Of(members.Any(m => Ipv4.TryParsePrefix(m, out var net, out var mask) && (a & mask) == net), negated);
    }

    public override string? Why(Packet p, EvaluationContext c) =>
        c.IpSets.ContainsKey(set) ? $"{Ipv4.ToText(destination ? p.Destination : p.Source)} is {(negated ? "" : "not ")}in set {set}" : $"the members of set {set} are not known";
}

internal sealed class AlwaysMatcher(string text) : Matcher(text)
{
    public override Tri Test(Packet p, EvaluationContext c) => Tri.True;

    public override string? Why(Packet p, EvaluationContext c) => null;
}

/// <summary>A match the evaluator does not understand: never guessed.</summary>
internal sealed class UnknownMatcher(string text) : Matcher(text)
{
    public override Tri Test(Packet p, EvaluationContext c) => Tri.Unknown;

    public override string? Why(Packet p, EvaluationContext c) => $"'{Text}' is not understood";
}

/// <summary>Turns a rule's matches (iptables or nft) into matchers.</summary>
internal static class MatcherCompiler
{
    public static Matcher[] Compile(FirewallRule rule, FirewallTable table, bool nft)
    {
        var list = new List<Matcher>(rule.Matches.Count);
        string? proto = null;
        foreach (var m in rule.Matches)
        {
            if (m.Option == "-p")
            {
                proto = m.Value;
            }
        }

        foreach (var m in rule.Matches)
        {
            if ((nft ? CompileNft(m, m.ToString(), m.Value ?? "", table) : CompileIptables(m, m.ToString(), m.Value ?? "", proto)) is { } matcher)
            {
                list.Add(matcher);
            }
        }

        // Cheap conditions first: interfaces, then addresses, then the rest.
        return [.. list.OrderBy(x => x switch { InterfaceMatcher => 0, AddressMatcher => 1, ProtocolMatcher => 2, _ => 3 })];
    }

    private static Matcher? CompileIptables(RuleMatch m, string text, string value, string? proto)
    {
        switch (m.Module, m.Option)
        {
            case ("", "-i"):
                return new InterfaceMatcher(text, false, [value], m.Negated);
            case ("", "-o"):
                return new InterfaceMatcher(text, true, [value], m.Negated);
            case ("", "-s"):
            case ("", "-d"):
                return Prefixes(value) is { } ps ? new AddressMatcher(text, m.Option == "-d", ps, m.Negated) : new UnknownMatcher(text);
            case ("", "-p"):
                return Packet.ProtocolNumber(value) is >= 0 and var n ? new ProtocolMatcher(text, [n], m.Negated) : new UnknownMatcher(text);
            case ("", "-f"):
                // Every packet evaluated is a first (or only) fragment.
                return m.Negated ? new AlwaysMatcher(text) : new UnknownMatcher(text);
            case ("comment", _):
                return new AlwaysMatcher(text);
            case ("tcp" or "udp", "--dport" or "--destination-port"):
            case ("tcp" or "udp", "--sport" or "--source-port"):
                return Ranges(value, ':') is { } rs ? new PortMatcher(text, Packet.ProtocolNumber(m.Module), m.Option.StartsWith("--d", StringComparison.Ordinal), rs, m.Negated) : new UnknownMatcher(text);
            case ("tcp" or "udp", "-m"):
                return new ProtocolMatcher(text, [Packet.ProtocolNumber(m.Module)], false);
            case ("multiport", "--dports" or "--destination-ports"):
            case ("multiport", "--sports" or "--source-ports"):
                return Ranges(value, ':') is { } mr && proto is not null ? new PortMatcher(text, Packet.ProtocolNumber(proto), m.Option.StartsWith("--d", StringComparison.Ordinal), mr, m.Negated) : new UnknownMatcher(text);
            case ("icmp", "--icmp-type"):
                return IcmpTypes.Parse(value) is { } t ? new IcmpTypeMatcher(text, t, m.Negated) : new UnknownMatcher(text);
            case ("icmp", "-m"):
                return new ProtocolMatcher(text, [1], false);
            case ("conntrack", "--ctstate"):
            case ("state", "--state"):
                return new StateMatcher(text, [.. value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => s.ToUpperInvariant())], m.Negated);
            case ("addrtype", "--dst-type" or "--src-type") when value == "LOCAL":
                return new LocalAddressMatcher(text, m.Option == "--dst-type", m.Negated);
            case ("set", "--match-set"):
                {
                    var parts = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return parts.Length == 2 && parts[1] is "src" or "dst" ? new SetMatcher(text, parts[0], parts[1] == "dst", m.Negated) : new UnknownMatcher(text);
                }

            default:
                return new UnknownMatcher(text);
        }
    }

    private static Matcher? CompileNft(RuleMatch m, string text, string value, FirewallTable table)
    {
        if (m.Module == "nft")
        {
            // Statements kept verbatim (log, limit, xt compat...): "log" alone decides nothing.
            return m.Option is "log" or "notrack" or "meta" && m.Value is null or "null" ? null : new UnknownMatcher($"{m.Option} {m.Value}");
        }

        if (m.Value is null)
        {
            // The key of a verdict map: handled by the rule's target.
            return null;
        }

        var key = m.Option.StartsWith("meta ", StringComparison.Ordinal) ? m.Option[5..] : m.Option;
        var items = Items(value, table);
        if (items is null)
        {
            return new UnknownMatcher(text);
        }

        switch (key)
        {
            case "iifname":
            case "oifname":
                return new InterfaceMatcher(text, key == "oifname", items, m.Negated);
            case "ip saddr":
            case "ip daddr":
                return Prefixes(items) is { } ps ? new AddressMatcher(text, key == "ip daddr", ps, m.Negated) : new UnknownMatcher(text);
            case "ip protocol":
            case "l4proto":
                {
                    var ns = items.Select(Packet.ProtocolNumber).ToList();
                    return ns.All(n => n > 0) ? new ProtocolMatcher(text, ns, m.Negated) : new UnknownMatcher(text);
                }

            case "tcp dport" or "udp dport" or "tcp sport" or "udp sport" or "th dport" or "th sport":
                {
                    var rs = Ranges(string.Join(',', items), '-');
                    var protocol = key.StartsWith("th", StringComparison.Ordinal) ? 0 : Packet.ProtocolNumber(key[..3]);
                    return rs is null ? new UnknownMatcher(text) : new PortMatcher(text, protocol, key.EndsWith("dport", StringComparison.Ordinal), rs, m.Negated);
                }

            case "icmp type":
                return items.Count == 1 && IcmpTypes.Parse(items[0]) is { } t ? new IcmpTypeMatcher(text, t, m.Negated) : new UnknownMatcher(text);
            case "ct state":
                return new StateMatcher(text, [.. items.Select(s => s.ToUpperInvariant())], m.Negated);
            case "ct status" when items.All(i => i is "dnat" or "snat"):
                return new StateMatcher(text, [.. items.Select(s => s.ToUpperInvariant())], m.Negated);
            case "fib daddr type" when items is ["local"]:
                return new LocalAddressMatcher(text, true, m.Negated);
            case "fib saddr type" when items is ["local"]:
                return new LocalAddressMatcher(text, false, m.Negated);
            default:
                return new UnknownMatcher(text);
        }
    }

    /// <summary>The elements of an nft right-hand side: one value, "{ a, b }", "a,b", or a named set with known elements.</summary>
    private static List<string>? Items(string value, FirewallTable table)
    {
        var v = value.Trim();
        if (v.StartsWith('@'))
        {
            return table.Sets.TryGetValue(v[1..], out var set) ? [.. set.Elements.Select(e => Unquote(e.Key))] : null;
        }

        if (v.StartsWith('{') && v.EndsWith('}'))
        {
            v = v[1..^1];
        }

        if (v.StartsWith('[') && v.EndsWith(']'))
        {
            v = v[1..^1];
        }

        return [.. v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Unquote)];
    }

    private static string Unquote(string s) => s.Length >= 2 && s[0] == '"' && s[^1] == '"' ? s[1..^1] : s;

    private static List<(uint, uint)>? Prefixes(string value) => Prefixes(value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static List<(uint, uint)>? Prefixes(IEnumerable<string> values)
    {
        var list = new List<(uint, uint)>();
        foreach (var v in values)
        {
            if (!Ipv4.TryParsePrefix(v, out var net, out var mask))
            {
                return null;
            }

            list.Add((net, mask));
        }

        return list;
    }

    private static List<(int, int)>? Ranges(string value, char rangeSeparator)
    {
        var list = new List<(int, int)>();
        foreach (var part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var bounds = part.Split(rangeSeparator);
            if (bounds.Length is < 1 or > 2 || !int.TryParse(bounds[0], NumberStyles.None, CultureInfo.InvariantCulture, out var from))
            {
                return null;
            }

            var to = from;
            if (bounds.Length == 2 && !int.TryParse(bounds[1], NumberStyles.None, CultureInfo.InvariantCulture, out to))
            {
                return null;
            }

            list.Add((from, to));
        }

        return list.Count > 0 ? list : null;
    }
}
