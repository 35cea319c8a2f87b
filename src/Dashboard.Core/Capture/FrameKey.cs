using System.Buffers.Binary;

namespace Dashboard.Core.Capture;

/// <summary>
/// A frame's flow identity read straight from its header bytes, without allocating: the fields
/// <see cref="DecodedPacket.FlowKey"/> is made of (EtherType, IP protocol, addresses, ports). Only the common frames are
/// read this way: Ethernet II carrying ARP (IPv4 over Ethernet), IPv4 unfragmented with TCP, UDP or ICMP, IPv6 whose
/// next header is TCP, UDP or ICMPv6, captured whole, with lengths that agree (IP total or payload length within the
/// frame, a TCP data offset within the segment, a UDP length within the datagram). Anything else (VLAN tags, IPv6
/// extension headers, fragments, other protocols, frames cut by the snapshot length, inconsistent lengths, UDP on the
/// ports PacketDotNet decodes tunnels from, other link types) is not read here: <see cref="TryRead"/> says false and the
/// caller decodes that frame whole. Two frames with the same key always have the same decoded flow key.
/// </summary>
public readonly record struct FrameKey(ushort EtherType, byte Protocol, UInt128 Source, UInt128 Destination, ushort SourcePort, ushort DestinationPort)
{
    private const int Ethernet = 14;

    /// <summary>UDP ports whose payload PacketDotNet decodes as a tunnel (L2TP, Teredo): the inner packet would name the flow.</summary>
    private static bool TunnelPort(ushort port) => port is 1701 or 3544;

    public static bool TryRead(ReadOnlySpan<byte> frame, int originalLength, uint linkType, out FrameKey key)
    {
        key = default;
        if (linkType != PacketDecoder.LinkTypeEthernet || frame.Length < Ethernet || frame.Length < originalLength)
        {
            return false;
        }

        var etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        var l3 = frame[Ethernet..];
        switch (etherType)
        {
            case 0x0800:
                return TryIpv4(l3, out key);
            case 0x86dd:
                return TryIpv6(l3, out key);
            case 0x0806:
                // Hardware Ethernet (1), protocol IPv4, address lengths 6 and 4: sender and target protocol addresses.
                if (l3.Length < 28 || BinaryPrimitives.ReadUInt16BigEndian(l3) != 1 || BinaryPrimitives.ReadUInt16BigEndian(l3[2..]) != 0x0800 || l3[4] != 6 || l3[5] != 4)
                {
                    return false;
                }

                key = new FrameKey(etherType, 0, V4(l3[14..]), V4(l3[24..]), 0, 0);
                return true;
            default:
                return false;
        }
    }

    private static bool TryIpv4(ReadOnlySpan<byte> ip, out FrameKey key)
    {
        key = default;
        if (ip.Length < 20 || ip[0] >> 4 != 4)
        {
            return false;
        }

        var ihl = (ip[0] & 0x0f) * 4;
        var total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        var flagsAndOffset = BinaryPrimitives.ReadUInt16BigEndian(ip[6..]);
        if (ihl < 20 || total < ihl || total > ip.Length || (flagsAndOffset & 0x3fff) != 0)
        {
            return false; // a bad header or total length, or a fragment (more fragments, or an offset): decoded whole
        }

        var protocol = ip[9];
        var l4 = ip[ihl..total];
        return protocol switch
        {
            1 when l4.Length >= 8 => Make(0x0800, protocol, V4(ip[12..]), V4(ip[16..]), 0, 0, out key),
            6 when TcpComplete(l4) => Make(0x0800, protocol, V4(ip[12..]), V4(ip[16..]), Port(l4), Port(l4[2..]), out key),
            17 when UdpComplete(l4) => Make(0x0800, protocol, V4(ip[12..]), V4(ip[16..]), Port(l4), Port(l4[2..]), out key),
            _ => false,
        };
    }

    private static bool TryIpv6(ReadOnlySpan<byte> ip, out FrameKey key)
    {
        key = default;
        if (ip.Length < 40 || ip[0] >> 4 != 6)
        {
            return false;
        }

        var payload = BinaryPrimitives.ReadUInt16BigEndian(ip[4..]);
        if (payload == 0 || 40 + payload > ip.Length)
        {
            return false; // a jumbogram or a payload length beyond the frame
        }

        var next = ip[6];
        var l4 = ip.Slice(40, payload);
        var src = BinaryPrimitives.ReadUInt128BigEndian(ip[8..]);
        var dst = BinaryPrimitives.ReadUInt128BigEndian(ip[24..]);
        return next switch
        {
            6 when TcpComplete(l4) => Make(0x86dd, next, src, dst, Port(l4), Port(l4[2..]), out key),
            17 when UdpComplete(l4) => Make(0x86dd, next, src, dst, Port(l4), Port(l4[2..]), out key),
            58 when l4.Length >= 4 => Make(0x86dd, next, src, dst, 0, 0, out key),
            _ => false,
        };
    }

    /// <summary>A TCP header whose data offset is at least 5 words and within the segment.</summary>
    private static bool TcpComplete(ReadOnlySpan<byte> l4) => l4.Length >= 20 && (l4[12] >> 4) * 4 is var offset && offset >= 20 && offset <= l4.Length;

    /// <summary>A UDP header whose length field covers the header and stays within the datagram, on no tunnel port.</summary>
    private static bool UdpComplete(ReadOnlySpan<byte> l4) => l4.Length >= 8 && BinaryPrimitives.ReadUInt16BigEndian(l4[4..]) is var length && length >= 8 && length <= l4.Length
        && !TunnelPort(Port(l4)) && !TunnelPort(Port(l4[2..]));

    private static bool Make(ushort etherType, byte protocol, UInt128 src, UInt128 dst, ushort sport, ushort dport, out FrameKey key)
    {
        key = new FrameKey(etherType, protocol, src, dst, sport, dport);
        return true;
    }

    private static UInt128 V4(ReadOnlySpan<byte> b) => BinaryPrimitives.ReadUInt32BigEndian(b);

    private static ushort Port(ReadOnlySpan<byte> b) => BinaryPrimitives.ReadUInt16BigEndian(b);
}
