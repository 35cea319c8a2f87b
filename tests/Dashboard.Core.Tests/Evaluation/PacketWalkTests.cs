using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Evaluation;

/// <summary>
/// The walk a drawing shows, on the seed's recorded paths: dropped in DOCKER-ISOLATION-STAGE-2, accepted by the
/// DOCKER-USER pair with MASQUERADE, dropped in raw PREROUTING on 28.x, a reply dropped after a one-way ACCEPT; and a
/// kernel trace drawn the same way as the prediction of the same packet.
/// </summary>
public class PacketWalkTests
{
    // Docker 20.10: net1 = br-5bb1f7c6955f 172.18.0.0/16 (c1 .2), net2 = br-99a370db15a4 172.19.0.0/16 (c2 .2).
    private static readonly FlowSpec Net2ToNet1 = new() { InInterface = "br-99a370db15a4", OutInterface = "br-5bb1f7c6955f", Source = "172.19.0.2", Destination = "172.18.0.2" };

    private static readonly EvaluationContext Gateways = new() { InterfaceAddresses = new Dictionary<string, string> { ["br-5bb1f7c6955f"] = "172.18.0.1", ["br-99a370db15a4"] = "172.19.0.1" } };

    private static Ruleset Dump(string name, Func<string, string>? edit = null) =>
        IptablesSaveReader.Read((edit ?? (s => s))(TestPaths.ReadShared(Path.Combine("iptables", name))), TableFamily.Ipv4);

    private static WalkStation Station(PacketWalk w, string hook, string table) => w.Stations.Single(s => s.Hook == hook && s.Table == table);

    [Fact]
    public void Isolated_DroppedInStage2_TheForwardFilterStationDecides_AndPostroutingIsNotReached()
    {
        var rs = Dump("docker-20.10-two-networks-isolated.save");
        var (request, reply) = PacketWalk.Predicted(PacketEvaluator.Explain(rs, Net2ToNet1, Gateways), Net2ToNet1, rs);

        Assert.Null(reply);
        Assert.Equal(["prerouting", "forward", "postrouting"], request.Hooks);
        Assert.Equal("DROP", request.Verdict);
        Assert.Equal(("filter", "DOCKER-ISOLATION-STAGE-2", "DROP"), (request.Deciding!.Table, request.Deciding.Chain, request.Deciding.Action));
        var filter = Station(request, "forward", "filter");
        Assert.True(filter.Decides);
        Assert.Equal(["FORWARD #1 JUMP DOCKER-USER", "DOCKER-USER #1 RETURN", "FORWARD #2 JUMP DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-1 #3 JUMP DOCKER-ISOLATION-STAGE-2", request.Deciding.Label],
            filter.Matched.Select(r => r.Label));
        Assert.True(Station(request, "prerouting", "nat").Visited);
        Assert.All(request.Stations.Where(s => s.Hook == "postrouting"), s => Assert.False(s.Visited));
        Assert.Equal("prerouting > forward | filter DOCKER-ISOLATION-STAGE-2 #" + request.Deciding.Position + " | DROP", request.Signature);
    }

    [Fact]
    public void DockerUserPair_AcceptedInDockerUser_MasqueradedInPostrouting_AndTheReplyComesBack()
    {
        var rs = Dump("docker-20.10-two-networks-docker-user-accept.save");
        var (request, reply) = PacketWalk.Predicted(PacketEvaluator.Explain(rs, Net2ToNet1, Gateways), Net2ToNet1, rs);

        Assert.Equal(("ACCEPT", "DOCKER-USER", 2), (request.Verdict, request.Deciding!.Chain, request.Deciding.Position));
        Assert.Equal("source 172.19.0.2 → 172.18.0.1", Station(request, "postrouting", "nat").Translation);
        Assert.Contains(Station(request, "postrouting", "nat").Matched, r => r.Action == "MASQUERADE");

        Assert.NotNull(reply);
        Assert.Equal(("reply", "172.18.0.2", "172.18.0.1"), (reply.Direction, reply.Source, reply.Destination));
        Assert.Equal(("ACCEPT", "DOCKER-USER", 1), (reply.Verdict, reply.Deciding!.Chain, reply.Deciding.Position));

        // An ESTABLISHED reply does not go through the nat chains: they are drawn, not reached.
        Assert.All(reply.Stations.Where(s => s.Table == "nat"), s => Assert.False(s.Visited));
    }

    [Fact]
    public void Docker285_TheRawPreroutingDropDecides_BeforeTheFilterTable()
    {
        var rs = Dump("docker-28.5-bridge1-published-port.save", s => s.Replace(":DOCKER-USER - [0:0]", ":DOCKER-USER - [0:0]\n[0:0] -A DOCKER-USER -j ACCEPT", StringComparison.Ordinal));
        var flow = new FlowSpec { InInterface = "docker0", OutInterface = "bridge1", Source = "172.17.0.2", Destination = "192.0.2.2" };

        var walk = PacketWalk.Predicted(PacketEvaluator.Evaluate(rs, flow), flow, rs, "request");

        Assert.Equal("DROP", walk.Verdict);
        Assert.True(Station(walk, "prerouting", "raw").Decides);
        Assert.Equal("PREROUTING #1 DROP", walk.Deciding!.Label);
        Assert.All(walk.Stations.Where(s => s.Hook is "forward" or "postrouting"), s => Assert.False(s.Visited));
    }

    [Fact]
    public void OneWayAccept_TheRequestIsDelivered_TheReplyDiesInStage2()
    {
        var rs = Dump("docker-20.10-two-networks-isolated.save", s => s.Replace("-A DOCKER-USER -j RETURN", "-A DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -j ACCEPT\n-A DOCKER-USER -j RETURN", StringComparison.Ordinal));

        var (request, reply) = PacketWalk.Predicted(PacketEvaluator.Explain(rs, Net2ToNet1, Gateways), Net2ToNet1, rs);

        Assert.Equal("ACCEPT", request.Verdict);
        Assert.NotNull(reply);
        Assert.Equal("DROP", reply.Verdict);
        Assert.Equal(("DOCKER-ISOLATION-STAGE-2", "DROP"), (reply.Deciding!.Chain, reply.Deciding.Action));
        Assert.True(Station(reply, "forward", "filter").Decides);
    }

    [Fact]
    public void AKernelTrace_IsDrawnOnTheSameStations_AndAgreesWithThePredictionOfTheSamePacket()
    {
        // The host the trace was recorded on: 20.10 with net1 = br-e9c1d93124fc 172.29.1.0/24, net2 = br-0e28fedab59f 172.29.2.0/24.
        var rs = Dump("docker-20.10-two-networks-isolated.save", s => s
            .Replace("br-5bb1f7c6955f", "br-e9c1d93124fc", StringComparison.Ordinal).Replace("br-99a370db15a4", "br-0e28fedab59f", StringComparison.Ordinal)
            .Replace("172.18.0.0/16", "172.29.1.0/24", StringComparison.Ordinal).Replace("172.19.0.0/16", "172.29.2.0/24", StringComparison.Ordinal));
        var locator = new TraceRuleLocator(rs);
        var parser = new XtablesTraceParser();
        foreach (var line in File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "trace", "xtables-monitor-isolation-drop.txt")))
        {
            parser.Feed(line, DateTimeOffset.UtcNow, locator.PositionOf);
        }

        var traced = PacketWalk.Observed(parser.Packets.Single(), rs, "request");
        var flow = new FlowSpec { InInterface = "br-0e28fedab59f", OutInterface = "br-e9c1d93124fc", Source = "172.29.2.2", Destination = "172.29.1.2" };
        var predicted = PacketWalk.Predicted(PacketEvaluator.Evaluate(rs, flow), flow, rs, "request");

        Assert.True(traced.Traced);
        Assert.Equal("DROP", traced.Verdict);
        Assert.True(Station(traced, "forward", "filter").Decides);
        Assert.Equal(predicted.Signature, traced.Signature);
        Assert.Null(PacketWalk.Disagreement(predicted, traced));

        // Had the rules said otherwise (an ACCEPT at the head of DOCKER-USER), the disagreement is said, naming both.
        var opened = Dump("docker-20.10-two-networks-isolated.save", s => s
            .Replace("br-5bb1f7c6955f", "br-e9c1d93124fc", StringComparison.Ordinal).Replace("br-99a370db15a4", "br-0e28fedab59f", StringComparison.Ordinal)
            .Replace("-A DOCKER-USER -j RETURN", "-A DOCKER-USER -j ACCEPT", StringComparison.Ordinal));
        var wrong = PacketWalk.Predicted(PacketEvaluator.Evaluate(opened, flow), flow, opened, "request");
        Assert.Equal($"predicted ACCEPT by filter DOCKER-USER #1; the kernel traced DROP by filter DOCKER-ISOLATION-STAGE-2 #{traced.Deciding!.Position}", PacketWalk.Disagreement(wrong, traced));
    }
}
