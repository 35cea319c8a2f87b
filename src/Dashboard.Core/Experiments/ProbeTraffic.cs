using System.Globalization;
using Dashboard.Core.Capture;

namespace Dashboard.Core.Experiments;

/// <summary>A probe's flow as the run sent it: from a container's address to an address (a port for TCP).</summary>
public sealed record ProbeFlow(string Kind, string From, string To, string SourceAddress, string DestinationAddress, int? Port)
{
    public bool IsPing => Kind == "ping";

    public string Label => $"{Kind} {From} → {To}";
}

/// <summary>An address of the host itself, with what it is (e.g. "gateway of net1").</summary>
public sealed record HostAddress(string Address, string Description);

/// <summary>A packet as a run captured it, on a network's bridge.</summary>
public sealed record SeenPacket(string Network, DecodedPacket Packet);

public enum FlowDirection
{
    Request,
    Reply,
}

/// <summary>The probe (index into the probes) and direction a captured packet belongs to.</summary>
public sealed record FlowMembership(int Probe, FlowDirection Direction);

/// <summary>
/// An address of a probe's flow that a bridge saw rewritten: the request's source (source NAT, e.g. MASQUERADE) or
/// destination (DNAT), or the reply still addressed to the rewritten address. <see cref="Packets"/> is how many
/// packets showed it.
/// </summary>
public sealed record NatRewrite(string Network, int Probe, string ProbeLabel, bool IsPing, FlowDirection Direction, bool IsSource, string Original, string Rewritten, string? RewrittenIs, int Packets)
{
    /// <summary>e.g. "on net1: ping c2 → c1, echo request: source 172.19.0.2 → 172.18.0.1 (gateway of net1), 3 packets".</summary>
    public string Describe()
    {
        var what = (IsPing, Direction) switch
        {
            (true, FlowDirection.Request) => "echo request",
            (true, FlowDirection.Reply) => "echo reply",
            (false, FlowDirection.Request) => "request",
            _ => "reply",
        };
        var field = IsSource ? "source" : "destination";
        var nat = (Direction, IsSource) switch
        {
            (FlowDirection.Request, true) => "source NAT",
            (FlowDirection.Request, false) => "destination NAT",
            (FlowDirection.Reply, false) => "addressed to the rewritten source",
            _ => "from the rewritten destination",
        };
        var note = RewrittenIs is null ? "" : $" ({RewrittenIs})";
        var count = Packets == 1 ? "1 packet" : string.Create(CultureInfo.InvariantCulture, $"{Packets} packets");
        return $"on {Network}: {ProbeLabel}, {what}: {field} {Original} → {Rewritten}{note}, {nat}, {count}";
    }
}

/// <summary>Packets on a bridge outside every probe's flow, counted per kind (IGMP, ARP, MLD, mDNS, ...).</summary>
public sealed record OtherTraffic(string Network, string Kind, int Packets);

/// <summary>What a run's captures say about its probes: each packet's flow (or none), the NAT seen, and the other traffic.</summary>
public sealed record TrafficAnalysis(IReadOnlyList<FlowMembership?> Flows, IReadOnlyList<NatRewrite> Nat, IReadOnlyList<OtherTraffic> Other);

/// <summary>
/// Tells which captured packets belong to which probe's flow, from decoded header fields only: the protocol, the probe's
/// destination, the ICMP echo id (or TCP source port) its requests carried where they left the source container, and
/// addresses that are the probe's own or the host's. A packet is NAT evidence only inside a flow: a bridge's own IGMP
/// report from its gateway, ARP, MLD or mDNS never is.
/// </summary>
public static class ProbeTraffic
{
    public static TrafficAnalysis Analyse(IReadOnlyList<SeenPacket> packets, IReadOnlyList<ProbeFlow> probes, IReadOnlyList<HostAddress> host)
    {
        ArgumentNullException.ThrowIfNull(packets);
        ArgumentNullException.ThrowIfNull(probes);
        ArgumentNullException.ThrowIfNull(host);
        var hostAddresses = host.GroupBy(h => h.Address, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Description, StringComparer.Ordinal);

        // 1. Where each request left its container unchanged: the echo ids (or source ports) that mark the probe's flow.
        var marks = probes.Select(_ => new HashSet<int>()).ToArray();
        foreach (var s in packets)
        {
            for (var i = 0; i < probes.Count; i++)
            {
                var pr = probes[i];
                var p = s.Packet;
                if (p.Source == pr.SourceAddress && p.Destination == pr.DestinationAddress && IsRequest(p, pr) && Mark(p, pr) is { } m)
                {
                    marks[i].Add(m);
                }
            }
        }

        // 2. Each packet's flow, and the rewrites it shows.
        var flows = new FlowMembership?[packets.Count];
        var rewrites = new Dictionary<(string Network, int Probe, FlowDirection Direction, bool IsSource, string Original, string Rewritten), int>();
        var other = new Dictionary<(string Network, string Kind), int>();
        var rewrittenDestinations = probes.Select(_ => new HashSet<string>(StringComparer.Ordinal)).ToArray();
        for (var k = 0; k < packets.Count; k++)
        {
            var (network, p) = (packets[k].Network, packets[k].Packet);
            for (var i = 0; i < probes.Count && flows[k] is null; i++)
            {
                var pr = probes[i];
                if (marks[i].Count == 0)
                {
                    // No request was seen leaving the container: only the unrewritten flow itself can be told, never NAT.
                    flows[k] = p.Source == pr.SourceAddress && p.Destination == pr.DestinationAddress && IsRequest(p, pr) ? new FlowMembership(i, FlowDirection.Request)
                        : p.Source == pr.DestinationAddress && p.Destination == pr.SourceAddress && IsReply(p, pr) ? new FlowMembership(i, FlowDirection.Reply)
                        : null;
                    continue;
                }

                if (Mark(p, pr) is not { } mark || !marks[i].Contains(mark))
                {
                    continue;
                }

                if (IsRequest(p, pr) && p.Source is { } src && p.Destination is { } dst
                    && (src == pr.SourceAddress || hostAddresses.ContainsKey(src))
                    && (dst == pr.DestinationAddress || (!TrafficKind.IsMulticast(dst) && dst != src)))
                {
                    flows[k] = new FlowMembership(i, FlowDirection.Request);
                    if (src != pr.SourceAddress)
                    {
                        Count(rewrites, (network, i, FlowDirection.Request, true, pr.SourceAddress, src));
                    }

                    if (dst != pr.DestinationAddress)
                    {
                        rewrittenDestinations[i].Add(dst);
                        Count(rewrites, (network, i, FlowDirection.Request, false, pr.DestinationAddress, dst));
                    }
                }
                else if (IsReply(p, pr) && p.Source is { } rsrc && p.Destination is { } rdst
                    && (rsrc == pr.DestinationAddress || rewrittenDestinations[i].Contains(rsrc))
                    && (rdst == pr.SourceAddress || hostAddresses.ContainsKey(rdst)))
                {
                    flows[k] = new FlowMembership(i, FlowDirection.Reply);
                    if (rdst != pr.SourceAddress)
                    {
                        Count(rewrites, (network, i, FlowDirection.Reply, false, pr.SourceAddress, rdst));
                    }

                    if (rsrc != pr.DestinationAddress)
                    {
                        Count(rewrites, (network, i, FlowDirection.Reply, true, pr.DestinationAddress, rsrc));
                    }
                }
            }

            if (flows[k] is null)
            {
                var key = (network, TrafficKind.Of(p));
                other[key] = other.GetValueOrDefault(key) + 1;
            }
        }

        var nat = rewrites.Select(kv => new NatRewrite(kv.Key.Network, kv.Key.Probe, probes[kv.Key.Probe].Label, probes[kv.Key.Probe].IsPing, kv.Key.Direction, kv.Key.IsSource, kv.Key.Original, kv.Key.Rewritten,
                hostAddresses.GetValueOrDefault(kv.Key.Rewritten), kv.Value))
            .OrderBy(n => n.Probe).ThenBy(n => n.Direction).ThenBy(n => n.Network, StringComparer.Ordinal).ThenBy(n => n.IsSource ? 0 : 1)
            .ToList();
        var others = other.Select(kv => new OtherTraffic(kv.Key.Network, kv.Key.Kind, kv.Value))
            .OrderBy(o => o.Network, StringComparer.Ordinal).ThenByDescending(o => o.Packets).ThenBy(o => o.Kind, StringComparer.Ordinal)
            .ToList();
        return new TrafficAnalysis(flows, nat, others);
    }

    private static void Count<TKey>(Dictionary<TKey, int> counts, TKey key)
        where TKey : notnull => counts[key] = counts.GetValueOrDefault(key) + 1;

    private static bool IsRequest(DecodedPacket p, ProbeFlow probe) => probe.IsPing
        ? p.IpProtocol == 1 && p.IcmpType == 8 && p.Echo is not null
        : p.IpProtocol == 6 && p.DestinationPort == probe.Port && p.SourcePort is not null;

    private static bool IsReply(DecodedPacket p, ProbeFlow probe) => probe.IsPing
        ? p.IpProtocol == 1 && p.IcmpType == 0 && p.Echo is not null
        : p.IpProtocol == 6 && p.SourcePort == probe.Port && p.DestinationPort is not null;

    /// <summary>What ties a packet to one probe process: the ICMP echo id, or the TCP port on the probe's side.</summary>
    private static int? Mark(DecodedPacket p, ProbeFlow probe) => probe.IsPing
        ? p.Echo?.Id
        : p.SourcePort == probe.Port ? p.DestinationPort : p.SourcePort;
}
