using System.Buffers.Binary;
using Dashboard.Core.Capture;

namespace Dashboard.Core.Tests.Capture;

/// <summary>
/// Counting from header bytes: a frame's <see cref="FrameKey"/> stands for exactly one decoded flow, and the tally's
/// per-flow sums are those a whole decode of every frame gives.
/// </summary>
public class PacketTallyTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.UnixEpoch.AddYears(56);

    private static byte[] Eth(ushort type, params byte[][] rest)
    {
        var head = new byte[14];
        new byte[] { 0x02, 0x42, 0xac, 0x12, 0x00, 0x02 }.CopyTo(head, 0);
        new byte[] { 0x02, 0x42, 0xac, 0x13, 0x00, 0x02 }.CopyTo(head, 6);
        BinaryPrimitives.WriteUInt16BigEndian(head.AsSpan(12), type);
        return [.. head, .. rest.SelectMany(r => r)];
    }

    private static byte[] Ipv4(byte proto, string src, string dst, byte[] payload, ushort flagsOffset = 0x4000)
    {
        var h = new byte[20];
        h[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), (ushort)(20 + payload.Length));
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(6), flagsOffset);
        h[8] = 64;
        h[9] = proto;
        System.Net.IPAddress.Parse(src).GetAddressBytes().CopyTo(h, 12);
        System.Net.IPAddress.Parse(dst).GetAddressBytes().CopyTo(h, 16);
        return [.. h, .. payload];
    }

    private static byte[] Ipv6(byte next, string src, string dst, byte[] payload)
    {
        var h = new byte[40];
        h[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(4), (ushort)payload.Length);
        h[6] = next;
        h[7] = 64;
        System.Net.IPAddress.Parse(src).GetAddressBytes().CopyTo(h, 8);
        System.Net.IPAddress.Parse(dst).GetAddressBytes().CopyTo(h, 24);
        return [.. h, .. payload];
    }

    private static byte[] Ports(ushort sport, ushort dport, int length)
    {
        var b = new byte[length];
        BinaryPrimitives.WriteUInt16BigEndian(b, sport);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), dport);
        return b;
    }

    private static byte[] Tcp(ushort sport, ushort dport)
    {
        var b = Ports(sport, dport, 20);
        b[12] = 0x50;
        b[13] = 0x02;
        return b;
    }

    private static byte[] Udp(ushort sport, ushort dport)
    {
        var b = Ports(sport, dport, 12);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(4), 12);
        return b;
    }

    private static byte[] Echo(bool request, ushort seq) => [request ? (byte)8 : (byte)0, 0, 0, 0, 0, 7, (byte)(seq >> 8), (byte)seq, .. new byte[56]];

    private static byte[] Arp(string sender, string target)
    {
        var b = new byte[28];
        BinaryPrimitives.WriteUInt16BigEndian(b, 1);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), 0x0800);
        b[4] = 6;
        b[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(6), 1);
        System.Net.IPAddress.Parse(sender).GetAddressBytes().CopyTo(b, 14);
        System.Net.IPAddress.Parse(target).GetAddressBytes().CopyTo(b, 24);
        return b;
    }

    /// <summary>Frames of every kind the fast reader reads, and of kinds it leaves to the whole decode.</summary>
    private static IEnumerable<byte[]> Corpus()
    {
        for (ushort i = 0; i < 5; i++)
        {
            yield return Eth(0x0800, Ipv4(1, "172.19.0.2", "172.18.0.2", Echo(true, i)));
            yield return Eth(0x0800, Ipv4(1, "172.18.0.2", "172.19.0.2", Echo(false, i)));
            yield return Eth(0x0800, Ipv4(6, "172.19.0.2", "172.18.0.2", Tcp((ushort)(40000 + (i % 2)), 80)));
            yield return Eth(0x0800, Ipv4(17, "172.19.0.3", "172.18.0.2", Udp(5353, 53)));
            yield return Eth(0x86dd, Ipv6(17, "fd00::2", "fd00::3", Udp(546, 547)));
            yield return Eth(0x86dd, Ipv6(6, "fd00::2", "fd00::3", Tcp(443, 50000)));
            yield return Eth(0x86dd, Ipv6(58, "fe80::1", "ff02::1", [135, 0, 0, 0, .. new byte[20]]));
            yield return Eth(0x0806, Arp("172.19.0.1", "172.19.0.2"));
        }

        // Left to the whole decode: a fragment, IGMP, an IPv6 hop-by-hop header, a VLAN tag, 802.3, truncated headers.
        yield return Eth(0x0800, Ipv4(17, "172.19.0.3", "172.18.0.2", Udp(5353, 53), flagsOffset: 0x2000));
        yield return Eth(0x0800, Ipv4(17, "172.19.0.3", "172.18.0.2", new byte[8], flagsOffset: 0x0010));
        yield return Eth(0x0800, Ipv4(2, "172.19.0.1", "224.0.0.22", [0x22, 0, 0, 0, 0, 0, 0, 1]));
        yield return Eth(0x86dd, Ipv6(0, "fe80::1", "ff02::16", [58, 0, 5, 2, 0, 0, 1, 0, 143, 0, 0, 0, 0, 0, 0, 0]));
        yield return Eth(0x8100, [0x00, 0x0a, 0x08, 0x00], Ipv4(1, "172.19.0.2", "172.18.0.2", Echo(true, 9)));
        yield return Eth(0x0026, new byte[40]);
        yield return Eth(0x0800, Ipv4(6, "172.19.0.2", "172.18.0.2", Tcp(1, 2))[..30]);
        yield return Eth(0x0800, [0x45, 0, 0]);
        var badOffset = Tcp(40000, 80);
        badOffset[12] = 0xf0;
        yield return Eth(0x0800, Ipv4(6, "172.19.0.2", "172.18.0.2", badOffset));
        yield return Eth(0x0800, Ipv4(17, "172.19.0.3", "172.18.0.2", Udp(1701, 1701)));
        var shortTotal = Ipv4(1, "172.19.0.2", "172.18.0.2", Echo(true, 1));
        shortTotal[3] = 10;
        yield return Eth(0x0800, shortTotal);
        yield return new byte[10];
    }

    private static string Flow(byte[] frame) => PacketDecoder.Decode(new PcapRecord(T0, frame.Length, frame)).FlowKey;

    [Fact]
    public void FrameKey_StandsForExactlyOneDecodedFlow_AndReadsTheCommonKinds()
    {
        var frames = Corpus().ToList();
        var keyed = frames.Select(f => (Frame: f, Ok: FrameKey.TryRead(f, f.Length, PacketDecoder.LinkTypeEthernet, out var k), Key: k)).ToList();

        Assert.Equal(40, keyed.Count(k => k.Ok));
        Assert.All(keyed.Where(k => k.Ok).GroupBy(k => k.Key), g => Assert.Single(g.Select(k => Flow(k.Frame)).Distinct()));
        var fastFlows = keyed.Where(k => k.Ok).Select(k => Flow(k.Frame)).Distinct().Count();
        Assert.Equal(fastFlows, keyed.Where(k => k.Ok).Select(k => k.Key).Distinct().Count());
        Assert.False(FrameKey.TryRead(frames[0], frames[0].Length, linkType: 113, out _));
        Assert.False(FrameKey.TryRead(frames[0], frames[0].Length + 1, PacketDecoder.LinkTypeEthernet, out _), "a frame cut by the snapshot length is decoded whole");
    }

    [Fact]
    public void Tally_EveryFrameShownOrCountedUnderItsDecodedFlow()
    {
        var frames = Corpus().ToList();
        var tally = new PacketTally(maxShown: 3);
        for (var i = 0; i < frames.Count; i++)
        {
            tally.Add(T0.AddMilliseconds(i), frames[i].Length, frames[i]);
        }

        Assert.Equal(frames.Count, tally.Pending);
        var batch = tally.Take();

        Assert.Equal(frames.Count, batch.Total);
        Assert.Equal(frames.Take(3).Select(Flow), batch.Shown.Select(p => p.FlowKey));
        var expected = frames.Skip(3).Select((f, i) => (Flow: Flow(f), f.Length, At: T0.AddMilliseconds(i + 3)))
            .GroupBy(x => x.Flow).ToDictionary(g => g.Key, g => (Packets: (long)g.Count(), Bytes: (long)g.Sum(x => x.Length), First: g.Min(x => x.At), Last: g.Max(x => x.At)));
        Assert.Equal(expected, batch.NotShownFlows.ToDictionary(f => f.Flow, f => (f.Packets, f.Bytes, f.First, f.Last)));
        // Decoded whole: the 12 frames the fast reader leaves, and the first counted frame of each of the 9 fast flows.
        Assert.Equal(12 + 9, tally.DecodedWhole);
        Assert.Same(PacketBatch.Empty, tally.Take());
    }

    [Fact]
    public void Tally_FlowsBeyondTheCap_GoUnderOtherFlows_AndTheSumStillHolds()
    {
        var tally = new PacketTally(maxShown: 1, maxFlows: 2);
        for (var i = 0; i < 6; i++)
        {
            var f = Eth(0x0800, Ipv4(1, $"172.19.0.{i + 2}", "172.18.0.2", Echo(true, 0)));
            tally.Add(T0, f.Length, f);
        }

        var batch = tally.Take();
        Assert.Equal(3, batch.NotShownFlows.Count);
        Assert.Equal(3, batch.NotShownFlows.Single(f => f.Flow == PacketTally.OtherFlows).Packets);
        Assert.Equal(5, batch.NotShownFlows.Sum(f => f.Packets));
    }

    [Theory]
    [InlineData("seed-docker-user-net1.pcap")]
    [InlineData("seed-docker-user-net2.pcap")]
    public async Task Tally_RealPcap_SameFlowsAsAWholeDecodeOfEveryPacket(string file)
    {
        await using var stream = File.OpenRead(Path.Combine(AppContext.BaseDirectory, "Fixtures", "pcap", file));
        var reader = new PcapStreamReader(stream);
        var header = (await reader.ReadHeaderAsync())!.Value;
        var tally = new PacketTally(header.LinkType, maxShown: 1);
        var whole = new List<DecodedPacket>();
        while (await reader.ReadFrameAsync() is { } f)
        {
            tally.Add(f.Timestamp, f.OriginalLength, f.Data.Span);
            whole.Add(PacketDecoder.Decode(new PcapRecord(f.Timestamp, f.OriginalLength, f.Data.ToArray()), header.LinkType));
        }

        var batch = tally.Take();
        Assert.True(whole.Count > 4, $"{file} holds {whole.Count} packets");
        Assert.Equal(whole[0].Summary, Assert.Single(batch.Shown).Summary);
        Assert.Equal(
            whole.Skip(1).GroupBy(p => p.FlowKey).ToDictionary(g => g.Key, g => (long)g.Count()),
            batch.NotShownFlows.ToDictionary(f => f.Flow, f => f.Packets));
    }

    [Fact]
    public void TakeRaw_GivesTheFramesAsRead_AndDecodingThemIsWhatTakeGives()
    {
        var frames = Corpus().ToList();
        var a = new PacketTally(maxShown: 5);
        var b = new PacketTally(maxShown: 5);
        for (var i = 0; i < frames.Count; i++)
        {
            a.Add(T0.AddMilliseconds(i), frames[i].Length, frames[i]);
            b.Add(T0.AddMilliseconds(i), frames[i].Length, frames[i]);
        }

        var raw = a.TakeRaw();
        var decoded = b.Take();

        Assert.Equal(frames.Take(5), raw.Shown.Select(r => r.Data));
        Assert.Equal(decoded.Shown.Select(p => p.Summary), raw.Decode(PacketDecoder.LinkTypeEthernet).Shown.Select(p => p.Summary));
        Assert.Equal(decoded.NotShownFlows, raw.NotShownFlows);
        Assert.Equal(decoded.NotShown, raw.NotShown);
        Assert.Same(RawPacketBatch.Empty, a.TakeRaw());
    }

    [Fact]
    public void AFrameCutToWhatAnAgentSends_DecodesAsTheWholeFrame()
    {
        // An agent sends at most 2,048 bytes of each frame it shows; the headers, the flow and the length are all there.
        var whole = Eth(0x0800, Ipv4(1, "172.19.0.2", "172.18.0.2", [.. Echo(true, 3), .. new byte[4000]]));
        var cut = whole[..2048];

        var a = PacketDecoder.Decode(new PcapRecord(T0, whole.Length, whole));
        var b = PacketDecoder.Decode(new PcapRecord(T0, whole.Length, cut));

        Assert.Equal((a.Summary, a.FlowKey, a.Length, a.Echo), (b.Summary, b.FlowKey, b.Length, b.Echo));
        Assert.Equal(whole.Length, b.Length);
    }
}
