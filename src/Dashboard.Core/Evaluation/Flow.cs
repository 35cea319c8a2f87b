using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Dashboard.Core.Evaluation;

public enum ConnectionState
{
    New,
    Established,
}

public enum Verdict
{
    Accept,
    Drop,
    Reject,
    Undetermined,
}

/// <summary>
/// A forwarded IPv4 packet to evaluate: where it enters and leaves the host, its addresses, protocol, ports or ICMP
/// type, and its conntrack state. An ICMP flow without a type is an echo request (an echo reply for the reply direction).
/// </summary>
public sealed partial record FlowSpec
{
    public static readonly IReadOnlyList<string> Protocols = ["icmp", "tcp", "udp"];

    public string? InInterface { get; init; }
    public string? OutInterface { get; init; }
    public required string Source { get; init; }
    public required string Destination { get; init; }
    public string Protocol { get; init; } = "icmp";
    public int? SourcePort { get; init; }
    public int? DestinationPort { get; init; }

    /// <summary>ICMP type name or number; null is echo-request (8).</summary>
    public string? IcmpType { get; init; }

    public ConnectionState State { get; init; } = ConnectionState.New;

    [GeneratedRegex("^[A-Za-z0-9_.@:-]{1,15}$", RegexOptions.CultureInvariant)]
    private static partial Regex InterfaceName();

    /// <summary>Every problem with the flow, in words; empty when it can be evaluated.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        foreach (var (what, value) in new[] { ("inInterface", InInterface), ("outInterface", OutInterface) })
        {
            if (value is not null && !InterfaceName().IsMatch(value))
            {
                errors.Add($"{what} must be an interface name (1-15 letters, digits, '_', '.', '-', '@', ':')");
            }
        }

        foreach (var (what, value) in new[] { ("source", Source), ("destination", Destination) })
        {
            if (!TryParseIpv4(value, out _))
            {
                errors.Add($"{what} must be one IPv4 address, such as 172.19.0.2");
            }
        }

        if (!Protocols.Contains(Protocol))
        {
            errors.Add($"protocol must be one of {string.Join(", ", Protocols)}");
        }

        if (SourcePort is < 1 or > 65535 || DestinationPort is < 1 or > 65535)
        {
            errors.Add("ports are 1-65535");
        }

        if ((SourcePort ?? DestinationPort) is not null && Protocol == "icmp")
        {
            errors.Add("ports need protocol tcp or udp");
        }

        if (IcmpType is not null && (Protocol != "icmp" || IcmpTypes.Parse(IcmpType) is null))
        {
            errors.Add("icmpType needs protocol icmp and is a name such as echo-request or a number 0-255");
        }

        return errors;
    }

    /// <summary>True for one IPv4 address in its canonical dotted form.</summary>
    public static bool IsIpv4(string? s) => TryParseIpv4(s, out _);

    internal static bool TryParseIpv4(string? s, out uint value)
    {
        value = 0;
        if (s is null || s.Length > 15 || !IPAddress.TryParse(s, out var a) || a.AddressFamily != AddressFamily.InterNetwork || a.ToString() != s)
        {
            return false;
        }

        value = Ipv4.ToUInt(a);
        return true;
    }
}

internal static class Ipv4
{
    public static uint ToUInt(IPAddress a)
    {
        Span<byte> b = stackalloc byte[4];
        a.TryWriteBytes(b, out _);
        return (uint)(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]);
    }

    public static string ToText(uint v) => $"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}";

    /// <summary>Parses "a.b.c.d" or "a.b.c.d/len" into (network, mask); false for anything else.</summary>
    public static bool TryParsePrefix(string text, out uint network, out uint mask)
    {
        network = mask = 0;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addr = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(addr, out var a) || a.AddressFamily != AddressFamily.InterNetwork)
        {
            return false;
        }

        var len = 32;
        if (slash >= 0)
        {
            var lenText = text[(slash + 1)..];
            if (!int.TryParse(lenText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out len) || len > 32)
            {
                // Dotted masks (iptables -s 10.0.0.0/255.0.0.0).
                if (!IPAddress.TryParse(lenText, out var m) || m.AddressFamily != AddressFamily.InterNetwork)
                {
                    return false;
                }

                mask = ToUInt(m);
                network = ToUInt(a) & mask;
                return true;
            }
        }

        mask = len == 0 ? 0 : uint.MaxValue << (32 - len);
        network = ToUInt(a) & mask;
        return true;
    }
}

/// <summary>ICMP type names as iptables and nft print them.</summary>
internal static class IcmpTypes
{
    private static readonly Dictionary<string, int> Names = new(StringComparer.OrdinalIgnoreCase)
    {
        ["echo-reply"] = 0,
        ["pong"] = 0,
        ["destination-unreachable"] = 3,
        ["source-quench"] = 4,
        ["redirect"] = 5,
        ["echo-request"] = 8,
        ["ping"] = 8,
        ["router-advertisement"] = 9,
        ["router-solicitation"] = 10,
        ["time-exceeded"] = 11,
        ["parameter-problem"] = 12,
        ["timestamp-request"] = 13,
        ["timestamp-reply"] = 14,
    };

    /// <summary>The type number of a name or number ("8", "8/0", "echo-request"); -1 for "any"; null if unknown.</summary>
    public static int? Parse(string text)
    {
        var t = text.Trim();
        var slash = t.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0)
        {
            t = t[..slash];
        }

        if (t.Equals("any", StringComparison.OrdinalIgnoreCase))
        {
            return -1;
        }

        return Names.TryGetValue(t, out var n) ? n
            : int.TryParse(t, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out n) && n <= 255 ? n
            : null;
    }
}
