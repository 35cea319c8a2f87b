using System.Globalization;
using System.Text.RegularExpressions;

namespace Dashboard.Core.Firewall;

public enum TraceStepKind
{
    Rule,
    Policy,
    Return,
}

/// <summary>
/// One line of a packet's path as the kernel reported it: a rule that matched (with its verdict, CONTINUE for a
/// non-terminal target such as TRACE or LOG), a chain's policy, or an implicit return at a chain's end.
/// <see cref="Position"/> is the rule's 1-based number in its chain, resolved against the ruleset (null if not found).
/// </summary>
public sealed record TraceStep(string Table, string Chain, TraceStepKind Kind, string Verdict, string? JumpTarget, string? RuleText, int? Position = null)
{
    public bool IsTerminal => Verdict is "ACCEPT" or "DROP" or "REJECT" or "QUEUE";

    /// <summary>How the path reads in the UI: <c>filter DOCKER-ISOLATION-STAGE-2 #2 DROP</c>, <c>filter FORWARD policy ACCEPT</c>.</summary>
    public string Label => Kind switch
    {
        TraceStepKind.Policy => $"{Table} {Chain} policy {Verdict}",
        TraceStepKind.Return => $"{Table} {Chain} end, return",
        _ => $"{Table} {Chain} {(Position is { } p ? "#" + p.ToString(CultureInfo.InvariantCulture) : "(rule not in the last read)")} {Verdict}{(JumpTarget is null ? "" : " " + JumpTarget)}",
    };
}

/// <summary>
/// A traced packet: its headers as first seen (before any NAT) and every step of its path through the hooks.
/// Packets are told apart by source address and IP identification, which stay the same from raw PREROUTING to
/// POSTROUTING (the kernel's trace id changes between hooks).
/// </summary>
public sealed record TracedPacket(string Key, DateTimeOffset SeenAt, string? InInterface, string? OutInterface, string Source, string Destination, int Length, int IpId, IReadOnlyList<TraceStep> Steps)
{
    /// <summary>The step that decided the packet's fate in the filter table (or a DROP anywhere); null while none has.</summary>
    public TraceStep? Decision =>
        Steps.LastOrDefault(s => s.IsTerminal && s.Table == "filter")
        ?? Steps.FirstOrDefault(s => s.Verdict is "DROP" or "REJECT");
}

/// <summary>
/// Reads <c>xtables-monitor --trace</c> output line by line (<c>PACKET: 2 a59d8df1 IN=br-x ... SRC=... DST=... ID=62467</c>
/// followed by <c>TRACE: 2 a59d8df1 filter:DOCKER-ISOLATION-STAGE-2:rule:0x11e1e:DROP  -4 -t filter -A ... -j DROP</c>)
/// and keeps the most recent packets with their paths. Lines it does not understand are counted, never guessed at.
/// <paramref name="accept"/> picks which new packets (by source and destination as first seen) belong to this trace:
/// the monitor reports every traced packet on the host, including other traces'.
/// </summary>
public sealed partial class XtablesTraceParser(int maxPackets = 500, Func<string, string, bool>? accept = null)
{
    private readonly Dictionary<string, string> _keyByTraceId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TracedPacket> _packets = new(StringComparer.Ordinal);
    private readonly LinkedList<string> _order = new();

    public long UnparsedLines { get; private set; }

    public IReadOnlyCollection<TracedPacket> Packets => _order.Select(k => _packets[k]).ToList();

    [GeneratedRegex(@"^\s*PACKET:\s+(?<fam>\d+)\s+(?<id>[0-9a-f]+)\s+(?<rest>.*)$", RegexOptions.CultureInvariant)]
    private static partial Regex PacketLine();

    [GeneratedRegex(@"^\s*TRACE:\s+(?<fam>\d+)\s+(?<id>[0-9a-f]+)\s+(?<table>[a-z]+):(?<chain>.+?):(?<kind>rule|policy|return)(?::(?<handle>0x[0-9a-f]+))?(?::(?<verdict>[^\s:]+)(?::(?<target>\S+))?)?(?:\s+(?<text>.*))?$", RegexOptions.CultureInvariant)]
    private static partial Regex TraceLine();

    [GeneratedRegex(@"^-[46]\s+-t\s+\S+\s+", RegexOptions.CultureInvariant)]
    private static partial Regex FamilyTablePrefix();

    /// <summary>Reads one line; returns the packet it added to or created, or null for lines that belong to none.</summary>
    public TracedPacket? Feed(string line, DateTimeOffset now, Func<string, string, string, int?>? positionOf = null)
    {
        if (PacketLine().Match(line) is { Success: true } pm)
        {
            var fields = Fields(pm.Groups["rest"].Value);
            if (!fields.TryGetValue("SRC", out var src) || !fields.TryGetValue("DST", out var dst))
            {
                UnparsedLines++;
                return null;
            }

            var ipId = fields.TryGetValue("ID", out var idText) && int.TryParse(idText, CultureInfo.InvariantCulture, out var i) ? i : 0;
            var key = $"{pm.Groups["fam"].Value} {src} id {ipId}";
            _keyByTraceId[pm.Groups["id"].Value] = key;
            if (_packets.TryGetValue(key, out var known))
            {
                // The same packet at a later hook: keep where it was first seen, learn its output interface.
                var updated = known with { OutInterface = fields.GetValueOrDefault("OUT") ?? known.OutInterface };
                _packets[key] = updated;
                return updated;
            }

            if (accept is not null && !accept(src, dst))
            {
                return null;
            }

            var length = fields.TryGetValue("LEN", out var len) && int.TryParse(len, CultureInfo.InvariantCulture, out var l) ? l : 0;
            var packet = new TracedPacket(key, now, fields.GetValueOrDefault("IN"), fields.GetValueOrDefault("OUT"), src, dst, length, ipId, []);
            _packets[key] = packet;
            _order.AddLast(key);
            while (_order.Count > maxPackets)
            {
                _packets.Remove(_order.First!.Value);
                _order.RemoveFirst();
            }

            if (_keyByTraceId.Count > maxPackets * 8)
            {
                _keyByTraceId.Clear();
                _keyByTraceId[pm.Groups["id"].Value] = key;
            }

            return packet;
        }

        if (TraceLine().Match(line) is { Success: true } tm)
        {
            if (!_keyByTraceId.TryGetValue(tm.Groups["id"].Value, out var key) || !_packets.TryGetValue(key, out var packet))
            {
                return null;
            }

            var table = tm.Groups["table"].Value;
            var chain = tm.Groups["chain"].Value;
            var kind = tm.Groups["kind"].Value switch { "policy" => TraceStepKind.Policy, "return" => TraceStepKind.Return, _ => TraceStepKind.Rule };
            var (verdict, target) = Verdict(tm.Groups["verdict"].Value, tm.Groups["target"].Success ? tm.Groups["target"].Value : null);
            var text = tm.Groups["text"].Success && tm.Groups["text"].Value.Trim() is { Length: > 0 } t ? FamilyTablePrefix().Replace(t, "") : null;
            var position = kind == TraceStepKind.Rule && text is not null ? positionOf?.Invoke(table, chain, text) : null;
            var step = new TraceStep(table, chain, kind, verdict, target, text, position);
            var updated = packet with { Steps = [.. packet.Steps, step] };
            _packets[key] = updated;
            return updated;
        }

        if (line.Trim().Length > 0)
        {
            UnparsedLines++;
        }

        return null;
    }

    /// <summary>Fills in positions still unknown in a packet's steps (after the ruleset was read again); returns the packet as it now is.</summary>
    public TracedPacket? Resolve(string key, Func<string, string, string, int?> positionOf)
    {
        if (!_packets.TryGetValue(key, out var packet) || packet.Steps.All(s => s.Position is not null || s.RuleText is null || s.Kind != TraceStepKind.Rule))
        {
            return packet;
        }

        var updated = packet with { Steps = packet.Steps.Select(s => s is { Kind: TraceStepKind.Rule, Position: null, RuleText: { } t } ? s with { Position = positionOf(s.Table, s.Chain, t) } : s).ToList() };
        _packets[key] = updated;
        return updated;
    }

    /// <summary>xtables-monitor prints NFT_RETURN and NFT_BREAK as raw numbers.</summary>
    private static (string Verdict, string? Target) Verdict(string verdict, string? target) => verdict switch
    {
        "0xfffffffb" => ("RETURN", null),
        "0xfffffffe" => ("BREAK", null),
        _ => (verdict, target),
    };

    private static Dictionary<string, string> Fields(string rest)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in rest.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                d[part[..eq]] = part[(eq + 1)..];
            }
        }

        return d;
    }
}

/// <summary>Finds a traced rule's position in a ruleset by its specification (the same tokens as <c>iptables-save</c> prints).</summary>
public sealed class TraceRuleLocator(Ruleset ruleset)
{
    private readonly Dictionary<(string Table, string Chain, string Spec), int> _positions = Build(ruleset);

    public int? PositionOf(string table, string chain, string ruleText)
    {
        try
        {
            return _positions.TryGetValue((table, chain, string.Join('\u0001', IptablesSaveReader.SpecArguments(ruleText))), out var p) ? p : null;
        }
        catch (RulesetFormatException)
        {
            return null;
        }
    }

    private static Dictionary<(string, string, string), int> Build(Ruleset ruleset)
    {
        var d = new Dictionary<(string, string, string), int>();
        foreach (var r in ruleset.Rules.Where(r => r.Family == TableFamily.Ipv4 && r.Text.StartsWith("-A ", StringComparison.Ordinal)))
        {
            d.TryAdd((r.Table, r.Chain, string.Join('\u0001', IptablesSaveReader.SpecArguments(r.Text))), r.Position);
        }

        return d;
    }
}
