using System.Text;
using System.Text.Json;

namespace Dashboard.Core.Firewall;

/// <summary>
/// Reads <c>nft -j list ruleset</c> JSON (schema version 1) into the same model as iptables-save: every table, chain,
/// set/map and rule, counters from <c>counter</c> expressions, matches as (left-hand expression, negated, right-hand value).
/// Expressions it does not model are kept verbatim as JSON text. Bad input raises <see cref="RulesetFormatException"/>.
/// </summary>
public static class NftJsonReader
{
    private static readonly JsonDocumentOptions DocOptions = new() { MaxDepth = 64 };

    public static Ruleset Read(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, DocOptions);
        }
        catch (JsonException ex)
        {
            var line = (int)(ex.LineNumber ?? -1) + 1;
            throw new RulesetFormatException(line, $"not valid JSON: {FirstSentence(ex.Message)}");
        }

        using (doc)
        {
            return Read(doc.RootElement);
        }
    }

    private static Ruleset Read(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("nftables", out var items) || items.ValueKind != JsonValueKind.Array)
        {
            throw new RulesetFormatException(0, "not `nft -j list ruleset` output: expected an object with an \"nftables\" array");
        }

        string? generator = null;
        var tables = new List<TableBuilder>();
        var byName = new Dictionary<(string Family, string Name), TableBuilder>();
        var index = 0;
        foreach (var item in items.EnumerateArray())
        {
            index++;
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw new RulesetFormatException(0, $"item {index} of \"nftables\" is not an object");
            }

            foreach (var prop in item.EnumerateObject())
            {
                var v = prop.Value;
                if (prop.Name is "metainfo" or "table" or "chain" or "set" or "map" or "rule" && v.ValueKind != JsonValueKind.Object)
                {
                    throw new RulesetFormatException(0, $"item {index} of \"nftables\": \"{prop.Name}\" is {KindOf(v)}, expected an object");
                }

                try
                {
                    ReadItem(prop.Name, v, index, ref generator, tables, byName);
                }
                catch (Exception ex) when (IsShapeError(ex))
                {
                    throw new RulesetFormatException(0, $"item {index} of \"nftables\" ({prop.Name}): a member is missing or of the wrong type ({FirstSentence(ex.Message)})");
                }
            }
        }

        if (tables.Count == 0)
        {
            throw new RulesetFormatException(0, "the ruleset holds no tables");
        }

        return new Ruleset { Format = RulesetFormat.NftJson, Tables = tables.Select(t => t.Build()).ToList(), Generator = generator };
    }

    /// <summary>
    /// What a well-formed JSON document of the wrong shape makes <see cref="JsonElement"/> throw (a member that is not
    /// there, a string where a number was expected, a number out of range, an index past an array's end).
    /// </summary>
    private static bool IsShapeError(Exception ex) =>
        ex is InvalidOperationException or KeyNotFoundException or OverflowException or IndexOutOfRangeException or ArgumentException
        || (ex is FormatException && ex is not RulesetFormatException);

    private static string KindOf(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "an object",
    };

    private static void ReadItem(string kind, JsonElement v, int index, ref string? generator, List<TableBuilder> tables, Dictionary<(string Family, string Name), TableBuilder> byName)
    {
        switch (kind)
        {
            case "metainfo":
                if (v.TryGetProperty("version", out var ver))
                {
                    generator = $"nftables v{ver.GetString()}";
                }

                break;
            case "table":
                {
                    var key = (Str(v, "family", index), Str(v, "name", index));
                    if (!byName.ContainsKey(key))
                    {
                        var tb = new TableBuilder(key.Item1, key.Item2);
                        byName.Add(key, tb);
                        tables.Add(tb);
                    }

                    break;
                }

            case "chain":
                {
                    var tb = FindTable(byName, v, index);
                    var name = Str(v, "name", index);
                    tb.Chains.TryAdd(name, new ChainBuilder(
                        name,
                        OptStr(v, "type"),
                        OptStr(v, "hook"),
                        v.TryGetProperty("prio", out var prio) && prio.ValueKind == JsonValueKind.Number ? prio.GetInt32() : null,
                        OptStr(v, "policy")));
                    tb.ChainOrder.Add(name);
                    break;
                }

            case "set":
            case "map":
                {
                    var tb = FindTable(byName, v, index);
                    var set = ReadSet(v, index);
                    tb.Sets[set.Name] = set;
                    break;
                }

            case "rule":
                {
                    var tb = FindTable(byName, v, index);
                    var chainName = Str(v, "chain", index);
                    if (!tb.Chains.TryGetValue(chainName, out var chain))
                    {
                        throw new RulesetFormatException(0, $"item {index}: rule for chain '{chainName}', which table '{tb.Name}' does not list");
                    }

                    chain.Rules.Add((v, index));
                    break;
                }

            default:
                // flowtables, counters, quotas, ct helpers...: not part of the rule path model.
                break;
        }
    }

    private static TableBuilder FindTable(Dictionary<(string, string), TableBuilder> tables, JsonElement v, int index)
    {
        var key = (Str(v, "family", index), Str(v, "table", index));
        return tables.TryGetValue(key, out var tb)
            ? tb
            : throw new RulesetFormatException(0, $"item {index} refers to table '{key.Item1} {key.Item2}', which is not listed before it");
    }

    private static NftSet ReadSet(JsonElement v, int index)
    {
        var name = Str(v, "name", index);
        var type = v.TryGetProperty("type", out var t) ? RenderValue(t) : "";
        var mapType = OptStr(v, "map");
        var elements = new List<NftSetElement>();
        if (v.TryGetProperty("elem", out var elems) && elems.ValueKind == JsonValueKind.Array)
        {
            foreach (var e in elems.EnumerateArray())
            {
                if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2)
                {
                    var (verdict, chain) = ReadVerdict(e[1]);
                    elements.Add(new NftSetElement(RenderValue(e[0]), verdict ?? RenderValue(e[1]), chain));
                }
                else
                {
                    elements.Add(new NftSetElement(RenderValue(e), null, null));
                }
            }
        }

        return new NftSet(name, type, mapType, elements);
    }

    private static (string? Verdict, string? Chain) ReadVerdict(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            return (null, null);
        }

        foreach (var p in e.EnumerateObject())
        {
            switch (p.Name)
            {
                case "accept":
                case "drop":
                case "return":
                case "continue":
                    return (p.Name, null);
                case "jump":
                case "goto":
                    return (p.Name, p.Value.TryGetProperty("target", out var tg) ? tg.GetString() : null);
            }
        }

        return (null, null);
    }

    private static string Str(JsonElement v, string name, int index) =>
        v.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String
            ? p.GetString()!
            : throw new RulesetFormatException(0, $"item {index}: missing \"{name}\"");

    private static string? OptStr(JsonElement v, string name) =>
        v.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;

    private static string FirstSentence(string s)
    {
        var i = s.IndexOf(". ", StringComparison.Ordinal);
        return i > 0 ? s[..(i + 1)] : s;
    }

    internal static TableFamily ToFamily(string family) => family switch
    {
        "ip" => TableFamily.Ipv4,
        "ip6" => TableFamily.Ipv6,
        "inet" => TableFamily.Inet,
        "bridge" => TableFamily.Bridge,
        "arp" => TableFamily.Arp,
        "netdev" => TableFamily.Netdev,
        _ => throw new RulesetFormatException(0, $"unknown table family '{family}'"),
    };

    /// <summary>Renders a left-hand expression the way nft lists it: <c>meta iifname</c>, <c>ip daddr</c>, <c>ct state</c>.</summary>
    internal static string RenderExpression(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            return RenderValue(e);
        }

        foreach (var p in e.EnumerateObject())
        {
            var v = p.Value;
            switch (p.Name)
            {
                case "meta":
                    return $"meta {OptStr(v, "key")}";
                case "payload":
                    return v.TryGetProperty("protocol", out var proto)
                        ? $"{proto.GetString()} {OptStr(v, "field")}"
                        : $"@{OptStr(v, "base")},{v.GetProperty("offset")},{v.GetProperty("len")}";
                case "ct":
                    return v.TryGetProperty("dir", out var dir) ? $"ct {dir.GetString()} {OptStr(v, "key")}" : $"ct {OptStr(v, "key")}";
                case "fib":
                    var flags = v.TryGetProperty("flags", out var f)
                        ? string.Join(' ', f.ValueKind == JsonValueKind.Array ? f.EnumerateArray().Select(x => x.GetString()) : [f.GetString()])
                        : "";
                    return $"fib {flags} {OptStr(v, "result")}".Replace("  ", " ", StringComparison.Ordinal);
                case "socket":
                    return $"socket {OptStr(v, "key")}";
                case "rt":
                    return $"rt {OptStr(v, "key")}";
            }
        }

        return e.GetRawText();
    }

    /// <summary>Renders a right-hand value: strings, numbers, prefixes, ranges, sets, set references.</summary>
    internal static string RenderValue(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String:
                return e.GetString()!;
            case JsonValueKind.Number:
                return e.GetRawText();
            case JsonValueKind.True:
            case JsonValueKind.False:
                return e.GetRawText();
            case JsonValueKind.Array:
                return string.Join(',', e.EnumerateArray().Select(RenderValue));
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                {
                    var v = p.Value;
                    switch (p.Name)
                    {
                        case "prefix":
                            return $"{RenderValue(v.GetProperty("addr"))}/{v.GetProperty("len").GetRawText()}";
                        case "range":
                            return $"{RenderValue(v[0])}-{RenderValue(v[1])}";
                        case "set":
                            return v.ValueKind == JsonValueKind.Array
                                ? "{ " + string.Join(", ", v.EnumerateArray().Select(RenderValue)) + " }"
                                : RenderValue(v);
                        case "elem":
                            return v.TryGetProperty("val", out var val) ? RenderValue(val) : v.GetRawText();
                        case "concat":
                            return string.Join(" . ", v.EnumerateArray().Select(RenderValue));
                    }
                }

                return RenderExpression(e);
            default:
                return e.GetRawText();
        }
    }

    private sealed class TableBuilder(string family, string name)
    {
        public string Family { get; } = family;
        public string Name { get; } = name;
        public Dictionary<string, ChainBuilder> Chains { get; } = new(StringComparer.Ordinal);
        public List<string> ChainOrder { get; } = [];
        public Dictionary<string, NftSet> Sets { get; } = new(StringComparer.Ordinal);

        public FirewallTable Build()
        {
            var family = ToFamily(Family);
            var chains = ChainOrder.Distinct().Select(n => Chains[n].Build(family, Name, Sets)).ToList();
            return new FirewallTable { Family = family, Name = Name, Chains = chains, Sets = Sets };
        }
    }

    private sealed class ChainBuilder(string name, string? type, string? hook, int? prio, string? policy)
    {
        /// <summary>The chain's rules in order, each with its item number in the "nftables" array (to name it in a message).</summary>
        public List<(JsonElement Rule, int Item)> Rules { get; } = [];

        public FirewallChain Build(TableFamily family, string table, Dictionary<string, NftSet> sets)
        {
            var rules = new List<FirewallRule>(Rules.Count);
            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < Rules.Count; i++)
            {
                try
                {
                    rules.Add(BuildRule(Rules[i].Rule, family, table, name, i + 1, sets, seen));
                }
                catch (Exception ex) when (IsShapeError(ex))
                {
                    throw new RulesetFormatException(0, $"item {Rules[i].Item} of \"nftables\" (rule {i + 1} of chain {table} {name}): an expression is missing a member or has one of the wrong type ({FirstSentence(ex.Message)})");
                }
            }

            return new FirewallChain
            {
                Name = name,
                Type = type,
                Hook = hook,
                Priority = prio,
                Policy = hook is null ? null : (policy ?? "accept"),
                Rules = rules,
            };
        }
    }

    private static FirewallRule BuildRule(JsonElement r, TableFamily family, string table, string chain, int position,
        Dictionary<string, NftSet> sets, Dictionary<string, int> seen)
    {
        var matches = new List<RuleMatch>();
        var targetOptions = new List<RuleMatch>();
        var text = new StringBuilder();
        ulong packets = 0, bytes = 0;
        var hasCounters = false;
        string? target = null;
        var jumps = new List<string>();
        var comment = OptStr(r, "comment");

        void Append(string s)
        {
            if (text.Length > 0)
            {
                text.Append(' ');
            }

            text.Append(s);
        }

        if (r.TryGetProperty("expr", out var exprs) && exprs.ValueKind == JsonValueKind.Array)
        {
            foreach (var x in exprs.EnumerateArray())
            {
                if (x.ValueKind != JsonValueKind.Object)
                {
                    continue;
                }

                foreach (var p in x.EnumerateObject())
                {
                    var v = p.Value;
                    switch (p.Name)
                    {
                        case "match":
                            {
                                var left = RenderExpression(v.GetProperty("left"));
                                var op = OptStr(v, "op") ?? "==";
                                var right = RenderValue(v.GetProperty("right"));
                                var negated = op == "!=";
                                var value = op is "==" or "!=" or "in" ? right : $"{op} {right}";
                                matches.Add(new RuleMatch("", left, negated, value));
                                var shownLeft = left.StartsWith("meta ", StringComparison.Ordinal) ? left[5..] : left;
                                var shownRight = v.GetProperty("right").ValueKind == JsonValueKind.String && left.EndsWith("ifname", StringComparison.Ordinal)
                                    ? $"\"{right}\""
                                    : right;
                                Append(op switch
                                {
                                    "==" or "in" => $"{shownLeft} {shownRight}",
                                    _ => $"{shownLeft} {op} {shownRight}",
                                });
                                break;
                            }

                        case "counter":
                            if (v.ValueKind == JsonValueKind.Object)
                            {
                                packets = v.TryGetProperty("packets", out var pk) ? pk.GetUInt64() : 0;
                                bytes = v.TryGetProperty("bytes", out var by) ? by.GetUInt64() : 0;
                                hasCounters = true;
                            }

                            Append("counter");
                            break;
                        case "accept":
                        case "drop":
                        case "return":
                        case "continue":
                            target = p.Name;
                            Append(p.Name);
                            break;
                        case "jump":
                        case "goto":
                            {
                                target = p.Name;
                                var tg = OptStr(v, "target") ?? "";
                                jumps.Add(tg);
                                Append($"{p.Name} {tg}");
                                break;
                            }

                        case "vmap":
                            {
                                target = "vmap";
                                var key = RenderExpression(v.GetProperty("key"));
                                var data = v.GetProperty("data");
                                matches.Add(new RuleMatch("", key, false, null));
                                if (data.ValueKind == JsonValueKind.String && data.GetString() is { } dataName && dataName.StartsWith('@'))
                                {
                                    targetOptions.Add(new RuleMatch("", "vmap", false, dataName));
                                    if (sets.TryGetValue(dataName[1..], out var map))
                                    {
                                        jumps.AddRange(map.Elements.Where(el => el.Chain is not null).Select(el => el.Chain!));
                                    }
                                }
                                else
                                {
                                    targetOptions.Add(new RuleMatch("", "vmap", false, RenderValue(data)));
                                }

                                Append($"{(key.StartsWith("meta ", StringComparison.Ordinal) ? key[5..] : key)} vmap {RenderValue(data)}");
                                break;
                            }

                        case "masquerade":
                            target = "masquerade";
                            Append("masquerade");
                            AddNatOptions(v, targetOptions);
                            break;
                        case "snat":
                        case "dnat":
                            {
                                target = p.Name;
                                AddNatOptions(v, targetOptions);
                                var addr = v.TryGetProperty("addr", out var a) ? RenderValue(a) : "";
                                var port = v.TryGetProperty("port", out var po) ? $":{RenderValue(po)}" : "";
                                Append($"{p.Name} to {addr}{port}");
                                break;
                            }

                        case "reject":
                            target = "reject";
                            Append("reject");
                            break;
                        default:
                            // Not modelled (log, limit, meta set, xt compat matches...): kept verbatim.
                            var raw = v.GetRawText();
                            matches.Add(new RuleMatch("nft", p.Name, false, raw));
                            Append(v.ValueKind == JsonValueKind.Null ? p.Name : $"{p.Name} {raw}");
                            break;
                    }
                }
            }
        }

        var content = text.ToString();
        if (comment is not null)
        {
            Append($"comment \"{comment}\"");
            content = text.ToString();
        }

        var occurrence = seen.TryGetValue(content, out var n) ? n + 1 : 1;
        seen[content] = occurrence;
        return new FirewallRule
        {
            Family = family,
            Table = table,
            Chain = chain,
            Position = position,
            Packets = packets,
            Bytes = bytes,
            HasCounters = hasCounters,
            Matches = matches,
            Target = target,
            JumpChains = jumps,
            IsGoto = target == "goto",
            TargetOptions = targetOptions,
            Comment = comment,
            Text = content,
            Key = occurrence == 1 ? content : $"{content} #{occurrence}",
            Handle = r.TryGetProperty("handle", out var h) && h.ValueKind == JsonValueKind.Number ? h.GetInt64() : null,
        };
    }

    private static void AddNatOptions(JsonElement v, List<RuleMatch> options)
    {
        if (v.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        foreach (var p in v.EnumerateObject())
        {
            options.Add(new RuleMatch("", p.Name, false, RenderValue(p.Value)));
        }
    }
}
