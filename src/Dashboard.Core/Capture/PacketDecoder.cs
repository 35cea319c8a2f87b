using System.Globalization;
using PacketDotNet;

namespace Dashboard.Core.Capture;

/// <summary>A captured frame decoded: addresses, ports, ICMP echo id and sequence, and a summary in tcpdump's words.</summary>
public sealed record DecodedPacket(
    DateTimeOffset Timestamp,
    int Length,
    string Protocol,
    string? Source,
    string? Destination,
    int? SourcePort,
    int? DestinationPort,
    string? SourceMac,
    string? DestinationMac,
    IcmpEcho? Echo,
    string Summary)
{
    /// <summary>The frame's EtherType (for an 802.3 frame its length field, at most 1500); -1 when there is no Ethernet header.</summary>
    public int EtherType { get; init; } = -1;

    /// <summary>The IP protocol number (IPv6: of the last header decoded), or null for a frame that is not IP.</summary>
    public int? IpProtocol { get; init; }

    /// <summary>ICMP or ICMPv6 type and code, when the packet is one.</summary>
    public int? IcmpType { get; init; }

    public int? IcmpCode { get; init; }

    /// <summary>TCP flags as the header's low byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80).</summary>
    public int? TcpFlags { get; init; }

    /// <summary>
    /// The frame's first bytes (at most <see cref="PacketDecoder.FrameKept"/>: every header of an ordinary frame), for the
    /// packet's detail and hex view; not sent to hub clients (they have the pcap).
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public byte[]? Frame { get; init; }

    /// <summary>The flow this packet belongs to, direction included (for aggregation and filtering).</summary>
    public string FlowKey => SourcePort is null
        ? $"{Protocol} {Source} > {Destination}"
        : $"{Protocol} {Source}:{SourcePort} > {Destination}:{DestinationPort}";
}

/// <summary>An ICMP echo request or reply.</summary>
public sealed record IcmpEcho(bool IsRequest, int Id, int Sequence);

/// <summary>
/// Decodes Ethernet frames with PacketDotNet (ARP, IPv4, IPv6, ICMP echo, TCP, UDP) and writes the one-line summary
/// <c>tcpdump -n</c> prints for them, e.g. <c>IP 172.19.0.2 &gt; 172.18.0.2: ICMP echo request, id 2560, seq 0, length 64</c>.
/// Anything it does not know is still shown, by its EtherType or IP protocol, never dropped.
/// </summary>
public static class PacketDecoder
{
    public const uint LinkTypeEthernet = 1;

    /// <summary>How many of a frame's first bytes a decoded packet keeps for its detail view.</summary>
    public const int FrameKept = 128;

    /// <summary>The packet, with the frame's first bytes kept for its detail view.</summary>
    public static DecodedPacket Decode(PcapRecord record, uint linkType = LinkTypeEthernet) =>
        DecodeFields(record, linkType) with { Frame = record.Data.Length <= FrameKept ? record.Data : record.Data[..FrameKept] };

    private static DecodedPacket DecodeFields(PcapRecord record, uint linkType)
    {
        if (linkType != LinkTypeEthernet)
        {
            return new DecodedPacket(record.Timestamp, record.OriginalLength, "link " + linkType, null, null, null, null, null, null, null,
                $"link type {linkType}, length {record.OriginalLength}");
        }

        // Frames are untrusted input: PacketDotNet may throw from any getter on a malformed one, so all of it is guarded.
        try
        {
            if (record.Data.Length < 14)
            {
                return Undecodable(record, "shorter than an Ethernet header");
            }

            var eth = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, record.Data);
            var srcMac = Mac(eth.SourceHardwareAddress);
            var dstMac = Mac(eth.DestinationHardwareAddress);
            if (eth.Extract<ArpPacket>() is { } arp)
            {
                var summary = arp.Operation switch
                {
                    ArpOperation.Request => $"ARP, Request who-has {arp.TargetProtocolAddress}{TargetMac(arp)} tell {arp.SenderProtocolAddress}, length {record.OriginalLength - 14}",
                    ArpOperation.Response => $"ARP, Reply {arp.SenderProtocolAddress} is-at {Mac(arp.SenderHardwareAddress)}, length {record.OriginalLength - 14}",
                    _ => $"ARP, {arp.Operation}, length {record.OriginalLength - 14}",
                };
                return new DecodedPacket(record.Timestamp, record.OriginalLength, "ARP", arp.SenderProtocolAddress.ToString(), arp.TargetProtocolAddress.ToString(),
                    null, null, srcMac, dstMac, null, summary) { EtherType = (int)eth.Type };
            }

            if (eth.Extract<IPPacket>() is { } ip)
            {
                return DecodeIp(record, ip, srcMac, dstMac) with { EtherType = (int)eth.Type };
            }

            var type = ((ushort)eth.Type).ToString("x4", CultureInfo.InvariantCulture);
            return new DecodedPacket(record.Timestamp, record.OriginalLength, "ethertype 0x" + type, srcMac, dstMac, null, null, srcMac, dstMac, null,
                $"ethertype 0x{type}, length {record.OriginalLength}") { EtherType = (ushort)eth.Type };
        }
        catch (Exception ex)
        {
            return Undecodable(record, ex.GetType().Name);
        }
    }

    private static DecodedPacket DecodeIp(PcapRecord record, IPPacket ip, string srcMac, string dstMac)
    {
        var v6 = ip.Version == IPVersion.IPv6;
        var prefix = v6 ? "IP6" : "IP";
        var src = ip.SourceAddress.ToString();
        var dst = ip.DestinationAddress.ToString();
        var payloadLength = ip.PayloadLength;
        if (!v6 && ip.Extract<IcmpV4Packet>() is { } icmp)
        {
            var code = (ushort)icmp.TypeCode;
            var type = code >> 8;
            if (type is 8 or 0)
            {
                var echo = new IcmpEcho(type == 8, icmp.Id, icmp.Sequence);
                return new DecodedPacket(record.Timestamp, record.OriginalLength, "ICMP", src, dst, null, null, srcMac, dstMac, echo,
                    $"{prefix} {src} > {dst}: ICMP echo {(echo.IsRequest ? "request" : "reply")}, id {echo.Id}, seq {echo.Sequence}, length {payloadLength}")
                { IpProtocol = 1, IcmpType = type, IcmpCode = code & 0xff };
            }

            var what = type == 3 && Unreachable(icmp.PayloadData, code & 0xff) is { } u ? u : $"type {type} code {code & 0xff}";
            return new DecodedPacket(record.Timestamp, record.OriginalLength, "ICMP", src, dst, null, null, srcMac, dstMac, null,
                $"{prefix} {src} > {dst}: ICMP {what}, length {payloadLength}")
            { IpProtocol = 1, IcmpType = type, IcmpCode = code & 0xff };
        }

        if (ip.Extract<TcpPacket>() is { } tcp)
        {
            var data = payloadLength - (tcp.DataOffset * 4);
            var ack = tcp.Acknowledgment ? $", ack {tcp.AcknowledgmentNumber}" : "";
            return new DecodedPacket(record.Timestamp, record.OriginalLength, "TCP", src, dst, tcp.SourcePort, tcp.DestinationPort, srcMac, dstMac, null,
                $"{prefix} {src}.{tcp.SourcePort} > {dst}.{tcp.DestinationPort}: Flags [{TcpFlags(tcp)}], seq {tcp.SequenceNumber}{ack}, win {tcp.WindowSize}, length {Math.Max(0, data)}")
            { IpProtocol = 6, TcpFlags = tcp.Flags & 0xff };
        }

        if (ip.Extract<UdpPacket>() is { } udp)
        {
            return new DecodedPacket(record.Timestamp, record.OriginalLength, "UDP", src, dst, udp.SourcePort, udp.DestinationPort, srcMac, dstMac, null,
                $"{prefix} {src}.{udp.SourcePort} > {dst}.{udp.DestinationPort}: UDP, length {Math.Max(0, udp.Length - 8)}")
            { IpProtocol = 17 };
        }

        if (v6 && ip.Extract<IcmpV6Packet>() is { } icmp6)
        {
            return new DecodedPacket(record.Timestamp, record.OriginalLength, "ICMP6", src, dst, null, null, srcMac, dstMac, null,
                $"{prefix} {src} > {dst}: ICMP6, {Icmp6Name(icmp6.Type)}, length {payloadLength}")
            { IpProtocol = 58, IcmpType = (int)icmp6.Type, IcmpCode = icmp6.Code };
        }

        if (!v6 && ip.Protocol == ProtocolType.Igmp && ip.PayloadData is { Length: >= 8 } igmp)
        {
            return new DecodedPacket(record.Timestamp, record.OriginalLength, "IGMP", src, dst, null, null, srcMac, dstMac, null, $"{prefix} {src} > {dst}: {Igmp(igmp)}")
            { IpProtocol = 2 };
        }

        var proto = ip.Protocol.ToString();
        return new DecodedPacket(record.Timestamp, record.OriginalLength, proto, src, dst, null, null, srcMac, dstMac, null,
            $"{prefix} {src} > {dst}: {proto}, length {payloadLength}")
        { IpProtocol = (int)ip.Protocol };
    }

    /// <summary>
    /// Destination unreachable, from the IPv4 header and first 8 bytes it quotes: "172.18.0.2 udp port 53 unreachable"
    /// (port), "172.18.0.2 protocol 47 unreachable", "host 172.18.0.2 unreachable", as tcpdump words them.
    /// </summary>
    private static string? Unreachable(byte[]? quoted, int code)
    {
        if (quoted is null || quoted.Length < 20 || quoted[0] >> 4 != 4)
        {
            return null;
        }

        var ihl = (quoted[0] & 0x0f) * 4;
        var proto = quoted[9];
        var dst = new System.Net.IPAddress(quoted.AsSpan(16, 4));
        return code switch
        {
            3 when quoted.Length >= ihl + 4 && proto is 6 or 17 =>
                $"{dst} {(proto == 6 ? "tcp" : "udp")} port {(quoted[ihl + 2] << 8) | quoted[ihl + 3]} unreachable",
            2 => $"{dst} protocol {proto} unreachable",
            1 => $"host {dst} unreachable",
            0 => $"net {dst} unreachable",
            _ => null,
        };
    }

    /// <summary>IGMP in tcpdump's words: "igmp v3 report, 1 group record(s)", "igmp v2 report 239.1.2.3", "igmp leave …", "igmp query v3".</summary>
    private static string Igmp(byte[] b) => b[0] switch
    {
        0x11 => b.Length > 8 ? "igmp query v3" : b[1] == 0 ? "igmp query v1" : "igmp query v2",
        0x12 => $"igmp v1 report {new System.Net.IPAddress(b.AsSpan(4, 4))}",
        0x16 => $"igmp v2 report {new System.Net.IPAddress(b.AsSpan(4, 4))}",
        0x17 => $"igmp leave {new System.Net.IPAddress(b.AsSpan(4, 4))}",
        0x22 => $"igmp v3 report, {(b[6] << 8) | b[7]} group record(s)",
        _ => $"igmp type 0x{b[0]:x2}",
    };

    /// <summary>Flags as tcpdump prints them: S, F, R, P, U, E, W and '.' for ACK.</summary>
    private static string TcpFlags(TcpPacket t)
    {
        var s = "";
        s += t.Synchronize ? "S" : "";
        s += t.Finished ? "F" : "";
        s += t.Reset ? "R" : "";
        s += t.Push ? "P" : "";
        s += t.Urgent ? "U" : "";
        s += t.ExplicitCongestionNotificationEcho ? "E" : "";
        s += t.CongestionWindowReduced ? "W" : "";
        s += t.Acknowledgment ? "." : "";
        return s.Length == 0 ? "none" : s;
    }

    private static string Icmp6Name(IcmpV6Type type) => type switch
    {
        IcmpV6Type.EchoRequest => "echo request",
        IcmpV6Type.EchoReply => "echo reply",
        IcmpV6Type.RouterSolicitation => "router solicitation",
        IcmpV6Type.RouterAdvertisement => "router advertisement",
        IcmpV6Type.NeighborSolicitation => "neighbor solicitation",
        IcmpV6Type.NeighborAdvertisement => "neighbor advertisement",
        _ => type.ToString(),
    };

    /// <summary>tcpdump names the target hardware address of a request only when it is not all zeros.</summary>
    private static string TargetMac(ArpPacket arp) =>
        arp.TargetHardwareAddress.GetAddressBytes().Any(b => b != 0) ? $" ({Mac(arp.TargetHardwareAddress)})" : "";

    private static string Mac(System.Net.NetworkInformation.PhysicalAddress a) =>
        string.Join(':', a.GetAddressBytes().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

    private static DecodedPacket Undecodable(PcapRecord record, string why) =>
        new(record.Timestamp, record.OriginalLength, "undecodable", null, null, null, null, null, null, null, $"undecodable frame ({why}), length {record.OriginalLength}");
}
