using Bunit;
using Dashboard.App.Hosts;
using Dashboard.Core.Firewall;
using Dashboard.Host.Agents;
using Dashboard.Host.Collector;
using Dashboard.Web.Components.Pages.Firewall;
using Dashboard.Web.Components.Pages.Topology;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Components;

/// <summary>Pages that follow the host picker read the picked agent host's feed, live, and offer no local action for it.</summary>
public sealed class HostPickerPagesTests : DashboardTestContext
{
    private readonly HostDirectory _directory;
    private readonly RemoteHost _remote;
    private readonly Ruleset _rules;

    public HostPickerPagesTests()
    {
        // The registry's database is not needed here: only its revocation event is subscribed to.
        var registry = new HostRegistry(null!, null!, Microsoft.Extensions.Options.Options.Create(new Dashboard.Host.DockerHostOptions { Name = "test-host" }));
        _directory = new HostDirectory(Feed, registry);
        Services.AddSingleton(_directory);
        Services.AddScoped<HostSession>();
        _remote = _directory.Connect("engine-285", "c1", new AgentHello(AgentProtocol.Version, "1", null), () => { });
        var dump = File.ReadAllText(TestPaths.CoreFixture("iptables/docker-28.5.2-two-networks-published-port.save"));
        _remote.Apply("c1", new AgentSnapshot(0, CollectorStatus.Starting("x", 4) with { EngineAvailable = true, FirewallAvailable = true }, null,
            new AgentFirewall(RulesetFormat.IptablesSave, dump, null, DateTimeOffset.UtcNow)));
        _rules = _remote.Feed.Ruleset!;
    }

    [Fact]
    public void FirewallPage_OfThePickedAgentHost_ShowsItsRulesAndItsLiveCounters()
    {
        Services.GetRequiredService<HostSession>().Select("engine-285");
        var cut = Render<FirewallPage>();
        var drop = _rules.FindTable("filter")!.FindChain("FORWARD")!.Rules[0];
        var row = "[data-testid='rule-filter-FORWARD-1']";
        Assert.Equal(drop.Packets.ToString(System.Globalization.CultureInfo.InvariantCulture), cut.Find($"{row} .pkts").TextContent);

        Assert.Null(_remote.Apply("c1", AgentCounters.Of(1, DateTimeOffset.UtcNow, AgentCounters.IndexOf(_rules), [new RuleCounterChange(RuleId.Of(drop), 1, drop.Packets + 3, drop.Bytes + 252, 3, 252, false)], [])!));
        cut.WaitForAssertion(() => Assert.Equal((drop.Packets + 3).ToString(System.Globalization.CultureInfo.InvariantCulture), cut.Find($"{row} .pkts").TextContent));

        // The local host's feed has no rules at all: nothing of it is shown.
        Assert.Null(Feed.Ruleset);
    }

    [Fact]
    public void WithoutAPick_PagesShowTheLocalHost_AndAnUnknownPickStaysLocal()
    {
        var session = Services.GetRequiredService<HostSession>();
        session.Select("nobody");
        Assert.False(session.IsRemote);
        var cut = Render<FirewallPage>();
        Assert.Empty(cut.FindAll("[data-testid='rule-filter-FORWARD-1']"));
    }

    [Fact]
    public void TopologyPage_OfAnAgentHost_OffersItsCaptureButtons_WhichOpenTheCapturesPageOnThatHost()
    {
        Services.GetRequiredService<HostSession>().Select("engine-285");
        Assert.Null(_remote.Apply("c1", new AgentTopology(1, new Dashboard.Core.Topology.HostTopology(
            new Dashboard.Core.Topology.EngineInfo("28.5.2", "1.51", null, null, null, null, Dashboard.Core.Topology.FirewallBackend.IptablesNft, "test", null, null),
            [new Dashboard.Core.Topology.DockerNetwork("n1", "net1", "bridge", "local", "br-7080e7f0b518", [new("172.28.1.0/24", "172.28.1.1")], false, true, false, null, new Dictionary<string, string>(), new Dictionary<string, string>())],
            [], [new Dashboard.Core.Topology.BridgeInfo("br-7080e7f0b518", 5, null, "UP", 1500, "net1", [])], [], DateTimeOffset.UtcNow, []))));
        var cut = Render<TopologyPage>();
        Assert.NotEmpty(cut.FindAll("[data-testid='bridge-node']"));

        cut.Find("[data-testid='capture-bridge'][data-name='br-7080e7f0b518']").Click();

        // The Captures page follows the picked host: its agent runs the capture.
        Assert.EndsWith("captures?interface=br-7080e7f0b518", Services.GetRequiredService<Microsoft.AspNetCore.Components.NavigationManager>().Uri, StringComparison.Ordinal);
        Assert.True(HostSession.Follows("captures?interface=br-7080e7f0b518"));
    }
}
