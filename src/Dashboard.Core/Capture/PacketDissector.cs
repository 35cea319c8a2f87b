using System.Buffers.Binary;
using System.Globalization;
using System.Net;

namespace Dashboard.Core.Capture;

/// <summary>One field of a header: its name, its value as a person reads it, and the bytes it occupies in the frame.</summary>
public sealed record PacketField(string Name, string Value, int Offset, int Length);

/// <summary>One header of a frame (Ethernet, IPv4, ICMP…): a one-line summary and its fields, each with its bytes.</summary>
public sealed record PacketLayer(string Name, string Summary, int Offset, int Length, IReadOnlyList<PacketField> Fields);

/// <summary>
/// A frame taken apart header by header, as a Wireshark user reads it: Ethernet (and an 802.1Q tag), ARP, IPv4, IPv6,
/// ICMP, ICMPv6, TCP and UDP, every field with its byte range so the hex view can mark it. Works on the frame's first
/// bytes as kept (<see cref="DecodedPacket.Frame"/>); a header cut short by them is said, never guessed. Hand-written
/// because the view needs each field's offset, which decoding libraries do not give.
/// </summary>
public static class PacketDissector
{
    public static IReadOnlyList<PacketLayer> Dissect(ReadOnlySpan<byte> frame, int originalLength)
    {
        var layers = new List<PacketLayer>();
        if (frame.Length < 14)
        {
            layers.Add(Cut("Ethernet", 0, frame.Length, 14));
            return layers;
        }

        var type = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        var fields = new List<PacketField>
        {
            new("Destination", Mac(frame[..6]), 0, 6),
            new("Source", Mac(frame[6..12]), 6, 6),
        };
        var at = 14;
        if (type == 0x8100 && frame.Length >= 18)
        {
            var tci = BinaryPrimitives.ReadUInt16BigEndian(frame[14..]);
            fields.Add(new("802.1Q tag", $"VLAN {tci & 0x0fff}, priority {tci >> 13}", 12, 4));
            type = BinaryPrimitives.ReadUInt16BigEndian(frame[16..]);
            at = 18;
        }

        fields.Add(new("Type", $"0x{type:x4} ({EtherTypeName(type)})", at - 2, 2));
        layers.Add(new PacketLayer("Ethernet II", $"{Mac(frame[6..12])} → {Mac(frame[..6])}, {EtherTypeName(type)}", 0, at, fields));

        var rest = frame[at..];
        switch (type)
        {
            case 0x0806:
                Arp(layers, rest, at);
                break;
            case 0x0800:
                Ipv4(layers, rest, at);
                break;
            case 0x86dd:
                Ipv6(layers, rest, at);
                break;
        }

        if (frame.Length < originalLength)
        {
            layers.Add(new PacketLayer("Kept bytes", $"the first {frame.Length} of the frame's {originalLength} bytes are kept for this view (the pcap holds as many as the capture's snap length kept)", frame.Length, 0, []));
        }

        return layers;
    }

    private static PacketLayer Cut(string name, int offset, int have, int need) =>
        new(name, $"cut short: {have} of at least {need} bytes kept", offset, have, []);

    private static void Arp(List<PacketLayer> layers, ReadOnlySpan<byte> p, int o)
    {
        if (p.Length < 28)
        {
            layers.Add(Cut("ARP", o, p.Length, 28));
            return;
        }

        var op = BinaryPrimitives.ReadUInt16BigEndian(p[6..]);
        var sender = new IPAddress(p[14..18]);
        var target = new IPAddress(p[24..28]);
        layers.Add(new PacketLayer("ARP", op == 1 ? $"who has {target}? tell {sender}" : op == 2 ? $"{sender} is at {Mac(p[8..14])}" : $"operation {op}", o, 28,
        [
            new("Hardware type", N(BinaryPrimitives.ReadUInt16BigEndian(p)), o, 2),
            new("Protocol type", $"0x{BinaryPrimitives.ReadUInt16BigEndian(p[2..]):x4}", o + 2, 2),
            new("Sizes", $"hardware {p[4]}, protocol {p[5]}", o + 4, 2),
            new("Operation", op switch { 1 => "1 (request)", 2 => "2 (reply)", _ => N(op) }, o + 6, 2),
            new("Sender MAC", Mac(p[8..14]), o + 8, 6),
            new("Sender IP", sender.ToString(), o + 14, 4),
            new("Target MAC", Mac(p[18..24]), o + 18, 6),
            new("Target IP", target.ToString(), o + 24, 4),
        ]));
    }

    private static void Ipv4(List<PacketLayer> layers, ReadOnlySpan<byte> p, int o)
    {
        if (p.Length < 20)
        {
            layers.Add(Cut("IPv4", o, p.Length, 20));
            return;
        }

        var ihl = (p[0] & 0x0f) * 4;
        var total = BinaryPrimitives.ReadUInt16BigEndian(p[2..]);
        var flags = p[6] >> 5;
        var fragment = BinaryPrimitives.ReadUInt16BigEndian(p[6..]) & 0x1fff;
        var protocol = p[9];
        var src = new IPAddress(p[12..16]);
        var dst = new IPAddress(p[16..20]);
        var checksum = BinaryPrimitives.ReadUInt16BigEndian(p[10..]);
        var checksumOk = ihl >= 20 && p.Length >= ihl && Checksum(p[..ihl]) == 0;
        var fields = new List<PacketField>
        {
            new("Version", N(p[0] >> 4), o, 1),
            new("Header length", $"{ihl} bytes", o, 1),
            new("DSCP · ECN", $"{p[1] >> 2} · {p[1] & 3}", o + 1, 1),
            new("Total length", N(total), o + 2, 2),
            new("Identification", $"0x{BinaryPrimitives.ReadUInt16BigEndian(p[4..]):x4}", o + 4, 2),
            new("Flags", string.Join(", ", new[] { (flags & 2) != 0 ? "don't fragment" : null, (flags & 1) != 0 ? "more fragments" : null }.Where(f => f is not null)) is { Length: > 0 } fl ? fl : "none", o + 6, 1),
            new("Fragment offset", N(fragment * 8), o + 6, 2),
            new("Time to live", N(p[8]), o + 8, 1),
            new("Protocol", $"{protocol} ({ProtocolName(protocol)})", o + 9, 1),
            new("Header checksum", $"0x{checksum:x4} ({(ihl >= 20 && p.Length >= ihl ? checksumOk ? "correct" : "wrong" : "not checked")})", o + 10, 2),
            new("Source", src.ToString(), o + 12, 4),
            new("Destination", dst.ToString(), o + 16, 4),
        };
        if (ihl > 20 && p.Length >= ihl)
        {
            fields.Add(new("Options", $"{ihl - 20} bytes", o + 20, ihl - 20));
        }

        layers.Add(new PacketLayer("IPv4", $"{src} → {dst}, {ProtocolName(protocol)}, TTL {p[8]}", o, Math.Min(ihl, p.Length), fields));
        if (ihl < 20 || p.Length < ihl)
        {
            return;
        }

        if (fragment != 0)
        {
            layers.Add(new PacketLayer("Fragment", $"a fragment at offset {fragment * 8}: its transport header is in the first fragment", o + ihl, 0, []));
            return;
        }

        Transport(layers, protocol, p[ihl..], o + ihl, v6: false);
    }

    private static void Ipv6(List<PacketLayer> layers, ReadOnlySpan<byte> p, int o)
    {
        if (p.Length < 40)
        {
            layers.Add(Cut("IPv6", o, p.Length, 40));
            return;
        }

        var first = BinaryPrimitives.ReadUInt32BigEndian(p);
        var next = p[6];
        var src = new IPAddress(p[8..24]);
        var dst = new IPAddress(p[24..40]);
        layers.Add(new PacketLayer("IPv6", $"{src} → {dst}, {ProtocolName(next)}, hop limit {p[7]}", o, 40,
        [
            new("Version", N((int)(first >> 28)), o, 1),
            new("Traffic class", $"0x{(first >> 20) & 0xff:x2}", o, 2),
            new("Flow label", $"0x{first & 0xfffff:x5}", o + 1, 3),
            new("Payload length", N(BinaryPrimitives.ReadUInt16BigEndian(p[4..])), o + 4, 2),
            new("Next header", $"{next} ({ProtocolName(next)})", o + 6, 1),
            new("Hop limit", N(p[7]), o + 7, 1),
            new("Source", src.ToString(), o + 8, 16),
            new("Destination", dst.ToString(), o + 24, 16),
        ]));
        Transport(layers, next, p[40..], o + 40, v6: true);
    }

    private static void Transport(List<PacketLayer> layers, int protocol, ReadOnlySpan<byte> p, int o, bool v6)
    {
        switch (protocol)
        {
            case 1 when !v6:
            case 58 when v6:
                Icmp(layers, p, o, v6);
                break;
            case 6:
                Tcp(layers, p, o);
                break;
            case 17:
                Udp(layers, p, o);
                break;
        }
    }

    private static void Icmp(List<PacketLayer> layers, ReadOnlySpan<byte> p, int o, bool v6)
    {
        var name = v6 ? "ICMPv6" : "ICMP";
        if (p.Length < 4)
        {
            layers.Add(Cut(name, o, p.Length, 8));
            return;
        }

        int type = p[0], code = p[1];
        var echo = v6 ? type is 128 or 129 : type is 8 or 0;
        var fields = new List<PacketField>
        {
            new("Type", $"{type} ({IcmpTypeName(type, v6)})", o, 1),
            new("Code", N(code), o + 1, 1),
            new("Checksum", $"0x{BinaryPrimitives.ReadUInt16BigEndian(p[2..]):x4}", o + 2, 2),
        };
        var summary = IcmpTypeName(type, v6);
        if (echo && p.Length >= 8)
        {
            var id = BinaryPrimitives.ReadUInt16BigEndian(p[4..]);
            var seq = BinaryPrimitives.ReadUInt16BigEndian(p[6..]);
            fields.Add(new("Identifier", $"{id} (0x{id:x4})", o + 4, 2));
            fields.Add(new("Sequence", N(seq), o + 6, 2));
            summary += $", id {id}, seq {seq}";
            if (p.Length > 8)
            {
                fields.Add(new("Data", $"{p.Length - 8} bytes kept", o + 8, p.Length - 8));
            }
        }
        else if (p.Length > 4)
        {
            fields.Add(new(type == 3 && !v6 ? "Rest of header and the packet it answers" : "Rest", $"{p.Length - 4} bytes kept", o + 4, p.Length - 4));
        }

        layers.Add(new PacketLayer(name, summary, o, Math.Min(p.Length, 8), fields));
    }

    private static void Tcp(List<PacketLayer> layers, ReadOnlySpan<byte> p, int o)
    {
        if (p.Length < 20)
        {
            layers.Add(Cut("TCP", o, p.Length, 20));
            return;
        }

        var sport = BinaryPrimitives.ReadUInt16BigEndian(p);
        var dport = BinaryPrimitives.ReadUInt16BigEndian(p[2..]);
        var offset = (p[12] >> 4) * 4;
        var flags = p[13];
        var names = new[] { (0x02, "SYN"), (0x10, "ACK"), (0x01, "FIN"), (0x04, "RST"), (0x08, "PSH"), (0x20, "URG"), (0x40, "ECE"), (0x80, "CWR") }
            .Where(f => (flags & f.Item1) != 0).Select(f => f.Item2).ToList();
        var fields = new List<PacketField>
        {
            new("Source port", N(sport), o, 2),
            new("Destination port", N(dport), o + 2, 2),
            new("Sequence number", BinaryPrimitives.ReadUInt32BigEndian(p[4..]).ToString(CultureInfo.InvariantCulture), o + 4, 4),
            new("Acknowledgment number", BinaryPrimitives.ReadUInt32BigEndian(p[8..]).ToString(CultureInfo.InvariantCulture), o + 8, 4),
            new("Header length", $"{offset} bytes", o + 12, 1),
            new("Flags", $"0x{flags:x2} ({(names.Count == 0 ? "none" : string.Join(", ", names))})", o + 13, 1),
            new("Window", N(BinaryPrimitives.ReadUInt16BigEndian(p[14..])), o + 14, 2),
            new("Checksum", $"0x{BinaryPrimitives.ReadUInt16BigEndian(p[16..]):x4}", o + 16, 2),
            new("Urgent pointer", N(BinaryPrimitives.ReadUInt16BigEndian(p[18..])), o + 18, 2),
        };
        if (offset > 20 && p.Length >= offset)
        {
            fields.Add(new("Options", $"{offset - 20} bytes", o + 20, offset - 20));
        }

        layers.Add(new PacketLayer("TCP", $"{sport} → {dport} [{string.Join(", ", names)}]", o, Math.Min(p.Length, Math.Max(20, offset)), fields));
    }

    private static void Udp(List<PacketLayer> layers, ReadOnlySpan<byte> p, int o)
    {
        if (p.Length < 8)
        {
            layers.Add(Cut("UDP", o, p.Length, 8));
            return;
        }

        var sport = BinaryPrimitives.ReadUInt16BigEndian(p);
        var dport = BinaryPrimitives.ReadUInt16BigEndian(p[2..]);
        layers.Add(new PacketLayer("UDP", $"{sport} → {dport}", o, 8,
        [
            new("Source port", N(sport), o, 2),
            new("Destination port", N(dport), o + 2, 2),
            new("Length", N(BinaryPrimitives.ReadUInt16BigEndian(p[4..])), o + 4, 2),
            new("Checksum", $"0x{BinaryPrimitives.ReadUInt16BigEndian(p[6..]):x4}", o + 6, 2),
        ]));
    }

    /// <summary>The Internet checksum over <paramref name="data"/> (0 when a header holding its own checksum is intact).</summary>
    private static int Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (var i = 0; i + 1 < data.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        }

        if (data.Length % 2 == 1)
        {
            sum += (uint)data[^1] << 8;
        }

        while (sum >> 16 != 0)
        {
            sum = (sum & 0xffff) + (sum >> 16);
        }

        return (int)(~sum & 0xffff);
    }

    private static string N(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Mac(ReadOnlySpan<byte> b) => Convert.ToHexString(b).ToLowerInvariant() is var h
        ? string.Join(':', Enumerable.Range(0, b.Length).Select(i => h.Substring(i * 2, 2))) : "";

    private static string EtherTypeName(int type) => type switch
    {
        0x0800 => "IPv4",
        0x0806 => "ARP",
        0x86dd => "IPv6",
        0x8100 => "802.1Q",
        <= 1500 => "802.3 length",
        _ => "other",
    };

    private static string ProtocolName(int protocol) => protocol switch
    {
        1 => "ICMP",
        2 => "IGMP",
        6 => "TCP",
        17 => "UDP",
        58 => "ICMPv6",
        0 => "hop-by-hop options",
        43 => "routing header",
        44 => "fragment header",
        _ => "other",
    };

    private static string IcmpTypeName(int type, bool v6) => (v6, type) switch
    {
        (false, 0) => "echo reply",
        (false, 3) => "destination unreachable",
        (false, 5) => "redirect",
        (false, 8) => "echo request",
        (false, 11) => "time exceeded",
        (true, 1) => "destination unreachable",
        (true, 3) => "time exceeded",
        (true, 128) => "echo request",
        (true, 129) => "echo reply",
        (true, 133) => "router solicitation",
        (true, 134) => "router advertisement",
        (true, 135) => "neighbour solicitation",
        (true, 136) => "neighbour advertisement",
        (true, 143) => "multicast listener report v2",
        _ => "other",
    };
}
