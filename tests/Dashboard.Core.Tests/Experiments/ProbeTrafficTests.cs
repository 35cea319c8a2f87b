using Dashboard.Core.Capture;
using Dashboard.Core.Experiments;

namespace Dashboard.Core.Tests.Experiments;

/// <summary>
/// Recorded on Docker 20.10 (Fixtures/pcap/record-seed-noisy.sh): c2 (172.29.2.2, net2) pings c1 (172.29.1.2, net1)
/// three times through a DOCKER-USER ACCEPT pair, while the host joins a multicast group on net1's gateway (IGMP
/// reports from 172.29.1.1), sends an mDNS query from it, and both bridges send their own MLD and ND.
/// </summary>
public class ProbeTrafficTests
{
    private static readonly ProbeFlow Ping = new("ping", "c2", "c1", "172.29.2.2", "172.29.1.2", null);

    private static readonly HostAddress[] Host = [new("172.29.1.1", "gateway of net1"), new("172.29.2.1", "gateway of net2")];

    private static async Task<List<SeenPacket>> ReadAsync(string network)
    {
        await using var stream = File.OpenRead(Path.Combine(AppContext.BaseDirectory, "Fixtures", "pcap", $"seed-docker-user-{network}.pcap"));
        var reader = new PcapStreamReader(stream);
        var header = await reader.ReadHeaderAsync() ?? throw new InvalidDataException("empty fixture");
        var list = new List<SeenPacket>();
        while (await reader.ReadRecordAsync() is { } r)
        {
            list.Add(new SeenPacket(network, PacketDecoder.Decode(r, header.LinkType)));
        }

        return list;
    }

    /// <summary>Both bridges merged in kernel-time order, as a run keeps them.</summary>
    private static async Task<List<SeenPacket>> BothAsync() =>
        [.. (await ReadAsync("net1")).Concat(await ReadAsync("net2")).OrderBy(p => p.Packet.Timestamp)];

    [Fact]
    public async Task Analyse_DockerUserRun_NamesTheMasqueradedEchoRequestOnly()
    {
        var packets = await BothAsync();

        var result = ProbeTraffic.Analyse(packets, [Ping], Host);

        var nat = Assert.Single(result.Nat);
        Assert.Equal(("net1", FlowDirection.Request, true, "172.29.2.2", "172.29.1.1", "gateway of net1", 3),
            (nat.Network, nat.Direction, nat.IsSource, nat.Original, nat.Rewritten, nat.RewrittenIs, nat.Packets));
        Assert.Equal("on net1: ping c2 → c1, echo request: source 172.29.2.2 → 172.29.1.1 (gateway of net1), source NAT, 3 packets", nat.Describe());

        // Each bridge carried the three requests and the three replies of the probe's flow.
        var inFlow = packets.Zip(result.Flows).Where(x => x.Second is not null).GroupBy(x => (x.First.Network, x.Second!.Direction)).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(3, inFlow[("net1", FlowDirection.Request)]);
        Assert.Equal(3, inFlow[("net1", FlowDirection.Reply)]);
        Assert.Equal(3, inFlow[("net2", FlowDirection.Request)]);
        Assert.Equal(3, inFlow[("net2", FlowDirection.Reply)]);
    }

    [Fact]
    public async Task Analyse_GatewayIgmpArpMldAndMdns_AreOtherTrafficAndNeverNat()
    {
        // The isolated run's view: only the requests on net2 plus everything that is not ICMP echo on both bridges.
        var packets = (await BothAsync()).Where(p => p.Packet.Echo is null || (p.Network == "net2" && p.Packet.Echo.IsRequest)).ToList();
        Assert.Contains(packets, p => p.Packet.Source == "172.29.1.1" && p.Packet.Destination == "224.0.0.22");
        Assert.Contains(packets, p => p.Packet.Source == "172.29.1.1" && p.Packet.Destination == "224.0.0.251");

        var result = ProbeTraffic.Analyse(packets, [Ping], Host);

        Assert.Empty(result.Nat);
        var other = result.Other.ToDictionary(o => (o.Network, o.Kind), o => o.Packets);
        Assert.Equal(3, other[("net1", TrafficKind.Igmp)]);
        Assert.Equal(1, other[("net1", TrafficKind.Mdns)]);
        Assert.Equal(2, other[("net1", TrafficKind.Arp)]);
        Assert.Equal(3, other[("net1", TrafficKind.Mld)]);
        Assert.Equal(3, other[("net2", TrafficKind.Mld)]);
        Assert.Equal(1, other[("net2", TrafficKind.NeighbourDiscovery)]);
        Assert.All(packets.Zip(result.Flows).Where(x => x.First.Packet.Echo is null), x => Assert.Null(x.Second));
    }

    [Fact]
    public async Task Analyse_EchoFromTheGatewayWithAnotherId_IsNotTheProbesFlow()
    {
        // The host itself pinging c1 from net1's gateway: same protocol and destination, but not the probe's echo id.
        var packets = await BothAsync();
        var request = packets.First(p => p.Network == "net1" && p.Packet.Echo is { IsRequest: true });
        var foreign = request with { Packet = request.Packet with { Echo = request.Packet.Echo! with { Id = 4242 } } };

        var result = ProbeTraffic.Analyse([.. packets.Where(p => p.Packet.Echo is null || p.Network == "net2"), foreign], [Ping], Host);

        Assert.Empty(result.Nat);
        Assert.Null(result.Flows[^1]);
    }

    [Fact]
    public async Task Analyse_NoRequestSeenLeavingTheContainer_ClaimsNoNat()
    {
        // Only net1 captured: the probe's echo id is unknown, so a gateway-sourced request cannot be tied to the probe.
        var result = ProbeTraffic.Analyse(await ReadAsync("net1"), [Ping], Host);

        Assert.Empty(result.Nat);
    }

    [Fact]
    public async Task Decode_KernelTimestamps_KeepOrderAcrossBridgesWithinATenthOfAMillisecond()
    {
        var packets = await BothAsync();
        var requestOnNet2 = packets.First(p => p.Network == "net2" && p.Packet.Echo is { IsRequest: true, Sequence: 0 });
        var requestOnNet1 = packets.First(p => p.Network == "net1" && p.Packet.Echo is { IsRequest: true, Sequence: 0 });
        var replyOnNet1 = packets.First(p => p.Network == "net1" && p.Packet.Echo is { IsRequest: false, Sequence: 0 });
        var replyOnNet2 = packets.First(p => p.Network == "net2" && p.Packet.Echo is { IsRequest: false, Sequence: 0 });

        // The request crosses the host in tens of microseconds: all four sit within 0.2 ms, yet in causal order.
        Assert.True((replyOnNet2.Packet.Timestamp - requestOnNet2.Packet.Timestamp).TotalMilliseconds < 0.2);
        Assert.True(requestOnNet2.Packet.Timestamp < requestOnNet1.Packet.Timestamp);
        Assert.True(requestOnNet1.Packet.Timestamp < replyOnNet1.Packet.Timestamp);
        Assert.True(replyOnNet1.Packet.Timestamp < replyOnNet2.Packet.Timestamp);
        Assert.Equal(TimeSpan.FromMicroseconds(44), requestOnNet1.Packet.Timestamp - requestOnNet2.Packet.Timestamp);
    }

    [Theory]
    [InlineData("224.0.0.22", true)]
    [InlineData("239.255.77.1", true)]
    [InlineData("255.255.255.255", true)]
    [InlineData("ff02::16", true)]
    [InlineData("172.29.1.2", false)]
    [InlineData("fe80::1", false)]
    [InlineData(null, false)]
    [InlineData("not an address", false)]
    public void IsMulticast_TellsGroupAddresses(string? address, bool expected) => Assert.Equal(expected, TrafficKind.IsMulticast(address));
}
