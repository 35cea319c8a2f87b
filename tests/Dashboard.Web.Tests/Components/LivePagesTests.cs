using Bunit;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Collector;
using Dashboard.Web.Components.Pages.Containers;
using Dashboard.Web.Components.Pages.Firewall;
using Dashboard.Web.Components.Pages.Networks;
using Dashboard.Web.Components.Pages.Overview;
using Dashboard.Web.Components.Pages.Topology;

namespace Dashboard.Web.Tests.Components;

public class LivePagesTests : DashboardTestContext
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.UtcNow;

    private static DockerNetwork Net(string name, string id, string subnet) =>
        new(id, name, "bridge", "local", "br-" + id[..12], [new NetworkSubnet(subnet, subnet.Replace(".0/24", ".1", StringComparison.Ordinal))], false, true, false, null,
            new Dictionary<string, string>(), new Dictionary<string, string>());

    private static readonly DockerNetwork Net1 = Net("net1", "5bb1f7c6955fd67fe47e6a0e25e8aee6ae0dbec35ddb1f8b7940883afd184aca", "172.18.0.0/24");
    private static readonly DockerNetwork Net2 = Net("net2", "99a370db15a4f9d9cd36438e0ef667a118182e09eca0b214975038f3dd2965d4", "172.19.0.0/24");

    private static HostTopology Topology(params DockerNetwork[] networks)
    {
        var containers = new List<DockerContainer>();
        var links = new List<IpLink>();
        var bridges = new List<BridgeInfo>();
        var i = 0;
        foreach (var n in networks)
        {
            i++;
            var veth = new VethPair("eth0", 10 + i, 20 + i, $"veth{i}abcdef", 20 + i, n.BridgeName, null, "UP");
            containers.Add(new DockerContainer($"c{i}id000000000000", $"c{i}", "busybox", "running", "Up", 100 + i, null,
                [new ContainerEndpoint(n.Id, n.Name, "ep", $"172.{17 + i}.0.2", 24, null, "02:42:ac:12:00:02", null, veth)], new Dictionary<string, string>()));
            bridges.Add(new BridgeInfo(n.BridgeName!, 5 + i, null, "UP", 1500, n.Name, [new BridgePort(veth.HostInterface, veth.HostIfIndex, "veth", "forwarding", $"c{i}")]));
        }

        var engine = new EngineInfo("20.10.24", "1.41", "1.12", "Debian", "6.1", "amd64", FirewallBackend.IptablesNft, "test", "iptables v1.8.9 (nf_tables)", true);
        return new HostTopology(engine, networks, containers, bridges, links, T0, []);
    }

    private static Ruleset Isolated()
    {
        var rs = IptablesSaveReader.Read(TestPaths.ReadShared("iptables/docker-20.10-two-networks-isolated.save"));
        RuleClassifier.Classify(rs, [Net1, Net2]);
        return rs;
    }

    [Fact]
    public void FirewallPage_CounterChange_UpdatesItsCellAndHighlightsTheRow()
    {
        var rs = Isolated();
        Feed.FirewallChanged(rs, T0);
        var cut = Render<FirewallPage>();
        var drop = rs.FindTable("filter")!.FindChain("DOCKER-ISOLATION-STAGE-2")!.Rules[3];
        var row = $"[data-testid='rule-filter-DOCKER-ISOLATION-STAGE-2-4']";
        Assert.Equal("3", cut.Find($"{row} .pkts").TextContent);
        Assert.DoesNotContain("moving", cut.Find(row).ClassName);

        var firstRise = DateTimeOffset.UtcNow;
        Feed.CountersChanged(new CountersUpdate("test-host", firstRise, [new RuleCounterChange(RuleId.Of(drop), 4, 6, 504, 3, 252, false)], []));

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("6", cut.Find($"{row} .pkts").TextContent);
            Assert.Contains("moving", cut.Find(row).ClassName);
            Assert.Equal("first packets", cut.Find($"{row} [data-testid='rate']").TextContent);
        });

        // A second rise a second later: the rate is over the time between them, and says so.
        Feed.CountersChanged(new CountersUpdate("test-host", firstRise.AddSeconds(1), [new RuleCounterChange(RuleId.Of(drop), 4, 9, 756, 3, 252, false)], []));
        cut.WaitForAssertion(() => Assert.Equal("3 pkt/s over 1 s", cut.Find($"{row} [data-testid='rate']").TextContent));
    }

    [Fact]
    public void FirewallPage_ShowsOwnersJumpsAndIptablesColumns()
    {
        var rs = IptablesSaveReader.Read(TestPaths.ReadShared("iptables/docker-20.10-two-networks-docker-user-accept.save"));
        RuleClassifier.Classify(rs, [Net1, Net2]);
        Feed.FirewallChanged(rs, T0);

        var cut = Render<FirewallPage>();

        var jump = cut.Find("[data-testid='rule-filter-FORWARD-1'] a.jump");
        Assert.Equal("firewall#chain-filter-DOCKER-USER", jump.GetAttribute("href"));
        Assert.NotNull(cut.Find("#chain-filter-DOCKER-USER"));
        var user = cut.Find("[data-testid='rule-filter-DOCKER-USER-1']");
        Assert.Contains("owner-user", user.ClassName);
        Assert.Contains("/* lab change 1 */", user.TextContent);
        Assert.Contains("172.18.0.0/16", user.TextContent);
        Assert.Contains("owner-docker", cut.Find("[data-testid='rule-filter-DOCKER-USER-3']").ClassName);
    }

    [Fact]
    public void FirewallPage_StatusOnlyRendersWhenTheHealthItShowsChanges()
    {
        Feed.FirewallChanged(Isolated(), T0);
        var healthy = CollectorStatus.Starting("test-host", 4) with { EngineAvailable = true, FirewallAvailable = true, LastReadAt = DateTimeOffset.UtcNow };
        Feed.StatusChanged(healthy);
        var cut = Render<FirewallPage>();
        var renders = cut.RenderCount;

        // The collector's status comes once a second with new rates; the page shows none of them.
        Feed.StatusChanged(healthy with { AchievedRateHz = 12.5, Reads = 400, LastReadAt = DateTimeOffset.UtcNow });
        Thread.Sleep(300);
        Assert.Equal(renders, cut.RenderCount);

        Feed.StatusChanged(healthy with { FirewallAvailable = false, FirewallError = "iptables-save -c timed out after 10 s" });
        cut.WaitForAssertion(() => Assert.Contains("timed out", cut.Find("[data-testid='firewall-error']").TextContent));
    }

    [Fact]
    public void FirewallPage_SaysWhenItLastReadAndWhenSomethingLastChanged()
    {
        Feed.FirewallChanged(Isolated(), DateTimeOffset.UtcNow.AddSeconds(-146));
        Feed.StatusChanged(CollectorStatus.Starting("test-host", 4) with { EngineAvailable = true, FirewallAvailable = true, LastReadAt = DateTimeOffset.UtcNow.AddMilliseconds(-300) });

        var cut = Render<FirewallPage>();

        var source = cut.Find("[data-testid='firewall-source']").TextContent;
        Assert.Matches(@"read (0\.\d|just now|1\.\d) s ago · last change 14[6-8] s ago|read just now · last change 14[6-8] s ago", source);
    }

    [Fact]
    public void FirewallPage_OnlyRulesWithTraffic_OnATableWhereNoneCounted_SaysSo()
    {
        var rs = IptablesSaveReader.Read("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n[0:0] -A FORWARD -s 172.31.9.0/24 -j DROP\nCOMMIT\n");
        Feed.FirewallChanged(rs, T0);
        var cut = Render<FirewallPage>();
        Assert.Empty(cut.FindAll("[data-testid='no-rules-shown']"));

        cut.Find("[data-testid='only-moving'] input").Change(true);

        Assert.Contains("No rule of table filter has counted a packet yet", cut.Find("[data-testid='no-rules-shown']").TextContent);
        Assert.Contains("mud-checked", cut.Find("[data-testid='only-moving'] .mud-switch-base").ClassName);
        Assert.Empty(cut.FindAll("tbody.rule"));
    }

    [Fact]
    public void FirewallPage_FirewallUnreadable_SaysWhy()
    {
        Feed.StatusChanged(CollectorStatus.Starting("test-host", 4) with { FirewallError = "iptables-save -c failed with exit code 4: Permission denied (the dashboard needs root)" });

        var cut = Render<FirewallPage>();

        Assert.Contains("Permission denied", cut.Find("[data-testid='firewall-error']").TextContent);
    }

    [Fact]
    public void NetworksPage_NewNetworkAppears_WithoutReload()
    {
        Feed.TopologyChanged(Topology(Net1));
        var cut = Render<NetworksPage>();
        Assert.Single(cut.FindAll("[data-testid='network-name']"));

        Feed.TopologyChanged(Topology(Net1, Net2));

        cut.WaitForAssertion(() => Assert.Equal(2, cut.FindAll("[data-testid='network-name']").Count));
        Assert.Contains("net2", cut.Markup);
        Assert.Contains("br-99a370db15a4", cut.Markup);
    }

    [Fact]
    public void NetworksPage_ANetworkWhoseConfigNamesNoGateway_ShowsItsBridgesAddress()
    {
        var plain = Net1 with { Subnets = [new NetworkSubnet("172.18.0.0/24", null)] };
        var t = Topology(plain, Net2);
        t = t with { Bridges = [t.Bridges[0] with { Addresses = ["172.18.0.1/24", "fe80::1/64"] }, t.Bridges[1]] };
        Feed.TopologyChanged(t);
        var cut = Render<NetworksPage>();
        var gateways = cut.FindAll("[data-testid='network-gateway']");
        Assert.Equal("172.18.0.1 (bridge)", gateways[0].TextContent.Trim());
        Assert.Contains("names no gateway", gateways[0].InnerHtml, StringComparison.Ordinal);
        Assert.Equal("172.19.0.1", gateways[1].TextContent.Trim());

        // Without the bridge's address either, it says it does not know.
        Feed.TopologyChanged(t with { Bridges = [] });
        cut.WaitForAssertion(() => Assert.Equal("—", cut.FindAll("[data-testid='network-gateway']")[0].TextContent.Trim()));
    }

    [Fact]
    public void OverviewPage_EngineDown_RendersTheOutageAndRecovers()
    {
        Feed.StatusChanged(CollectorStatus.Starting("test-host", 4) with { EngineError = "the Docker engine at unix:///var/run/docker.sock did not answer" });
        var cut = Render<OverviewPage>();

        Assert.Contains("did not answer", cut.Find("[data-testid='engine-error']").TextContent);
        Assert.Equal("degraded", cut.Find("[data-testid='collector-health']").TextContent);

        Feed.TopologyChanged(Topology(Net1));
        Feed.StatusChanged(CollectorStatus.Starting("test-host", 4) with { EngineAvailable = true, FirewallAvailable = true, AchievedRateHz = 3.9, WatchedRateHz = 20, MaxDutyCycle = 0.05 });

        cut.WaitForAssertion(() =>
        {
            Assert.Empty(cut.FindAll("[data-testid='engine-error']"));
            Assert.Equal("20.10.24", cut.Find("[data-testid='engine-version']").TextContent);
            Assert.Equal("3.90 per second achieved (target 4; up to 20 while someone watches the counters, reading capped at 5 % of one core's CPU time)", cut.Find("[data-testid='achieved-rate']").TextContent);
        });

        Feed.StatusChanged(Feed.Status with { AchievedRateHz = 11.8, CounterWatchers = 2 });
        cut.WaitForAssertion(() => Assert.Equal(
            "11.80 per second achieved (2 watching the counters: up to 20 per second as the cap allows, 4 otherwise, reading capped at 5 % of one core's CPU time)",
            cut.Find("[data-testid='achieved-rate']").TextContent));
    }

    [Fact]
    public void OverviewPage_UnknownLayout_IsShown()
    {
        Feed.StatusChanged(CollectorStatus.Starting("test-host", 4) with
        {
            EngineAvailable = true,
            FirewallAvailable = true,
            Layout = new DockerLayout(DockerLayoutKind.Unknown, "unrecognised", ["Docker chains: DOCKER, DOCKER-NEW-THING"]),
        });

        var cut = Render<OverviewPage>();

        Assert.Contains("DOCKER-NEW-THING", cut.Find("[data-testid='layout-unknown']").TextContent);
    }

    [Fact]
    public void ContainersPage_ShowsTheEth0VethBridgeChain()
    {
        Feed.TopologyChanged(Topology(Net1, Net2));

        var cut = Render<ContainersPage>();

        Assert.Equal(["eth0@if21 ↔ veth1abcdef ↔ br-5bb1f7c6955f", "eth0@if22 ↔ veth2abcdef ↔ br-99a370db15a4"],
            cut.FindAll("[data-testid='veth-chain']").Select(e => e.TextContent));
    }

    [Fact]
    public void TopologyPage_DrawsBridgesVethsAndTheLiveDropPoint()
    {
        Feed.TopologyChanged(Topology(Net1, Net2));
        var rs = Isolated();
        Feed.FirewallChanged(rs, T0);

        var cut = Render<TopologyPage>();

        Assert.Equal(["br-5bb1f7c6955f", "br-99a370db15a4"], cut.FindAll("[data-testid='bridge-node']").Select(e => e.GetAttribute("data-name")));
        Assert.Equal(["veth1abcdef", "veth2abcdef"], cut.FindAll("[data-testid='veth-node']").Select(e => e.GetAttribute("data-name")));
        var net1Drop = cut.Find("[data-testid='drop-point'][data-bridge='br-5bb1f7c6955f']");
        Assert.Contains("3 dropped", net1Drop.TextContent);

        var drop = rs.FindTable("filter")!.FindChain("DOCKER-ISOLATION-STAGE-2")!.Rules[3];
        Feed.CountersChanged(new CountersUpdate("test-host", DateTimeOffset.UtcNow, [new RuleCounterChange(RuleId.Of(drop), 4, 9, 756, 6, 504, false)], []));
        cut.WaitForAssertion(() => Assert.Contains("9 dropped", cut.Find("[data-testid='drop-point'][data-bridge='br-5bb1f7c6955f']").TextContent));
    }

    [Fact]
    public void TopologyPage_ANodeClicked_ShowsItsDetailBeside_PortStateMtuAndMac()
    {
        var t = Topology(Net1, Net2);
        t = t with
        {
            Links = [new IpLink(21, "veth1abcdef", "veth", null, "br-5bb1f7c6955f", 11, 0, "6a:11:22:33:44:55", "UP", 1500, [], "forwarding"),
                     new IpLink(6, "br-5bb1f7c6955f", "bridge", null, null, null, null, "02:42:aa:bb:cc:dd", "UP", 1500, [], null) { Addresses = ["172.18.0.1/24"] }],
            Bridges = [t.Bridges[0] with { MacAddress = "02:42:aa:bb:cc:dd", Addresses = ["172.18.0.1/24"] }, t.Bridges[1]],
        };
        Feed.TopologyChanged(t);
        Feed.FirewallChanged(Isolated(), T0);
        var cut = Render<TopologyPage>();
        Assert.Empty(cut.FindAll("[data-testid='topology-detail']"));

        cut.Find("[data-testid='veth-node'][data-name='veth1abcdef']").Click();
        var detail = cut.Find("[data-testid='topology-detail']");
        Assert.Equal("VethPick", detail.GetAttribute("data-kind"));
        Assert.Equal("forwarding", cut.Find("[data-testid='topology-port-state']").TextContent);
        Assert.Equal("1500", cut.Find("[data-testid='topology-mtu']").TextContent);
        Assert.Equal("6a:11:22:33:44:55", cut.Find("[data-testid='topology-mac']").TextContent);

        cut.Find("[data-testid='bridge-node'][data-name='br-5bb1f7c6955f']").Click();
        Assert.Contains("172.18.0.1/24", cut.Find("[data-testid='topology-bridge']").TextContent, StringComparison.Ordinal);
        Assert.Contains("veth1abcdef", cut.Find("[data-testid='topology-ports']").TextContent, StringComparison.Ordinal);
        Assert.Contains("DOCKER-ISOLATION-STAGE-2", cut.Find("[data-testid='topology-detail']").TextContent, StringComparison.Ordinal);

        cut.Find("[data-testid='container-node'][data-name='c1']").Click();
        Assert.Contains("172.18.0.2/24", cut.Find("[data-testid='topology-endpoint']").TextContent, StringComparison.Ordinal);
        Assert.Contains("eth0@if21 ↔ veth1abcdef ↔ br-5bb1f7c6955f", cut.Find("[data-testid='topology-endpoint']").TextContent, StringComparison.Ordinal);

        cut.Find("[data-testid='router']").Click();
        Assert.Contains("filter FORWARD", cut.Find("[data-testid='topology-detail']").TextContent, StringComparison.Ordinal);
        cut.Find("[data-testid='topology-detail-close']").Click();
        Assert.Empty(cut.FindAll("[data-testid='topology-detail']"));

        // Long names are cut to their box, whole in the tooltip.
        Assert.Equal("c1", cut.Find("[data-testid='container-node'][data-name='c1'] text.title").TextContent);
        Assert.Equal("x", Dashboard.Web.Components.Pages.Topology.TopologyLayout.Fit("x", 100, 11));
        Assert.EndsWith("…", Dashboard.Web.Components.Pages.Topology.TopologyLayout.Fit(new string('a', 40), 154, 13), StringComparison.Ordinal);
        Assert.True(Dashboard.Web.Components.Pages.Topology.TopologyLayout.Fit(new string('a', 40), 154, 13).Length * 13 * 0.6 <= 154);
    }

    [Fact]
    public void NetworkDetailPage_ShowsBridgeEndpointsAndTheRulesThatConcernIt()
    {
        Feed.TopologyChanged(Topology(Net1, Net2));
        var rs = Isolated();
        Feed.FirewallChanged(rs, T0);

        var cut = Render<NetworkDetailPage>(p => p.Add(x => x.Name, "net1"));

        Assert.Equal("br-5bb1f7c6955f", cut.Find("[data-testid='bridge']").TextContent);
        Assert.Contains("eth0@if21 ↔ veth1abcdef ↔ br-5bb1f7c6955f", cut.Markup);
        var rules = cut.FindAll("tr.rule");
        Assert.Equal(rs.Rules.Count(r => r.Networks.Contains("net1")), rules.Count);
        Assert.Contains(rules, r => r.TextContent.Contains("-A DOCKER-ISOLATION-STAGE-2 -o br-5bb1f7c6955f -j DROP", StringComparison.Ordinal) && r.QuerySelector(".pkts")!.TextContent == "3");
    }

    [Fact]
    public void NetworkDetailPage_UnknownNetwork_SaysSo()
    {
        Feed.TopologyChanged(Topology(Net1));

        var cut = Render<NetworkDetailPage>(p => p.Add(x => x.Name, "gone"));

        Assert.Contains("No network named \"gone\"", cut.Markup);
    }
}
