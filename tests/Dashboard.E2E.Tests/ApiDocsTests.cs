using Dashboard.TestSupport;
using Microsoft.Playwright;

namespace Dashboard.E2E.Tests;

/// <summary>The API's interactive page (Scalar) in Chromium: it renders the dashboard's document under the strict content security policy, with no violation.</summary>
[Trait("Category", "E2E")]
public class ApiDocsTests
{
    [SkippableFact]
    public async Task TheDocsPage_RendersTheOperations_WithoutAnyPolicyViolation()
    {
        RealHost.Require();
        using var app = new DashboardFactory(kestrel: true);
        await using var browser = await BrowserSession.StartAsync();
        var page = await browser.NewPageAsync(app.BaseUri);
        var violations = new List<string>();
        page.Console += (_, m) =>
        {
            if (m.Type == "error" && m.Text.Contains("Content Security Policy", StringComparison.OrdinalIgnoreCase))
            {
                lock (violations)
                {
                    violations.Add(m.Text);
                }
            }
        };
        var outside = new List<string>();
        page.Request += (_, r) =>
        {
            if (!r.Url.StartsWith(app.BaseUri.ToString(), StringComparison.Ordinal) && !r.Url.StartsWith("data:", StringComparison.Ordinal))
            {
                lock (outside)
                {
                    outside.Add(r.Url);
                }
            }
        };

        await page.GotoAsync(new Uri(app.BaseUri, "api/docs/v1").ToString());
        await Assertions.Expect(page.GetByText("Network isolation lab dashboard").First).ToBeVisibleAsync(new() { Timeout = 30_000 });
        await page.GetByRole(AriaRole.Button, new() { Name = "Open Group - Changes" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "/api/changes/{id}/stage HTTP Method: POST" })).ToBeVisibleAsync(new() { Timeout = 15_000 });
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Ask AI" })).ToHaveCountAsync(0);
        await BrowserSession.ScreenshotAsync(page, "api-docs");
        Assert.Empty(violations);
        Assert.Empty(outside);
    }
}
