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
