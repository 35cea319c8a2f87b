using Dashboard.App.Hosts;
using Dashboard.App.Live;
using Dashboard.Core.Capture;
using Dashboard.Core.Firewall;
using Dashboard.Host;
using Dashboard.Host.Agents;
using Dashboard.Host.Capture;
using Dashboard.Host.Netfilter;

namespace Dashboard.Web.Tests.Hosts;

/// <summary>
/// Host-wide captures and traces on an agent's host, as the dashboard takes in what the agent sends: frames decoded
/// here, every packet accounted for, sessions ended when the agent goes away, and what the dashboard refuses to take.
/// </summary>
public class RemoteSessionsTests
{
    private const string CaptureId = "0123456789ab";
    private const string TraceId = "0123456789";

    private static RemoteHost Connected()
    {
        var h = new RemoteHost("h1");
        h.Attach("c1", new AgentHello(AgentProtocol.Version, "1.0.0", null), () => { });
        return h;
    }

    /// <summary>Real frames: the seed's docker-user run on net2's bridge, as tcpdump wrote them.</summary>
    private static async Task<List<PcapRecord>> FramesAsync()
    {
        await using var file = File.OpenRead(TestPaths.CoreFixture("pcap/seed-docker-user-net2.pcap"));
        var reader = new PcapStreamReader(file);
        Assert.NotNull(await reader.ReadHeaderAsync());
        var frames = new List<PcapRecord>();
        while (await reader.ReadFrameAsync() is { } f)
        {
            frames.Add(new PcapRecord(f.Timestamp, f.OriginalLength, f.Data.ToArray()));
        }

        return frames;
    }

    private static AgentCaptureBatch Batch(long seq, IEnumerable<PcapRecord> shown, long notShown = 0, IReadOnlyList<FlowCount>? flows = null, bool final = false, long read = 0) =>
        new(CaptureId, seq, PacketDecoder.LinkTypeEthernet, [.. shown.Select(r => new AgentFrame(r.Timestamp, r.OriginalLength, r.Data))], notShown, flows ?? [],
            new CaptureStats(read, 0, final ? read : null, final ? read : null, final ? 0 : null), final ? CaptureEndReason.Requested : CaptureEndReason.Running,
            final ? DateTimeOffset.UtcNow : null, null, final);

    private static RemoteCaptureSession Capture(RemoteHost h)
    {
        var s = new RemoteCaptureSession(CaptureId, h.Name, new CaptureRequest("veth1234567", "icmp", Owner: new SessionOwner("u1", "alice")));
        h.Track(s);
        return s;
    }

    [Fact]
    public async Task CaptureBatches_AreDecodedHere_EveryPacketCounted_AndTheLastOneEndsTheCapture()
    {
        var h = Connected();
        var session = Capture(h);
        var events = new List<PacketsCapturedEvent>();
        using var _ = h.Feed.Subscribe([LiveTopic.Captures()], e => events.Add((PacketsCapturedEvent)e));
        var frames = await FramesAsync();
        Assert.True(frames.Count >= 6, $"the fixture has {frames.Count} frames");

        // 4 frames whole, 2 counted under their flow (as the agent's tally counts them beyond its budget).
        var flows = new List<FlowCount> { new("ICMP 172.20.0.2 > 172.21.0.2", 2, 196, frames[4].Timestamp, frames[5].Timestamp) };
        Assert.Null(h.Apply("c1", Batch(0, frames.Take(4), 2, flows, read: 6)));
        Assert.Null(h.Apply("c1", Batch(1, [], final: true, read: 6)));

        // Decoded by the dashboard's own decoder, exactly as a local capture's frames are.
        Assert.Equal(frames.Take(4).Select(f => PacketDecoder.Decode(f).Summary), events[0].Batch.Shown.Select(p => p.Summary));
        var view = h.Feed.FindCapture(CaptureId)!;
        Assert.Equal((4, 2, true), (view.Shown, view.NotShown, view.Ended));
        Assert.Equal(view.Shown + view.NotShown, session.Stats.Read);
        Assert.Equal(CaptureEndReason.Requested, session.EndReason);
        Assert.True(session.Completion.IsCompleted);
        Assert.True(events[^1].Final);

        // A batch after the end changes nothing; the agent is asked (once) to stop what it still sends.
        Assert.Contains("no capture " + CaptureId + " runs", h.Apply("c1", Batch(2, frames.Take(1), read: 7)), StringComparison.Ordinal);
        Assert.Equal(4, h.Feed.FindCapture(CaptureId)!.Shown);
        Assert.True(h.AskToStop(CaptureId));
        Assert.False(h.AskToStop(CaptureId));
    }

    [Fact]
    public async Task ABatchThatNeverArrived_IsSaidAtTheEnd()
    {
        var h = Connected();
        var session = Capture(h);
        var frames = await FramesAsync();

        h.Apply("c1", Batch(0, frames.Take(1), read: 1));
        h.Apply("c1", Batch(2, frames.Skip(2).Take(1), final: true, read: 3));

        Assert.Equal(1, session.LostBatches);
        Assert.Contains("1 batches from the host never arrived", session.EndMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Batches_OfAReplacedConnection_OrOfACaptureNotStartedHere_AreNotTaken()
    {
        var h = Connected();
        Capture(h);
        var frames = await FramesAsync();

        Assert.Equal("", h.Apply("an-old-connection", Batch(0, frames.Take(1))));
        Assert.Null(h.Feed.FindCapture(CaptureId));

        var stranger = Batch(0, frames.Take(1)) with { Id = "ffffffffffff" };
        Assert.Contains("no capture ffffffffffff", h.Apply("c1", stranger), StringComparison.Ordinal);
        Assert.Equal(1, h.UnknownSessionMessages);
    }

    [Fact]
    public void TraceUpdates_GrowThePaths_AndTheLastSaysTheRulesAreGone()
    {
        var h = Connected();
        var trace = new RemoteTraceSession(TraceId, h.Name, new TraceRequest("172.20.0.2", "172.21.0.2", Owner: new SessionOwner("u1", "alice")));
        h.Track(trace);
        trace.Started(DateTimeOffset.UtcNow, "netlab:trace-agent-0123", []);
        var events = new List<TraceUpdatedEvent>();
        using var _ = h.Feed.Subscribe([LiveTopic.Traces()], e => events.Add((TraceUpdatedEvent)e));
        TraceStep Step(string table, string chain, string verdict) => new(table, chain, TraceStepKind.Rule, verdict, null, "-A " + chain + " -j " + verdict, 1);
        TracedPacket Packet(string key, params TraceStep[] steps) => new(key, DateTimeOffset.UtcNow, "br-2", "br-1", "172.20.0.2", "172.21.0.2", 84, 7, steps);

        Assert.Null(h.Apply("c1", new AgentTraceUpdate(TraceId, [Packet("k1", Step("raw", "PREROUTING", "CONTINUE"))], null, null, false, [], 0)));
        Assert.Null(h.Apply("c1", new AgentTraceUpdate(TraceId, [Packet("k1", Step("raw", "PREROUTING", "CONTINUE"), Step("filter", "DOCKER-ISOLATION-STAGE-2", "DROP")), Packet("k2")], null, null, false, [], 0)));

        Assert.Equal(["k1", "k2"], trace.Packets.Select(p => p.Key));
        Assert.Equal("DROP", trace.Packets[0].Decision?.Verdict);
        Assert.True(trace.IsRunning);

        var removed = new RuleCommandResult(true, "iptables -w 5 -t raw -D PREROUTING …", "removed");
        Assert.Null(h.Apply("c1", new AgentTraceUpdate(TraceId, [], DateTimeOffset.UtcNow, "stopped", true, [removed], 0)));
        Assert.False(trace.IsRunning);
        Assert.True(trace.IsCleanedUp);
        Assert.Equal("stopped", trace.EndMessage);
        Assert.Equal([removed], trace.Commands);
        Assert.Equal(3, events.Count);
    }

    [Fact]
    public async Task TheAgentGoingAway_EndsWhatRanThereForThisDashboard_AndSaysSo()
    {
        var h = Connected();
        var capture = Capture(h);
        var trace = new RemoteTraceSession(TraceId, h.Name, new TraceRequest("172.20.0.2", "172.21.0.2"));
        h.Track(trace);
        h.Apply("c1", Batch(0, (await FramesAsync()).Take(2), read: 2));

        Assert.True(h.Detach("c1"));

        Assert.Equal(CaptureEndReason.Failed, capture.EndReason);
        Assert.Contains("agent disconnected", capture.EndMessage, StringComparison.Ordinal);
        Assert.True(capture.Completion.IsCompleted);
        Assert.True(h.Feed.FindCapture(CaptureId)!.Ended);
        Assert.False(trace.IsRunning);
        Assert.Contains("removes their rules", trace.EndMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void AnAgentConnectingAgain_EndsWhatItRanForTheLastConnection()
    {
        var h = Connected();
        var capture = Capture(h);

        // The old connection was never seen to close (a half-open link, or the agent restarted at once).
        h.Attach("c2", new AgentHello(AgentProtocol.Version, "1.0.0", null), () => { });

        Assert.Equal(CaptureEndReason.Failed, capture.EndReason);
        Assert.Contains("agent connected again", capture.EndMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Batches_FasterThanAHostSends_OrNumberedBackwards_AreNotTaken_AndTheEndSaysHowManyWereMissed()
    {
        var h = Connected();
        var session = Capture(h);
        var frames = await FramesAsync();

        // 100 batches at once (a host sends one every 100 ms): about two seconds' worth are taken, the rest are not.
        for (var i = 0; i < 100; i++)
        {
            h.Apply("c1", Batch(i, frames.Take(1), read: i + 1));
        }

        var shown = h.Feed.FindCapture(CaptureId)!.Shown;
        Assert.InRange(shown, 20, 30);

        // An old number again changes nothing.
        h.Apply("c1", Batch(3, frames.Take(1), read: 1));
        Assert.Equal(shown, h.Feed.FindCapture(CaptureId)!.Shown);

        h.Apply("c1", Batch(100, [], final: true, read: 100));
        Assert.Equal(100 - shown, session.LostBatches);
        Assert.Contains($"{100 - shown} batches from the host never arrived", session.EndMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void ATracesPaths_AreKeptUpToItsBudget_AndNothingAfterItsRulesAreGone()
    {
        var h = Connected();
        var trace = new RemoteTraceSession(TraceId, h.Name, new TraceRequest("172.20.0.2", "172.21.0.2"));
        h.Track(trace);
        var step = new TraceStep("filter", "FORWARD", TraceStepKind.Rule, "ACCEPT", null, new string('r', AgentMessageCheck.MaxRuleText), 1);
        TracedPacket Packet(int i) => new($"k{i}", DateTimeOffset.UtcNow, "br-2", "br-1", "172.20.0.2", "172.21.0.2", 84, i, [step, step, step, step]);

        for (var i = 0; i < RemoteTraceSession.MaxPackets + 50; i += 50)
        {
            Assert.Null(h.Apply("c1", new AgentTraceUpdate(TraceId, [.. Enumerable.Range(i, 50).Select(Packet)], null, null, false, [], 0)));
        }

        Assert.Equal(RemoteTraceSession.MaxPackets, trace.Packets.Count);
        Assert.Equal(50, trace.NotKept);

        Assert.Null(h.Apply("c1", new AgentTraceUpdate(TraceId, [], DateTimeOffset.UtcNow, "stopped", true, [], 0)));
        Assert.Contains("no trace", h.Apply("c1", new AgentTraceUpdate(TraceId, [Packet(9999)], null, null, false, [], 0)), StringComparison.Ordinal);
        Assert.DoesNotContain(trace.Packets, p => p.Key == "k9999");
    }

    public static TheoryData<string, AgentSessionReply, AgentSessionAction> HostileReplies() => new()
    {
        { "Commands", new AgentSessionReply(Tag: "netlab:trace-agent-0123456789", Commands: [null!]), AgentSessionAction.StartTrace },
        { "a started trace's Tag", new AgentSessionReply(Tag: "anything"), AgentSessionAction.StartTrace },
        { "a started trace's Tag", new AgentSessionReply(), AgentSessionAction.StartTrace },
        { "Refused and Failed are at most", new AgentSessionReply(Refused: new string('x', 5000)), AgentSessionAction.StartCapture },
        { "a piece of a pcap", new AgentSessionReply(Pcap: new byte[AgentProtocol.MaxPcapChunk + 1], PcapLength: AgentProtocol.MaxPcapChunk + 1), AgentSessionAction.ReadPcap },
        { "a piece of a pcap", new AgentSessionReply(Pcap: new byte[10], PcapLength: 5), AgentSessionAction.ReadPcap },
        { "a piece of a pcap", new AgentSessionReply(Pcap: new byte[10], PcapLength: long.MaxValue), AgentSessionAction.ReadPcap },
    };

    [Theory]
    [MemberData(nameof(HostileReplies))]
    public void HostileReplies_AreRefusedBeforeUse_NamingTheMember(string expected, AgentSessionReply reply, AgentSessionAction action) =>
        Assert.Contains(expected, AgentMessageCheck.Problem(reply, action, byteLimit: 100L * 1024 * 1024), StringComparison.Ordinal);

    [Fact]
    public void AcceptableReplies_PassTheCheck() => Assert.All(
        [
            (new AgentSessionReply(StartedAt: DateTimeOffset.UtcNow), AgentSessionAction.StartCapture),
            (new AgentSessionReply(Tag: "netlab:trace-agent-0123456789", Commands: [new RuleCommandResult(true, "iptables …", "ok")]), AgentSessionAction.StartTrace),
            (new AgentSessionReply(Pcap: new byte[24], PcapLength: 1000), AgentSessionAction.ReadPcap),
            (new AgentSessionReply(Refused: "no capture 'x' that the dashboard started here"), AgentSessionAction.ReadPcap),
        ],
        r => Assert.Null(AgentMessageCheck.Problem(r.Item1, r.Item2, 100L * 1024 * 1024)));

    [Fact]
    public void EndedSessions_BeyondTheKeptNumber_AreForgotten_RunningOnesNever()
    {
        var h = Connected();
        var running = new RemoteCaptureSession("aaaaaaaaaaaa", h.Name, new CaptureRequest("br-1"));
        h.Track(running);
        for (var i = 0; i < RemoteHost.KeepEndedSessions + 5; i++)
        {
            var ended = new RemoteCaptureSession(i.ToString("x12", System.Globalization.CultureInfo.InvariantCulture), h.Name, new CaptureRequest("br-1"));
            h.Track(ended);
            ended.Started(DateTimeOffset.UtcNow.AddSeconds(i));
            h.Apply("c1", new AgentCaptureBatch(ended.Id, 0, 1, [], 0, [], new CaptureStats(0, 0, 0, 0, 0), CaptureEndReason.Requested, DateTimeOffset.UtcNow, null, true));
        }

        h.Track(new RemoteCaptureSession("bbbbbbbbbbbb", h.Name, new CaptureRequest("br-1")));

        Assert.Equal(RemoteHost.KeepEndedSessions + 2, h.Captures.Count);
        Assert.Contains(h.Captures, c => c.Id == "aaaaaaaaaaaa");
    }

    public static TheoryData<string, AgentCaptureBatch> HostileBatches()
    {
        var ok = new AgentCaptureBatch(CaptureId, 0, 1, [new AgentFrame(DateTimeOffset.UtcNow, 98, new byte[98])], 2, [new FlowCount("ICMP a > b", 2, 196, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow)],
            new CaptureStats(3, 0, null, null, null), CaptureEndReason.Running, null, null, false);
        Assert.Null(AgentMessageCheck.Problem(ok));
        return new()
        {
            { "CaptureBatch.Id", ok with { Id = "../../etc" } },
            { "Sequence and NotShown are not negative", ok with { Sequence = -1 } },
            { "at most 200 frames", ok with { Shown = [.. Enumerable.Repeat(ok.Shown[0], 201)] } },
            { "CaptureBatch.Shown[0]", ok with { Shown = [new AgentFrame(DateTimeOffset.UtcNow, 4000, new byte[AgentProtocol.MaxBatchFrameBytes + 1])] } },
            { "CaptureBatch.Shown[0]", ok with { Shown = [new AgentFrame(DateTimeOffset.UtcNow, 10, new byte[98])] } },
            { "CaptureBatch.Shown[0]", ok with { Shown = [new AgentFrame(DateTimeOffset.UtcNow, 98, null!)] } },
            { "the flows count 2 packets, NotShown says 5", ok with { NotShown = 5 } },
            { "CaptureBatch.NotShownFlows[0]", ok with { NotShownFlows = [new FlowCount(new string('x', 201), 2, 1, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow)] } },
            { "CaptureBatch.NotShownFlows[0]", ok with { NotShownFlows = [new FlowCount("f", -2, 1, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow)] } },
            { "Stats: counts are not negative", ok with { Stats = new CaptureStats(-1, 0, null, null, null) } },
            { "EndReason is not an end reason", ok with { EndReason = (CaptureEndReason)42 } },
            { "the final batch says why", ok with { Final = true } },
            { "EndMessage is at most", ok with { EndMessage = new string('x', 5000) } },
            { "needs Id, Shown, NotShownFlows and Stats", ok with { Shown = null! } },
        };
    }

    [Theory]
    [MemberData(nameof(HostileBatches))]
    public void HostileCaptureBatches_AreRefused_NamingTheMember(string expected, AgentCaptureBatch batch) =>
        Assert.Contains(expected, AgentMessageCheck.Problem(batch), StringComparison.Ordinal);

    public static TheoryData<string, AgentTraceUpdate> HostileTraceUpdates()
    {
        var step = new TraceStep("raw", "PREROUTING", TraceStepKind.Rule, "DROP", null, "-A PREROUTING -j DROP", 1);
        var packet = new TracedPacket("k", DateTimeOffset.UtcNow, "br-1", null, "172.20.0.2", "172.21.0.2", 84, 1, [step]);
        var ok = new AgentTraceUpdate(TraceId, [packet], null, null, false, [new RuleCommandResult(true, "iptables …", "ok")], 0);
        Assert.Null(AgentMessageCheck.Problem(ok));
        return new()
        {
            { "TraceUpdate.Id", ok with { Id = "0123456789ab" } },
            { "TraceUpdate.Packets[0]", ok with { Packets = [packet with { Source = "not-an-address" }] } },
            { "TraceUpdate.Packets[0]", ok with { Packets = [packet with { Steps = [.. Enumerable.Repeat(step, 257)] }] } },
            { "TraceUpdate.Packets[0]", ok with { Packets = [packet with { InInterface = new string('i', 17) }] } },
            { "TraceUpdate.Packets[0].Steps[0]", ok with { Packets = [packet with { Steps = [step with { Chain = "" }] }] } },
            { "TraceUpdate.Packets[0].Steps[0]", ok with { Packets = [packet with { Steps = [step with { Kind = (TraceStepKind)9 }] }] } },
            { "TraceUpdate.Packets[0].Steps[0]", ok with { Packets = [packet with { Steps = [step with { RuleText = new string('r', AgentMessageCheck.MaxRuleText + 1) }] }] } },
            { "a list of at most 500 packets", ok with { Packets = [.. Enumerable.Repeat(packet, 501)] } },
            { "TraceUpdate.Commands", ok with { Commands = [new RuleCommandResult(true, null!, "ok")] } },
            { "UnparsedLines is not negative", ok with { UnparsedLines = -1 } },
        };
    }

    [Theory]
    [MemberData(nameof(HostileTraceUpdates))]
    public void HostileTraceUpdates_AreRefused_NamingTheMember(string expected, AgentTraceUpdate update) =>
        Assert.Contains(expected, AgentMessageCheck.Problem(update), StringComparison.Ordinal);
}
