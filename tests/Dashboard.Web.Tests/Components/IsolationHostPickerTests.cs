using Bunit;
using Dashboard.App.Hosts;
using Dashboard.App.Labs;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Data.Entities;
using Dashboard.Host.Agents;
using Dashboard.Host.Collector;
using Dashboard.Web.Components.Pages.Isolation;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Components;

/// <summary>The Isolation page follows the host picker: its matrix is the picked agent host's, computed from that host's rules.</summary>
[Trait("Category", "RealHost")]
public sealed class IsolationHostPickerTests : DashboardTestContext
{
    private readonly DashboardFactory _app = new();

    public IsolationHostPickerTests()
    {
        Services.AddScoped(sp => new LabSession(sp.GetRequiredService<Microsoft.AspNetCore.Components.Authorization.AuthenticationStateProvider>(), _app.Services.GetRequiredService<LabAccess>()));
        Services.AddSingleton(_app.Services.GetRequiredService<HostDirectory>());
        Services.AddScoped<Dashboard.Web.Components.HostSession>();
        Services.AddFallbackServiceProvider(_app.Services);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _app.Dispose();
        }
    }

    private static DockerNetwork Net(string name, string bridge, string subnet) =>
        new(name + "-id", name, "bridge", "local", bridge, [new(subnet, subnet.Replace(".0/24", ".1", StringComparison.Ordinal))], false, true, false, null, new Dictionary<string, string>(), new Dictionary<string, string>());

    [SkippableFact]
    public async Task TheMatrixOfThePickedAgentHost_IsComputedFromItsRules_AndSaysWhichHost()
    {
        RealHost.Require();
        var otto = await _app.CreateUserAsync("otto", 1, LabRole.Operator);
        SignIn(otto);

        // A 28.5.2 host with the seed's two networks, as its agent reports them.
        var remote = _app.Services.GetRequiredService<HostDirectory>().Connect("engine-285", "c1", new AgentHello(AgentProtocol.Version, "1", null), () => { });
        var dump = File.ReadAllText(TestPaths.CoreFixture("iptables/docker-28.5.2-two-networks-published-port.save"));
        var topology = new HostTopology(new EngineInfo("28.5.2", "1.51", null, null, null, null, FirewallBackend.IptablesNft, "engine-285", null, null),
            [Net("net1", "br-7080e7f0b518", "172.28.1.0/24"), Net("net2", "br-b1a2760b727e", "172.28.2.0/24")], [], [], [], DateTimeOffset.UtcNow, []);
        remote.Apply("c1", new AgentSnapshot(0, CollectorStatus.Starting("x", 4) with { EngineAvailable = true, FirewallAvailable = true }, topology,
            new AgentFirewall(RulesetFormat.IptablesSave, dump, null, DateTimeOffset.UtcNow)));

        Services.GetRequiredService<Dashboard.Web.Components.HostSession>().Select("engine-285");
        var cut = Render<IsolationPage>();
        cut.WaitForAssertion(() => Assert.True(cut.Find("#page-title").TextContent.Contains("on engine-285", StringComparison.Ordinal), cut.Markup[..Math.Min(3000, cut.Markup.Length)]), TimeSpan.FromSeconds(10));
        cut.WaitForAssertion(() =>
        {
            var cell = cut.Find("[data-testid='matrix-cell'][data-from='net2'][data-to='net1']");
            Assert.Equal("false", cell.GetAttribute("data-succeeds"));
        }, TimeSpan.FromSeconds(10));
    }

    [SkippableFact]
    public async Task WhatIf_StacksRules_TheChangedCellShowsItsWalkNowAndWithThem()
    {
        RealHost.Require();
        var otto = await _app.CreateUserAsync("otto", 1, LabRole.Operator);
        SignIn(otto);

        // A 20.10 host with the seed's two isolated networks, as its agent reports them.
        var remote = _app.Services.GetRequiredService<HostDirectory>().Connect("engine-2010", "c1", new AgentHello(AgentProtocol.Version, "1", null), () => { });
        var dump = TestPaths.ReadShared("iptables/docker-20.10-two-networks-isolated.save");
        var topology = new HostTopology(new EngineInfo("20.10.24", "1.41", null, null, null, null, FirewallBackend.IptablesLegacy, "engine-2010", null, null),
            [Net("net1", "br-5bb1f7c6955f", "172.18.0.0/16"), Net("net2", "br-99a370db15a4", "172.19.0.0/16")], [], [], [], DateTimeOffset.UtcNow, []);
        remote.Apply("c1", new AgentSnapshot(0, CollectorStatus.Starting("x", 4) with { EngineAvailable = true, FirewallAvailable = true }, topology,
            new AgentFirewall(RulesetFormat.IptablesSave, dump, null, DateTimeOffset.UtcNow)));

        var cut = Render<WhatIfPanel>(p => p.Add(x => x.By, "networks").Add(x => x.Protocol, "icmp").Add(x => x.Host, "engine-2010"));
        cut.Find("input[data-testid='whatif-source']").Change("172.19.0.0/16");
        cut.Find("input[data-testid='whatif-destination']").Change("172.18.0.0/16");
        cut.Find("[data-testid='whatif-try']").Click();
        cut.WaitForAssertion(() => Assert.Contains("half", cut.Find("[data-testid='whatif-matrix'] [data-testid='matrix-cell'][data-from='net2'][data-to='net1']").ClassList));

        // Keep it, add the reverse: the round trip opens.
        cut.Find("[data-testid='whatif-keep']").Click();
        Assert.Single(cut.FindAll("[data-testid='whatif-stack-rule']"));
        Assert.Contains("-s 172.19.0.0/16 -d 172.18.0.0/16", cut.Find("[data-testid='whatif-stack-rule']").TextContent, StringComparison.Ordinal);
        cut.Find("input[data-testid='whatif-source']").Change("172.18.0.0/16");
        cut.Find("input[data-testid='whatif-destination']").Change("172.19.0.0/16");
        Assert.Contains("these 2 rules", cut.Find("[data-testid='whatif-try']").TextContent, StringComparison.Ordinal);
        cut.Find("[data-testid='whatif-try']").Click();
        cut.WaitForAssertion(() => Assert.Equal("true", cut.Find("[data-testid='whatif-matrix'] [data-testid='matrix-cell'][data-from='net2'][data-to='net1']").GetAttribute("data-succeeds")));
        Assert.Equal(2, cut.FindAll("[data-testid='whatif-command']").Count);
        Assert.Contains("whatif-propose", cut.Markup, StringComparison.Ordinal);
        Assert.Contains("Propose as 2 changes", cut.Find("[data-testid='whatif-propose']").TextContent, StringComparison.Ordinal);

        // The changed cell's walk: dropped in the isolation chain now, accepted in DOCKER-USER with the rules.
        cut.Find("[data-testid='whatif-matrix'] [data-testid='matrix-cell'][data-from='net2'][data-to='net1']").Click();
        var now = cut.Find("[data-testid='whatif-before'] [data-testid='walk'][data-direction='request']").GetAttribute("data-signature");
        var with = cut.Find("[data-testid='whatif-after'] [data-testid='walk'][data-direction='request']").GetAttribute("data-signature");
        Assert.Contains("DOCKER-ISOLATION-STAGE-2", now, StringComparison.Ordinal);
        Assert.True(with!.Contains("filter DOCKER-USER #", StringComparison.Ordinal) && with.EndsWith("ACCEPT", StringComparison.Ordinal), with);
        Assert.Single(cut.FindAll("[data-testid='whatif-after'] [data-testid='walk'][data-direction='reply']"));

        // Only the kept rule: half open again.
        cut.Find("[data-testid='whatif-try-kept']").Click();
        cut.WaitForAssertion(() => Assert.Equal("false", cut.Find("[data-testid='whatif-matrix'] [data-testid='matrix-cell'][data-from='net2'][data-to='net1']").GetAttribute("data-succeeds")));
        Assert.Single(cut.FindAll("[data-testid='whatif-command']"));
    }
}
