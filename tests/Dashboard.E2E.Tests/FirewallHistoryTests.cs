using System.Diagnostics;
using Dashboard.App.Firewall;
using Dashboard.App.Live;
using Dashboard.E2E.Tests.Pages;
using Dashboard.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Dashboard.E2E.Tests;

/// <summary>A rule inserted by hand with iptables: the banner on the page a person has open, then the history page and its diff.</summary>
[Trait("Category", "RealHost")]
[Trait("Category", "E2E")]
public class FirewallHistoryTests
{
    [SkippableFact]
    public async Task HandInsertedRule_BannerWithinFiveSecondsThenHistoryAndDiff()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        using var app = new DashboardFactory(new() { ["Collector:Enabled"] = "true" }, kestrel: true);
        await using var browser = await BrowserSession.StartAsync();
        var page = await browser.NewPageAsync(app.BaseUri);
        var comment = $"nltest-outside-{lab.Id}";
        string[] spec = ["DOCKER-USER", "-s", "198.18.254.1/32", "-d", "198.18.254.2/32", "-m", "comment", "--comment", comment, "-j", "RETURN"];
        var inserted = false;
        try
        {
            var history = new FirewallHistoryPage(page);
            await history.OpenAsync("networks");
            // The history has its first checkpoint once the collector's first read is recorded.
            var queries = app.Services.GetRequiredService<FirewallHistoryQueries>();
            var host = app.Services.GetRequiredService<LiveFeed>().Host;
            for (var i = 0; i < 100 && await queries.LatestShapeAsync(host) is null; i++)
            {
                await Task.Delay(100);
            }

            var clock = Stopwatch.StartNew();
            await lab.RunAsync("iptables", ["-w", "5", "-I", .. spec[..1], "1", .. spec[1..]]);
            inserted = true;
            await Assertions.Expect(history.OutsideBanner(comment)).ToBeVisibleAsync(new() { Timeout = 15_000 });
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"the banner came {clock.Elapsed.TotalSeconds:0.0} s after the insert");
            await BrowserSession.ScreenshotAsync(page, "outside-change-banner");

            // Another page of the same host shows it too; the link leads to the history filtered to outside changes.
            await history.OpenAsync("firewall");
            await Assertions.Expect(history.OutsideBanner(comment)).ToBeVisibleAsync(new() { Timeout = 10_000 });
            await history.OutsideBanner(comment).Locator("[data-testid='outside-change-history']").ClickAsync();
            await Assertions.Expect(history.Rows("Outside", comment)).ToHaveCountAsync(1, new() { Timeout = 10_000 });
            await Assertions.Expect(history.Picture).ToBeVisibleAsync();

            // The diff around that read shows the rule added at the head of DOCKER-USER.
            await history.Rows("Outside", comment).Locator("[data-testid='diff-read']").ClickAsync();
            var line = history.DiffTable.Locator("tr[data-kind='Added'][data-cause='Outside']").Filter(new() { HasText = comment });
            await Assertions.Expect(line).ToHaveCountAsync(1, new() { Timeout = 10_000 });
            await Assertions.Expect(line).ToContainTextAsync("#1");
            await BrowserSession.ScreenshotAsync(page, "firewall-history");

            // Dismissed, it stays away on the next page.
            await history.OutsideBanner(comment).Locator("[data-testid='outside-change-dismiss']").ClickAsync();
            await Assertions.Expect(history.OutsideBanner(comment)).ToHaveCountAsync(0);
            await history.Page.Locator("a[href='networks']").First.ClickAsync();
            await page.WaitForTimeoutAsync(500);
            await Assertions.Expect(history.OutsideBanner(comment)).ToHaveCountAsync(0);
        }
        catch
        {
            await BrowserSession.ScreenshotAsync(page, "failure-" + nameof(HandInsertedRule_BannerWithinFiveSecondsThenHistoryAndDiff));
            throw;
        }
        finally
        {
            if (inserted)
            {
                await lab.RunAsync("iptables", ["-w", "5", "-D", .. spec]);
            }
        }
    }
}
