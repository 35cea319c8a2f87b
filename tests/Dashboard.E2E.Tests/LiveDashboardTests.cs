using Dashboard.E2E.Tests.Pages;
using Dashboard.TestSupport;
using Microsoft.Playwright;

namespace Dashboard.E2E.Tests;

/// <summary>The dashboard in a real browser against the real host.</summary>
[Trait("Category", "RealHost")]
[Trait("Category", "E2E")]
public class LiveDashboardTests
{
    private static readonly LocatorAssertionsToBeVisibleOptions Visible = new() { Timeout = 15_000 };

    [SkippableFact]
    public async Task Firewall_PingBetweenLabContainers_DropCounterRisesWithoutReload()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        var (net1, _, bridge1, bridge2, c1, c2, c1Ip) = await lab.CreateSeedLabAsync();

        using var app = new DashboardFactory(new() { ["Collector:Enabled"] = "true" }, kestrel: true);
        await using var browser = await BrowserSession.StartAsync();
        var page = await browser.NewPageAsync(app.BaseUri);
        try
        {
            var firewall = new FirewallPage(page);
            await firewall.OpenAsync("firewall");
            var drop = firewall.IsolationDropRow(bridge1);
            await Assertions.Expect(drop).ToBeVisibleAsync(Visible);
            var before = await firewall.PacketsAsync(drop);

            var (sent, received) = await lab.PingAsync(c2, c1Ip, 3);
            Assert.Equal((3, 0), (sent, received));

            await Assertions.Expect(drop.Locator(".pkts")).ToHaveTextAsync((before + 3).ToString(System.Globalization.CultureInfo.InvariantCulture), new() { Timeout = 10_000 });
            await Assertions.Expect(drop).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("moving"));
            await BrowserSession.ScreenshotAsync(page, "firewall");

            var topology = new TopologyPage(page);
            await topology.OpenAsync("topology");
            await Assertions.Expect(topology.Bridge(bridge1)).ToBeVisibleAsync(Visible);
            await Assertions.Expect(topology.Bridge(bridge2)).ToBeVisibleAsync(Visible);
            foreach (var c in new[] { c1, c2 })
            {
                var veth = (await lab.RunAsync("ip", "-o", "link", "show", "master", c == c1 ? bridge1 : bridge2)).Split(':')[1].Trim().Split('@')[0];
                await Assertions.Expect(topology.Veth(veth)).ToBeVisibleAsync(Visible);
            }

            await Assertions.Expect(topology.DropPoint(bridge1)).ToContainTextAsync($"{before + 3} dropped");
            await BrowserSession.ScreenshotAsync(page, "topology");

            foreach (var (path, name) in new[] { ("", "overview"), ("networks", "networks"), ($"networks/{net1}", "network-detail"), ("containers", "containers") })
            {
                await new DashboardPage(page).OpenAsync(path);
                await page.WaitForTimeoutAsync(300);
                await BrowserSession.ScreenshotAsync(page, name);
            }
        }
        catch
        {
            await BrowserSession.ScreenshotAsync(page, "failure-" + nameof(Firewall_PingBetweenLabContainers_DropCounterRisesWithoutReload));
            throw;
        }
    }

    [SkippableFact]
    public async Task Overview_EngineSocketCutAndRestored_ShowsTheOutageAndRecovers()
    {
        RealHost.Require();
        await using var proxy = new UnixSocketProxy();
        proxy.Start();
        using var app = new DashboardFactory(new() { ["Collector:Enabled"] = "true", ["Host:DockerEndpoint"] = proxy.Endpoint, ["Collector:RetryDelay"] = "00:00:01" }, kestrel: true);
        await using var browser = await BrowserSession.StartAsync();
        var page = await browser.NewPageAsync(app.BaseUri);
        try
        {
            var overview = new OverviewPage(page);
            await overview.OpenAsync("");
            await Assertions.Expect(overview.EngineVersion).ToBeVisibleAsync(Visible);

            await proxy.StopAsync();
            await Assertions.Expect(overview.EngineError).ToBeVisibleAsync(Visible);
            await Assertions.Expect(overview.EngineError).ToContainTextAsync("did not answer");
            await Assertions.Expect(overview.StaleTopology).ToBeVisibleAsync(Visible);
            await BrowserSession.ScreenshotAsync(page, "overview-engine-down");

            proxy.Start();
            await Assertions.Expect(overview.EngineError).ToHaveCountAsync(0, new() { Timeout = 15_000 });
            await Assertions.Expect(overview.StaleTopology).ToHaveCountAsync(0);
            await Assertions.Expect(overview.EngineVersion).ToBeVisibleAsync(Visible);
            await BrowserSession.ScreenshotAsync(page, "overview-engine-back");
        }
        catch
        {
            await BrowserSession.ScreenshotAsync(page, "failure-" + nameof(Overview_EngineSocketCutAndRestored_ShowsTheOutageAndRecovers));
            throw;
        }
    }
}
