using System.Net;
using System.Net.Sockets;

namespace Dashboard.Core.Capture;

/// <summary>
/// What kind of traffic a decoded packet is, told from its header fields (EtherType, IP protocol, ICMP type, ports,
/// multicast destination), never from its summary: the names a network engineer uses for the chatter of a bridge
/// (ARP, IGMP, MLD, mDNS, DHCP, STP, LLDP) and the plain protocol for everything else.
/// </summary>
public static class TrafficKind
{
    public const string Arp = "ARP";
    public const string Igmp = "IGMP";
    public const string Mld = "ICMPv6 MLD";
    public const string NeighbourDiscovery = "ICMPv6 ND";
    public const string Mdns = "mDNS";
    public const string Llmnr = "LLMNR";
    public const string Dhcp = "DHCP";
    public const string Dhcpv6 = "DHCPv6";
    public const string Ssdp = "SSDP";
    public const string Stp = "STP/LLC (802.3)";
    public const string Lldp = "LLDP";
    public const string IcmpEchoRequest = "ICMP echo request";
    public const string IcmpEchoReply = "ICMP echo reply";

    public static string Of(DecodedPacket p)
    {
        ArgumentNullException.ThrowIfNull(p);
        switch (p.EtherType)
        {
            case 0x0806:
                return Arp;
            case 0x88cc:
                return Lldp;
            case >= 0 and <= 1500:
                return Stp;
            case 0x0800 or 0x86dd:
                break;
            case < 0:
                return p.Protocol;
            default:
                return $"EtherType 0x{p.EtherType:x4}";
        }

        var v6 = p.EtherType == 0x86dd;
        switch (p.IpProtocol)
        {
            case 2:
                return Igmp;
            case 1 when p.IcmpType == 8:
                return IcmpEchoRequest;
            case 1 when p.IcmpType == 0:
                return IcmpEchoReply;
            case 1:
                return $"ICMP type {p.IcmpType}";
            case 58 when p.IcmpType is 130 or 131 or 132 or 143:
                return Mld;
            case 58 when p.IcmpType is >= 133 and <= 137:
                return NeighbourDiscovery;
            case 58:
                return $"ICMPv6 type {p.IcmpType}";
            case 17 when Port(p, 5353):
                return Mdns;
            case 17 when Port(p, 5355):
                return Llmnr;
            case 17 when Port(p, 67) || Port(p, 68):
                return Dhcp;
            case 17 when Port(p, 546) || Port(p, 547):
                return Dhcpv6;
            case 17 when Port(p, 1900):
                return Ssdp;
            case 6:
                return v6 ? "TCP (IPv6)" : "TCP";
            case 17:
                return v6 ? "UDP (IPv6)" : "UDP";
            case 0 when v6 && IsMulticast(p.Destination):
                // A hop-by-hop options header to a multicast group: how MLD reports travel.
                return Mld;
            default:
                return $"IP protocol {p.IpProtocol}";
        }
    }

    /// <summary>True for a multicast or broadcast destination (IPv4 224/4 or 255.255.255.255, IPv6 ff00::/8).</summary>
    public static bool IsMulticast(string? address)
    {
        if (address is null || !IPAddress.TryParse(address, out var a))
        {
            return false;
        }

        if (a.AddressFamily == AddressFamily.InterNetworkV6)
        {
            return a.IsIPv6Multicast;
        }

        var first = a.GetAddressBytes()[0];
        return first is >= 224 and <= 239 || a.Equals(IPAddress.Broadcast);
    }

    private static bool Port(DecodedPacket p, int port) => p.SourcePort == port || p.DestinationPort == port;
}
