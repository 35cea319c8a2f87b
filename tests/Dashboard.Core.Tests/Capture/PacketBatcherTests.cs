using Dashboard.Core.Capture;

namespace Dashboard.Core.Tests.Capture;

public class PacketBatcherTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.UnixEpoch.AddYears(56);

    private static DecodedPacket Echo(string src, string dst, int seq, double at) =>
        new(T0.AddSeconds(at), 98, "ICMP", src, dst, null, null, null, null, new IcmpEcho(true, 7, seq), $"IP {src} > {dst}: ICMP echo request, id 7, seq {seq}, length 64");

    [Fact]
    public void BeyondTheBudget_PacketsAreCountedPerFlow_AndEveryPacketIsAccountedFor()
    {
        var b = new PacketBatcher(maxShown: 3);
        for (var i = 0; i < 10; i++)
        {
            b.Add(Echo("172.19.0.2", "172.18.0.2", i, i * 0.5));
        }

        b.Add(Echo("172.18.0.2", "172.19.0.2", 0, 5));
        var batch = b.Take();

        Assert.Equal(3, batch.Shown.Count);
        Assert.Equal(8, batch.NotShown);
        Assert.Equal(11, batch.Total);
        var top = batch.NotShownFlows[0];
        Assert.Equal(("ICMP 172.19.0.2 > 172.18.0.2", 7L, 7L * 98), (top.Flow, top.Packets, top.Bytes));
        Assert.Equal(7 / 3.0, top.Rate, 3);
        Assert.Equal(1, batch.NotShownFlows[1].Packets);
        Assert.Same(PacketBatch.Empty, b.Take());
    }

    [Fact]
    public void FlowsBeyondTheCap_GoUnderOtherFlows()
    {
        var b = new PacketBatcher(maxShown: 1, maxFlows: 2);
        for (var i = 0; i < 6; i++)
        {
            b.Add(Echo($"172.19.0.{i}", "172.18.0.2", 0, 0));
        }

        var batch = b.Take();
        Assert.Equal(3, batch.NotShownFlows.Count);
        Assert.Equal(3, batch.NotShownFlows.Single(f => f.Flow == PacketBatcher.OtherFlows).Packets);
        Assert.Equal(5, batch.NotShownFlows.Sum(f => f.Packets));
    }
}
