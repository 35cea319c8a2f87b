using Bunit;
using Dashboard.Web.Components.Layout;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor;

namespace Dashboard.Web.Tests.Components;

/// <summary>The chrome every circuit renders: the shared theme and the one-component menu.</summary>
public class LayoutTests : DashboardTestContext
{
    private static readonly MudTheme Theme = new() { PaletteLight = new PaletteLight { Primary = "#1565c0" } };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SharedThemeProvider_RendersWhatMudBlazorsProviderRenders(bool dark)
    {
        var mud = Render<MudThemeProvider>(p => p.Add(x => x.Theme, Theme).Add(x => x.IsDarkMode, dark));
        var shared = Render<SharedThemeProvider>(p => p.Add(x => x.Theme, Theme).Add(x => x.IsDarkMode, dark));

        shared.MarkupMatches(mud.Markup);
        Assert.Contains(dark ? "--mud-palette-background: rgba(50,51,61,1)" : "--mud-palette-primary: rgba(21,101,192,1)", shared.Markup, StringComparison.Ordinal);
    }

    [Fact]
    public void SharedThemeProvider_GivesEveryCircuitTheSameString()
    {
        var one = new string('x', 1).Replace("x", "<style>:root{--a:1}</style>", StringComparison.Ordinal);
        var two = string.Concat("<style>:root{", "--a:1}</style>");

        Assert.NotSame(one, two);
        Assert.Same(SharedThemeProvider.Share(one).Value, SharedThemeProvider.Share(two).Value);
    }

    [Theory]
    [InlineData("", "Overview")]
    [InlineData("firewall", "Firewall")]
    [InlineData("firewall?table=nat&chain=POSTROUTING", "Firewall")]
    [InlineData("networks/5bb1f7c6955f", "Networks")]
    [InlineData("runs/42#compare", "Run history")]
    [InlineData("changes/", "Rule changes")]
    [InlineData("?host=docker-285", "Overview")]
    public void NavMenu_MarksThePageItIsOn(string address, string active)
    {
        Services.GetRequiredService<NavigationManager>().NavigateTo(address);

        var cut = Render<NavMenu>();

        var links = cut.FindAll("a.mud-nav-link");
        Assert.Equal(12, links.Count);
        var current = Assert.Single(cut.FindAll("a.active"));
        Assert.Equal(active, current.TextContent);
        Assert.Equal("page", current.GetAttribute("aria-current"));
    }

    [Theory]
    [InlineData("account/tokens")]
    [InlineData("firewallx")]
    public void NavMenu_OnAPageNotInIt_MarksNone(string address)
    {
        Services.GetRequiredService<NavigationManager>().NavigateTo(address);

        var cut = Render<NavMenu>();

        Assert.Empty(cut.FindAll("a.active"));
    }

    [Fact]
    public void NavMenu_FollowsNavigation()
    {
        var nav = Services.GetRequiredService<NavigationManager>();
        nav.NavigateTo("topology");
        var cut = Render<NavMenu>();

        nav.NavigateTo("audit");

        cut.WaitForAssertion(() => Assert.Equal("Audit log", cut.Find("a.active").TextContent));
    }
}
