using Dashboard.Core.Capture;
using Dashboard.Web.Components.Pages.Captures;

namespace Dashboard.Web.Tests.Components;

public class PacketViewStateTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);

    private static DecodedPacket Echo(string src, string dst, bool request, int seq, double ms) =>
        new(T0.AddMilliseconds(ms), 98, "ICMP", src, dst, null, null, null, null, new IcmpEcho(request, 9, seq), $"IP {src} > {dst}: ICMP echo {(request ? "request" : "reply")}, id 9, seq {seq}, length 64");

    private static PacketBatch Batch(long notShown, params DecodedPacket[] shown) => new(shown, notShown, []);

    [Fact]
    public void TwoInterfaces_AreMergedInCaptureTimeOrder_WithOffsetsFromTheFirstPacket()
    {
        var view = new PacketViewState();
        view.Add("b", "br-dst", Batch(0, Echo("172.18.0.1", "172.18.0.2", true, 0, 0.05)));
        view.Add("a", "br-src", Batch(0, Echo("172.19.0.2", "172.18.0.2", true, 0, 0), Echo("172.18.0.2", "172.19.0.2", false, 0, 0.12)));

        var rows = view.Visible(new HashSet<string> { "a", "b" });
        Assert.Equal(["br-src", "br-dst", "br-src"], rows.Select(r => r.Interface));
        Assert.Equal([0, 0.05, 0.12], rows.Select(r => Math.Round(view.OffsetMs(r), 3)));

        view.ChosenTimeZero = rows[1].Packet.Timestamp;
        Assert.Equal(-0.05, Math.Round(view.OffsetMs(rows[0]), 3));
        Assert.Single(view.Visible(new HashSet<string> { "b" }));
    }

    [Fact]
    public void Pause_CountsWhatArrives_AndClearStartsAfresh()
    {
        var view = new PacketViewState();
        view.Add("a", "br1", Batch(5, Echo("172.19.0.2", "172.18.0.2", true, 0, 0)));
        view.Paused = true;
        view.Add("a", "br1", Batch(3, Echo("172.19.0.2", "172.18.0.2", true, 1, 1000)));
        Assert.Equal((1, 5L, 4L), (view.Count, view.NotShownByServer, view.ArrivedWhilePaused));

        view.Paused = false;
        view.Clear();
        Assert.Equal((0, 0L, 0L), (view.Count, view.NotShownByServer, view.ArrivedWhilePaused));
        Assert.Null(view.TimeZero);
    }

    [Fact]
    public void FlowFilter_AllTermsMustMatch_CaseInsensitive()
    {
        var view = new PacketViewState();
        view.Add("a", "br1", Batch(0, Echo("172.19.0.2", "172.18.0.2", true, 0, 0), Echo("172.18.0.2", "172.19.0.2", false, 0, 1)));
        var all = new HashSet<string> { "a" };

        view.Filter = "ECHO reply";
        Assert.Equal("172.18.0.2", Assert.Single(view.Visible(all)).Packet.Source);
        view.Filter = "172.19.0.2 request";
        Assert.Equal("172.19.0.2", Assert.Single(view.Visible(all)).Packet.Source);
        view.Filter = "tcp";
        Assert.Empty(view.Visible(all));
        view.Filter = "  ";
        Assert.Equal(2, view.Visible(all).Count);
    }

    [Fact]
    public void BeyondCapacity_TheOldestByCaptureTimeGo_AndAreCounted()
    {
        var view = new PacketViewState(capacity: 3);
        view.Add("a", "br1", Batch(0, [.. Enumerable.Range(0, 5).Select(i => Echo("172.19.0.2", "172.18.0.2", true, i, 10 - i))]));
        Assert.Equal((3, 2L), (view.Count, view.PushedOut));
        Assert.Equal([2, 1, 0], view.Visible(new HashSet<string> { "a" }).Select(r => r.Packet.Echo!.Sequence));
    }
}
