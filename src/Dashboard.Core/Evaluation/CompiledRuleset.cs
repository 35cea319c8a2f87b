using System.Collections.Concurrent;
using System.Globalization;
using Dashboard.Core.Firewall;

namespace Dashboard.Core.Evaluation;

internal enum TargetKind
{
    Continue,
    Accept,
    Drop,
    Reject,
    Return,
    Jump,
    Goto,
    Dnat,
    Snat,
    Masquerade,
    NoTrack,
    Vmap,
    Unknown,
}

/// <summary>A base chain on a hook: an iptables built-in chain or an nftables chain with a hook, in priority order.</summary>
internal sealed record BaseChain(FirewallTable Table, FirewallChain Chain, int Priority, bool IsNat, bool IsFilterHook);

/// <summary>
/// A rule's plain source and destination prefixes, kept inline in an array beside the rules so the common case, a rule
/// for other addresses, is skipped without touching the rule's matchers.
/// </summary>
internal readonly struct Prefilter
{
    private readonly uint _srcNet;
    private readonly uint _srcMask;
    private readonly uint _dstNet;
    private readonly uint _dstMask;
    private readonly byte _flags;

    public Prefilter(Matcher[] matchers)
    {
        foreach (var m in matchers.OfType<AddressMatcher>())
        {
            if (m.Single is not { } prefix)
            {
                continue;
            }

            if (m.Destination && (_flags & 4) == 0)
            {
                (_dstNet, _dstMask) = prefix;
                _flags |= (byte)(4 | (m.Negated ? 8 : 0));
            }
            else if (!m.Destination && (_flags & 1) == 0)
            {
                (_srcNet, _srcMask) = prefix;
                _flags |= (byte)(1 | (m.Negated ? 2 : 0));
            }
        }
    }

    /// <summary>False when the addresses alone rule the rule out.</summary>
    public bool MayMatch(Packet p) =>
        ((_flags & 1) == 0 || ((p.Source & _srcMask) == _srcNet) != ((_flags & 2) != 0))
        && ((_flags & 4) == 0 || ((p.Destination & _dstMask) == _dstNet) != ((_flags & 8) != 0));
}

/// <summary>The rules of a chain a packet may meet, with their pre-checks side by side.</summary>
internal sealed class Candidates(CompiledRule[] rules)
{
    public CompiledRule[] Rules { get; } = rules;

    public Prefilter[] Filters { get; } = [.. rules.Select(r => new Prefilter(r.Matchers))];
}

/// <summary>A rule ready to evaluate: its matchers, what it does, and a fast pre-check of its plain fields.</summary>
internal sealed class CompiledRule
{
    public CompiledRule(FirewallRule rule, FirewallTable table, bool nft)
    {
        Rule = rule;
        Matchers = MatcherCompiler.Compile(rule, table, nft);
        (Kind, JumpTarget) = TargetOf(rule, nft);
        foreach (var m in Matchers.OfType<InterfaceMatcher>())
        {
            if (m.Output)
            {
                OutLiteral ??= m.Literal;
            }
            else
            {
                InLiteral ??= m.Literal;
            }
        }

        if (Kind is TargetKind.Dnat or TargetKind.Snat)
        {
            var to = rule.TargetOptions.FirstOrDefault(o => o.Option is "--to-destination" or "--to-source" or "--to" or "addr").Value;
            var port = rule.TargetOptions.FirstOrDefault(o => o.Option == "port").Value;
            if (to is not null)
            {
                // "192.0.2.2:80" (iptables) or addr + port (nft); ranges are not modelled.
                var colon = to.IndexOf(':', StringComparison.Ordinal);
                NatAddress = colon < 0 ? to : to[..colon];
                port ??= colon < 0 ? null : to[(colon + 1)..];
            }

            NatPort = port is not null && int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : null;
            if (NatAddress is not null && !FlowSpec.TryParseIpv4(NatAddress, out _))
            {
                NatAddress = null;
            }
        }

        if (Kind == TargetKind.Vmap)
        {
            var key = rule.Matches.FirstOrDefault(m => m.Value is null && m.Module == "").Option;
            var map = rule.TargetOptions.FirstOrDefault(o => o.Option == "vmap").Value;
            _vmapKey = key switch { "meta iifname" or "iifname" => false, "meta oifname" or "oifname" => true, _ => null };
            if (map is not null && map.StartsWith('@') && table.Sets.TryGetValue(map[1..], out var set))
            {
                _vmap = set.Elements.ToDictionary(e => Unquote(e.Key), e => e, StringComparer.Ordinal);
            }
        }
    }

    public FirewallRule Rule { get; }

    public Matcher[] Matchers { get; }

    public TargetKind Kind { get; }

    public string? JumpTarget { get; }

    public string? InLiteral { get; }

    public string? OutLiteral { get; }

    public string? NatAddress { get; }

    public int? NatPort { get; }

    private readonly bool? _vmapKey;
    private readonly Dictionary<string, NftSetElement>? _vmap;

    /// <summary>What a verdict map gives for this packet: its element's verdict, or continue when the key has none.</summary>
    public (TargetKind Kind, string? Target) VmapLookup(Packet p)
    {
        if (_vmapKey is not { } output || _vmap is null)
        {
            return (TargetKind.Unknown, null);
        }

        if (!_vmap.TryGetValue(output ? p.Out : p.In, out var e))
        {
            return (TargetKind.Continue, null);
        }

        return e.Verdict switch
        {
            "jump" => (TargetKind.Jump, e.Chain),
            "goto" => (TargetKind.Goto, e.Chain),
            "accept" => (TargetKind.Accept, null),
            "drop" => (TargetKind.Drop, null),
            "return" => (TargetKind.Return, null),
            "continue" => (TargetKind.Continue, null),
            _ => (TargetKind.Unknown, null),
        };
    }

    private static string Unquote(string s) => s.Length >= 2 && s[0] == '"' && s[^1] == '"' ? s[1..^1] : s;

    private static (TargetKind, string?) TargetOf(FirewallRule rule, bool nft)
    {
        if (nft)
        {
            return rule.Target switch
            {
                null or "continue" => (TargetKind.Continue, null),
                "accept" => (TargetKind.Accept, null),
                "drop" => (TargetKind.Drop, null),
                "reject" => (TargetKind.Reject, null),
                "return" => (TargetKind.Return, null),
                "jump" => (TargetKind.Jump, rule.JumpChains.FirstOrDefault()),
                "goto" => (TargetKind.Goto, rule.JumpChains.FirstOrDefault()),
                "vmap" => (TargetKind.Vmap, null),
                "masquerade" => (TargetKind.Masquerade, null),
                "snat" => (TargetKind.Snat, null),
                "dnat" => (TargetKind.Dnat, null),
                _ => (TargetKind.Unknown, null),
            };
        }

        if (rule.JumpChains.Count > 0)
        {
            return (rule.IsGoto ? TargetKind.Goto : TargetKind.Jump, rule.JumpChains[0]);
        }

        return rule.Target switch
        {
            null => (TargetKind.Continue, null),
            "ACCEPT" => (TargetKind.Accept, null),
            "DROP" => (TargetKind.Drop, null),
            "REJECT" => (TargetKind.Reject, null),
            "RETURN" => (TargetKind.Return, null),
            "DNAT" => (TargetKind.Dnat, null),
            "SNAT" => (TargetKind.Snat, null),
            "MASQUERADE" => (TargetKind.Masquerade, null),
            "NOTRACK" => (TargetKind.NoTrack, null),
            "CT" when rule.TargetOptions.Any(o => o.Option == "--notrack") => (TargetKind.NoTrack, null),
            "LOG" or "NFLOG" or "ULOG" or "TRACE" or "MARK" or "CONNMARK" or "CHECKSUM" or "TCPMSS" or "AUDIT" or "CLASSIFY" or "DSCP" or "TOS" or "TTL" or "CT" => (TargetKind.Continue, null),
            _ => (TargetKind.Unknown, null),
        };
    }
}

/// <summary>A ruleset compiled once for evaluation: base chains per hook, compiled rules, and per-interface candidate lists.</summary>
internal sealed class CompiledRuleset
{
    private static readonly string[] Hooks = ["prerouting", "input", "forward", "output", "postrouting"];

    private readonly Dictionary<string, List<BaseChain>> _hooks = [];
    private readonly Dictionary<FirewallChain, Candidates> _rules = [];
    private readonly ConcurrentDictionary<(FirewallChain, string), Candidates> _byIn = new();

    public CompiledRuleset(Ruleset ruleset)
    {
        var nft = ruleset.Format == RulesetFormat.NftJson;
        var order = 0;
        var all = new List<(BaseChain Chain, int Order, string Hook)>();
        foreach (var table in ruleset.Tables.Where(t => t.Family is TableFamily.Ipv4 or TableFamily.Inet))
        {
            foreach (var chain in table.Chains)
            {
                _rules[chain] = new Candidates([.. chain.Rules.Select(r => new CompiledRule(r, table, nft))]);
                var hook = chain.Hook?.ToLowerInvariant() ?? (chain.Policy is not null && Hooks.Contains(chain.Name.ToLowerInvariant()) ? chain.Name.ToLowerInvariant() : null);
                if (hook is null)
                {
                    continue;
                }

                var type = chain.Type ?? (table.Name == "nat" ? "nat" : "filter");
                var priority = chain.Priority ?? StandardPriority(table.Name, hook);
                var filterHook = hook is "forward" or "input" or "output" && type == "filter" && (nft || table.Name == "filter");
                all.Add((new BaseChain(table, chain, priority, type == "nat", filterHook), order++, hook));
            }
        }

        foreach (var g in all.GroupBy(x => x.Hook))
        {
            _hooks[g.Key] = [.. g.OrderBy(x => x.Chain.Priority).ThenBy(x => x.Order).Select(x => x.Chain)];
        }
    }

    public IReadOnlyList<BaseChain> BaseChains(string hook) => _hooks.TryGetValue(hook, out var l) ? l : [];

    /// <summary>The rules of a chain that can match a packet entering on its interface (rules for other literal input interfaces left out), in order.</summary>
    public Candidates For(FirewallChain chain, Packet p, bool all)
    {
        var rules = _rules[chain];
        if (all || rules.Rules.Length < 64)
        {
            return rules;
        }

        return _byIn.GetOrAdd((chain, p.In), key => new Candidates([.. _rules[key.Item1].Rules.Where(r => r.InLiteral is null || r.InLiteral == key.Item2)]));
    }

    private static int StandardPriority(string table, string hook) => (table, hook) switch
    {
        ("raw", _) => -300,
        ("mangle", _) => -150,
        ("nat", "prerouting" or "output") => -100,
        ("nat", _) => 100,
        ("security", _) => 50,
        _ => 0,
    };
}
