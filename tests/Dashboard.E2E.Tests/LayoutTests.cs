using Dashboard.E2E.Tests.Pages;
using Dashboard.TestSupport;
using Microsoft.Playwright;

namespace Dashboard.E2E.Tests;

/// <summary>The app's chrome at a laptop's and a phone's size: what must be on screen without scrolling.</summary>
[Trait("Category", "E2E")]
public class LayoutTests
{
    /// <summary>Whether the element's box lies wholly inside the viewport (no scrolling needed to see it).</summary>
    internal static async Task<bool> InViewportAsync(IPage page, ILocator element)
    {
        var box = await element.BoundingBoxAsync();
        var size = page.ViewportSize!;
        return box is not null && box.Width > 0 && box.X >= 0 && box.Y >= 0 && box.X + box.Width <= size.Width + 0.5 && box.Y + box.Height <= size.Height + 0.5;
    }

    /// <summary>
    /// Table cells and page parts whose right edge lies beyond the viewport (something a person would have to scroll
    /// sideways to read). A matrix is a picture of many columns and scrolls inside its own box on a phone: left out.
    /// </summary>
    internal static async Task AssertNothingOffToTheRightAsync(IPage page, string what)
    {
        var off = await page.EvaluateAsync<string[]>("""
            () => Array.from(document.querySelectorAll('.mud-main-content td, .mud-main-content th, .mud-main-content .mud-button-root, header .mud-icon-button, header select'))
              .filter(e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden' && !e.closest('.matrix-wrap'))
              .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
              .slice(0, 5).map(e => e.tagName + ' "' + (e.textContent || '').trim().slice(0, 40) + '" right ' + Math.round(e.getBoundingClientRect().right))
            """);
        Assert.True(off.Length == 0, $"{what} at {page.ViewportSize!.Width} px: {string.Join("; ", off)}");
        var (scroll, width) = (await page.EvaluateAsync<int>("() => document.scrollingElement.scrollWidth"), await page.EvaluateAsync<int>("() => window.innerWidth"));
        Assert.True(scroll <= width + 1, $"{what} at {width} px: the page is {scroll} px wide");
    }

    /// <summary>
    /// The pages the first hour found clipped, at a laptop's and a phone's size: the Firewall's columns (owner and last
    /// minute) and the capture sessions' Stop and pcap on screen without scrolling sideways, the app bar's buttons on a
    /// phone, the theme kept across a reload, the lab picker readable in dark, and a focused heading without an outline.
    /// </summary>
    [SkippableFact]
    public async Task BusiestPages_FitALaptopAndAPhone_TheBarsButtonsStayOnScreen_TheThemeIsKept()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        using var app = new DashboardFactory(new() { ["Collector:Enabled"] = "true" }, kestrel: true);
        await using var browser = await BrowserSession.StartAsync();
        var laptop = await browser.NewPageAsync(app.BaseUri, width: 1440, height: 900);
        var phone = await browser.NewPageAsync(app.BaseUri, width: 390, height: 844);
        try
        {
            // A capture on the seed's first bridge, started in the page.
            var captures = new CapturesPage(laptop);
            await captures.OpenAsync($"captures?interface={seed.Bridge1}");
            await captures.FilterInput.FillAsync("icmp");
            await captures.Start.ClickAsync();
            await Assertions.Expect(captures.Session(seed.Bridge1).Locator("[data-testid='capture-stop']")).ToBeVisibleAsync(new() { Timeout = 15_000 });

            foreach (var page in new[] { laptop, phone })
            {
                var size = page.ViewportSize!.Width;
                await new DashboardPage(page).OpenAsync("firewall");
                var first = page.Locator("[data-testid='rule-filter-FORWARD-1']");
                await Assertions.Expect(first).ToBeVisibleAsync(new() { Timeout = 15_000 });
                await first.ScrollIntoViewIfNeededAsync();
                Assert.True(await InViewportAsync(page, first.Locator("[data-owner]")), $"the owner of FORWARD #1 at {size} px");
                Assert.True(await InViewportAsync(page, first.Locator("td.activity")), $"the last minute of FORWARD #1 at {size} px");
                await AssertNothingOffToTheRightAsync(page, "Firewall");
                await BrowserSession.ScreenshotAsync(page, $"layout-firewall-{size}");

                await new DashboardPage(page).OpenAsync("captures");
                var session = page.Locator($"[data-testid='capture-row'][data-interface='{seed.Bridge1}']").First;
                await Assertions.Expect(session).ToBeVisibleAsync(new() { Timeout = 15_000 });
                Assert.True(await InViewportAsync(page, session.Locator("[data-testid='capture-stop']")), $"Stop at {size} px");
                Assert.True(await InViewportAsync(page, session.Locator("[data-testid='capture-pcap']")), $"pcap at {size} px");
                await AssertNothingOffToTheRightAsync(page, "Captures");
                await BrowserSession.ScreenshotAsync(page, $"layout-captures-{size}");

                foreach (var control in new[] { "[data-testid='drawer-button']", "[data-testid='theme-toggle']", "[data-testid='sign-out']", "[data-testid='account-menu'] summary", "[data-testid='lab-picker'] select" })
                {
                    Assert.True(await InViewportAsync(page, page.Locator(control)), $"{control} in the app bar at {size} px");
                }
            }

            // The theme: dark after the toggle, still dark after a reload; the lab picker reads well on it.
            static Task<string> SurfaceAsync(IPage p) => p.EvaluateAsync<string>("() => getComputedStyle(document.documentElement).getPropertyValue('--mud-palette-surface').trim()");
            var light = await SurfaceAsync(laptop);
            await laptop.Locator("[data-testid='theme-toggle']").ClickAsync();
            await Eventually.UntilAsync(async () => await SurfaceAsync(laptop) != light, () => "the dark theme", seconds: 10);
            var dark = await SurfaceAsync(laptop);
            await new DashboardPage(laptop).OpenAsync("captures");
            await Eventually.UntilAsync(async () => await SurfaceAsync(laptop) == dark, () => "the dark theme after a reload", seconds: 10);
            var contrast = await laptop.EvaluateAsync<double>("""
                () => {
                  const s = getComputedStyle(document.querySelector("[data-testid='lab-picker'] select"));
                  const rgb = c => c.match(/[\d.]+/g).slice(0, 3).map(Number).map(v => v / 255).map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
                  const lum = c => { const [r, g, b] = rgb(c); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
                  const [a, b] = [lum(s.color), lum(s.backgroundColor)].sort((x, y) => y - x);
                  return (a + 0.05) / (b + 0.05);
                }
                """);
            Assert.True(contrast >= 4.5, $"the lab picker's text against its background in dark: contrast {contrast:0.0}");
            await BrowserSession.ScreenshotAsync(laptop, "layout-captures-dark");
            await laptop.Locator("[data-testid='theme-toggle']").ClickAsync();
            await Eventually.UntilAsync(async () => await SurfaceAsync(laptop) == light, () => "the light theme again", seconds: 10);

            // A heading focused after navigation is not drawn as a control.
            await laptop.GotoAsync("account/password");
            var outline = await laptop.EvaluateAsync<string>("() => { const h = document.querySelector('h1'); h.focus(); return getComputedStyle(h).outlineStyle; }");
            Assert.Equal("none", outline);

            await new DashboardPage(laptop).OpenAsync("captures");
            await laptop.Locator($"[data-testid='capture-row'][data-interface='{seed.Bridge1}'] [data-testid='capture-stop']").ClickAsync();
        }
        catch
        {
            await BrowserSession.ScreenshotAsync(laptop, "failure-layout-laptop");
            await BrowserSession.ScreenshotAsync(phone, "failure-layout-phone");
            throw;
        }
    }

    [SkippableFact]
    public async Task Drawer_BesideThePageOnALaptop_OverItOnAPhone_FoldsAndOpensWithTheMenuButton()
    {
        using var app = new DashboardFactory(kestrel: true);
        await using var browser = await BrowserSession.StartAsync();

        // 1440 × 900: the menu stands beside the page; the button folds it and the page takes the room.
        var laptop = await browser.NewPageAsync(app.BaseUri, width: 1440, height: 900);
        await new DashboardPage(laptop).OpenAsync("firewall");
        var link = laptop.Locator("[data-testid='drawer'] a[href='isolation']");
        await Assertions.Expect(laptop.Locator("[data-testid='drawer'] a.active")).ToHaveTextAsync("Firewall");
        Assert.True(await InViewportAsync(laptop, link));
        var title = laptop.Locator("#page-title");
        var titleX = (await title.BoundingBoxAsync())!.X;
        await laptop.Locator("[data-testid='drawer-button']").ClickAsync();
        await Assertions.Expect(link).Not.ToBeInViewportAsync(new() { Timeout = 5_000 });
        await Eventually.UntilAsync(async () => (await title.BoundingBoxAsync())!.X < titleX - 100, () => "the page to take the folded drawer's room", seconds: 5);
        await laptop.Locator("[data-testid='drawer-button']").ClickAsync();
        await Assertions.Expect(link).ToBeInViewportAsync(new() { Ratio = 1, Timeout = 5_000 });

        // 390 × 844: folded at first; the button opens it over the page, and following a link folds it again.
        var phone = await browser.NewPageAsync(app.BaseUri, width: 390, height: 844);
        await new DashboardPage(phone).OpenAsync("firewall");
        var phoneLink = phone.Locator("[data-testid='drawer'] a[href='isolation']");
        Assert.False(await InViewportAsync(phone, phoneLink));
        Assert.True(await InViewportAsync(phone, phone.Locator("[data-testid='drawer-button']")));
        await phone.Locator("[data-testid='drawer-button']").ClickAsync();
        await Assertions.Expect(phoneLink).ToBeInViewportAsync(new() { Ratio = 1, Timeout = 5_000 });
        await BrowserSession.ScreenshotAsync(phone, "drawer-phone-open");
        await phoneLink.ClickAsync();
        await Assertions.Expect(phone).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/isolation$"));
        await Assertions.Expect(phoneLink).Not.ToBeInViewportAsync(new() { Timeout = 5_000 });
        await Assertions.Expect(phone.Locator("[data-testid='drawer'] a.active")).ToHaveTextAsync("Who can reach whom");
    }
}
