using System.Globalization;
using System.Text.RegularExpressions;

namespace Dashboard.Core.Firewall;

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
