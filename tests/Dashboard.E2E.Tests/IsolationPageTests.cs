using Dashboard.E2E.Tests.Pages;
using Dashboard.TestSupport;
using Microsoft.Playwright;

namespace Dashboard.E2E.Tests;

/// <summary>The isolation matrix in the browser: prediction, proof by pings, a cell's path, what-if, and a pasted dump explained.</summary>
[Trait("Category", "RealHost")]
[Trait("Category", "E2E")]
public class IsolationPageTests
{
    private static readonly LocatorAssertionsToBeVisibleOptions Visible = new() { Timeout = 15_000 };

    [SkippableFact]
    public async Task Matrix_SeedLab_PredictVerifyWhatIfAndExplain()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        using var app = new DashboardFactory(new() { ["Collector:Enabled"] = "true" }, kestrel: true);
        await using var browser = await BrowserSession.StartAsync();
        var page = await browser.NewPageAsync(app.BaseUri);
        try
        {
            await new DashboardPage(page).OpenAsync("isolation");
            var cell = page.Locator($"[data-testid='matrix'] [data-testid='matrix-cell'][data-from='{seed.Net2}'][data-to='{seed.Net1}']");
            await Assertions.Expect(cell).ToBeVisibleAsync(Visible);
            await Assertions.Expect(cell).ToHaveAttributeAsync("data-succeeds", "false");
            await Assertions.Expect(cell).ToContainTextAsync("DOCKER-ISOLATION-STAGE-2");

            // Proof: real pings from inside the lab containers agree with every probed cell.
            await page.Locator("[data-testid='matrix-verify']").ClickAsync();
            await Assertions.Expect(page.Locator("[data-testid='verify-summary']")).ToContainTextAsync(" 0 disagreed", new() { Timeout = 60_000 });
            await Assertions.Expect(cell).ToHaveAttributeAsync("data-agreement", "agreed");

            // A cell's path, rule by rule.
            await cell.ClickAsync();
            await Assertions.Expect(page.Locator("[data-testid='cell-detail'] [data-testid='path-deciding']").First).ToContainTextAsync($"-o {seed.Bridge1} -j DROP");

            // The packet's walk, drawn: it dies in the FORWARD hook's filter table, by the isolation DROP.
            var walk = page.Locator("[data-testid='cell-detail'] [data-testid='walk'][data-direction='request']");
            await Assertions.Expect(walk).ToHaveAttributeAsync("data-verdict", "DROP");
            await Assertions.Expect(walk.Locator("[data-testid='walk-station'][data-decides='true']")).ToHaveAttributeAsync("data-table", "filter");
            await Assertions.Expect(walk.Locator("[data-testid='walk-station'][data-decides='true']")).ToHaveAttributeAsync("data-hook", "forward");
            await Assertions.Expect(walk.Locator("[data-testid='walk-rule']").Last).ToHaveAttributeAsync("href", new System.Text.RegularExpressions.Regex("chain=DOCKER-ISOLATION-STAGE-2"));
            await walk.ScreenshotAsync(new() { Path = Path.Combine(BrowserSession.ScreenshotDirectory, "walk-matrix-cell.png") });

            // What-if: ACCEPT net2 → net1 at the head of DOCKER-USER delivers the request; the reply still dies.
            await page.Locator("[data-testid='whatif-preset-docker-user']").ClickAsync();
            await page.Locator("[data-testid='whatif-try']").ClickAsync();
            await Assertions.Expect(page.Locator("[data-testid='whatif-changes']")).ToContainTextAsync("change", new() { Timeout = 15_000 });
            var after = page.Locator($"[data-testid='whatif-matrix'] [data-testid='matrix-cell'][data-from='{seed.Net2}'][data-to='{seed.Net1}']");
            await Assertions.Expect(after).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("changed"));
            await Assertions.Expect(after).ToContainTextAsync("→✕");
            await Assertions.Expect(page.Locator("[data-testid='whatif-command']")).ToContainTextAsync("iptables -w 5 -t filter -I DOCKER-USER 1");
            await BrowserSession.ScreenshotAsync(page, "isolation");
            Assert.Equal(0, await lab.CountTaggedRulesAsync());

            // The rule tried here becomes a change request of the chosen lab; it is only proposed, nothing touches the host.
            await page.Locator("[data-testid='whatif-rationale'] input, input[data-testid='whatif-rationale']").First.FillAsync("net2 must reach net1");
            await page.Locator("[data-testid='whatif-propose']").ClickAsync();
            await Assertions.Expect(page.Locator("[data-testid='whatif-proposed']")).ToContainTextAsync("change 1", new() { Timeout = 10_000 });
            Assert.DoesNotContain("netlab:change-", (await lab.RunAsync("iptables-save")), StringComparison.Ordinal);

            // Explain a dump from another machine (the Docker 17 seed), pasted.
            await page.GetByRole(AriaRole.Tab, new() { Name = "Explain a dump" }).ClickAsync();
            await page.Locator("[data-testid='explain-dump'] textarea, textarea[data-testid='explain-dump']").First.FillAsync(TestPaths.ReadShared("iptables/docker-17-seed-isolated.save"));
            await page.Locator("[data-testid='explain-in'] input, input[data-testid='explain-in']").First.FillAsync("br-576fd0522c4e");
            await page.Locator("[data-testid='explain-out'] input, input[data-testid='explain-out']").First.FillAsync("br-340fda49f12b");
            await page.Locator("[data-testid='explain-source'] input, input[data-testid='explain-source']").First.FillAsync("172.19.0.2");
            await page.Locator("[data-testid='explain-destination'] input, input[data-testid='explain-destination']").First.FillAsync("172.18.0.2");
            await page.Locator("[data-testid='explain-run']").ClickAsync();
            await Assertions.Expect(page.Locator("[data-testid='explain-outcome']")).ToHaveTextAsync("the request is dropped", new() { Timeout = 10_000 });
            await Assertions.Expect(page.Locator("[data-testid='explain-result'] [data-testid='path-deciding']")).ToContainTextAsync("-A DOCKER-ISOLATION -i br-576fd0522c4e -o br-340fda49f12b -j DROP");
            await BrowserSession.ScreenshotAsync(page, "explain");
        }
        catch
        {
            await BrowserSession.ScreenshotAsync(page, "failure-" + nameof(Matrix_SeedLab_PredictVerifyWhatIfAndExplain));
            throw;
        }
    }
}
