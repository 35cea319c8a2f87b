using Bunit;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using Dashboard.Web.Components.Shared;

namespace Dashboard.Web.Tests.Components;

/// <summary>
/// The packet's walk, drawn, on the seed's recorded paths: dropped in DOCKER-ISOLATION-STAGE-2; accepted by the
/// DOCKER-USER pair with MASQUERADE; dropped in raw PREROUTING on 28.x; a reply dropped after a one-way ACCEPT.
/// </summary>
public class PacketWalkDrawingTests : DashboardTestContext
{
    private static readonly FlowSpec Net2ToNet1 = new() { InInterface = "br-99a370db15a4", OutInterface = "br-5bb1f7c6955f", Source = "172.19.0.2", Destination = "172.18.0.2" };

    private static readonly EvaluationContext Gateways = new() { InterfaceAddresses = new Dictionary<string, string> { ["br-5bb1f7c6955f"] = "172.18.0.1", ["br-99a370db15a4"] = "172.19.0.1" } };

    private static Ruleset Dump(string name, Func<string, string>? edit = null) =>
        IptablesSaveReader.Read((edit ?? (s => s))(TestPaths.ReadShared(Path.Combine("iptables", name))), TableFamily.Ipv4);

    private IRenderedComponent<PacketWalkDrawing> Draw(PacketWalk walk, string? disagreement = null) =>
        Render<PacketWalkDrawing>(p => p.Add(x => x.Walk, walk).Add(x => x.From, ["c2", "172.19.0.2", "on br-99a370db15a4"]).Add(x => x.To, ["c1", "172.18.0.2", "on br-5bb1f7c6955f"]).Add(x => x.Disagreement, disagreement));

    private static string Station(IRenderedComponent<PacketWalkDrawing> cut, string hook, string table, string attribute) =>
        cut.Find($"[data-testid='walk-station'][data-hook='{hook}'][data-table='{table}']").GetAttribute(attribute)!;

    [Fact]
    public void Isolated_TheWalkEndsInTheForwardFilter_MarkedAndLinked_AndPostroutingIsDrawnUnreached()
    {
        var rs = Dump("docker-20.10-two-networks-isolated.save");
        var (request, _) = PacketWalk.Predicted(PacketEvaluator.Explain(rs, Net2ToNet1, Gateways), Net2ToNet1, rs);

        var cut = Draw(request);

        Assert.Equal("DROP", cut.Find("[data-testid='walk']").GetAttribute("data-verdict"));
        Assert.Equal("true", Station(cut, "forward", "filter", "data-decides"));
        Assert.Equal("false", Station(cut, "postrouting", "nat", "data-visited"));
        Assert.Contains("walk-dim", cut.Find("[data-testid='walk-station'][data-hook='postrouting']").ClassName);
        Assert.NotNull(cut.Find(".walk-x"));
        var deciding = cut.FindAll("[data-testid='walk-rule']").Single(a => a.QuerySelector(".deciding") is not null);
        Assert.Equal($"firewall?table=filter&chain=DOCKER-ISOLATION-STAGE-2&rule={request.Deciding!.Position}", deciding.GetAttribute("href"));
        Assert.Contains("-A DOCKER-ISOLATION-STAGE-2 -o br-5bb1f7c6955f -j DROP", deciding.QuerySelector("title")!.TextContent, StringComparison.Ordinal);

        // The ends and the text alternative, for a screen reader (and for a person who wants it as text).
        Assert.Equal(2, cut.FindAll("[data-testid='walk-end']").Count);
        Assert.Contains("c2", cut.FindAll("[data-testid='walk-end']")[0].TextContent, StringComparison.Ordinal);
        var text = cut.FindAll("[data-testid='walk-text'] li").Select(li => li.TextContent).ToList();
        Assert.Contains(text, l => l.StartsWith("forward filter FORWARD: ", StringComparison.Ordinal) && l.Contains("(decides)", StringComparison.Ordinal));
        Assert.Contains(text, l => l == "postrouting nat POSTROUTING: not reached");
        Assert.Equal(text[^1], $"DROP by filter {request.Deciding.Label}");
        Assert.Equal(cut.Find("svg desc").TextContent, string.Join("; ", text));
    }

    [Fact]
    public void DockerUserPair_BothWaysAccepted_TheMasqueradeShownWhereItHappens()
    {
        var rs = Dump("docker-20.10-two-networks-docker-user-accept.save");
        var (request, reply) = PacketWalk.Predicted(PacketEvaluator.Explain(rs, Net2ToNet1, Gateways), Net2ToNet1, rs);

        var cut = Draw(request);
        var back = Draw(reply!);

        Assert.Equal("ACCEPT", cut.Find("[data-testid='walk']").GetAttribute("data-verdict"));
        Assert.Equal("source 172.19.0.2 → 172.18.0.1", cut.Find("[data-testid='walk-station'][data-hook='postrouting'][data-table='nat'] [data-testid='walk-nat'] title").TextContent);
        Assert.Equal("true", Station(cut, "forward", "filter", "data-decides"));
        Assert.Contains("walk-arrow", cut.Find("[data-testid='walk-path']").GetAttribute("marker-end"), StringComparison.Ordinal);
        Assert.Equal("reply", back.Find("[data-testid='walk']").GetAttribute("data-direction"));
        Assert.Equal("ACCEPT", back.Find("[data-testid='walk']").GetAttribute("data-verdict"));
        Assert.Equal("false", Station(back, "postrouting", "nat", "data-visited"));
    }

    [Fact]
    public void Docker285_TheRawPreroutingDropIsMarked_AndTheFilterTableIsNeverReached()
    {
        var rs = Dump("docker-28.5-bridge1-published-port.save", s => s.Replace(":DOCKER-USER - [0:0]", ":DOCKER-USER - [0:0]\n[0:0] -A DOCKER-USER -j ACCEPT", StringComparison.Ordinal));
        var flow = new FlowSpec { InInterface = "docker0", OutInterface = "bridge1", Source = "172.17.0.2", Destination = "192.0.2.2" };

        var cut = Draw(PacketWalk.Predicted(PacketEvaluator.Evaluate(rs, flow), flow, rs, "request"));

        Assert.Equal("true", Station(cut, "prerouting", "raw", "data-decides"));
        Assert.Equal("false", Station(cut, "forward", "filter", "data-visited"));
        Assert.Contains("walk-dim", cut.Find("[data-testid='walk-routing']").ClassName);
        Assert.Equal("", cut.Find("[data-testid='walk-path']").GetAttribute("marker-end"));
    }

    [Fact]
    public void OneWayAccept_TheReplysWalkDiesInStage2_AndADisagreementIsSaidInPlace()
    {
        var rs = Dump("docker-20.10-two-networks-isolated.save", s => s.Replace("-A DOCKER-USER -j RETURN", "-A DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -j ACCEPT\n-A DOCKER-USER -j RETURN", StringComparison.Ordinal));
        var (request, reply) = PacketWalk.Predicted(PacketEvaluator.Explain(rs, Net2ToNet1, Gateways), Net2ToNet1, rs);

        var back = Draw(reply!, disagreement: "predicted ACCEPT by filter DOCKER-USER #1; the kernel traced DROP by filter DOCKER-ISOLATION-STAGE-2 #1");

        Assert.Equal("ACCEPT", request.Verdict);
        Assert.Equal("DROP", back.Find("[data-testid='walk']").GetAttribute("data-verdict"));
        Assert.Equal("true", Station(back, "forward", "filter", "data-decides"));
        Assert.Contains("the kernel traced DROP", back.Find("[data-testid='walk-disagreement']").TextContent, StringComparison.Ordinal);
        Assert.Contains("disagrees", back.Find("[data-testid='walk-station'][data-decides='true']").ClassName);
    }
}
