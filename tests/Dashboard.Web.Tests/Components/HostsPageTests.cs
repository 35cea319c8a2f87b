using System.Security.Claims;
using Bunit;
using Dashboard.App.Hosts;
using Dashboard.App.Labs;
using Dashboard.Core.Firewall;
using Dashboard.Data.Entities;
using Dashboard.Host.Agents;
using Dashboard.Host.Collector;
using Dashboard.Web.Components.Pages.Admin;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Components;

/// <summary>The Hosts page with the app's real registry and directory: what it lists, what an administrator and a viewer are offered.</summary>
public sealed class HostsPageTests : DashboardTestContext
{
    private readonly DashboardFactory _app = new();

    public HostsPageTests()
    {
        Services.AddSingleton(_app.Services.GetRequiredService<HostDirectory>());
        Services.AddSingleton(_app.Services.GetRequiredService<HostRegistry>());
        Services.AddSingleton(_app.Services.GetRequiredService<LabAccess>());
        Services.AddScoped<LabSession>();
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _app.Dispose();
        }
    }

    private void SignIn(string name, string id, bool admin)
    {
        var auth = AddAuthorization();
        auth.SetAuthorized(name);
        auth.SetClaims([new Claim(ClaimTypes.NameIdentifier, id), .. admin ? new[] { new Claim(Dashboard.App.Access.Actor.AdministratorClaim, "true") } : []]);
    }

    [Fact]
    public async Task ConnectedHost_IsListedWithItsEngineAndLayout_AndAnAdministratorRegistersAndSeesTheTokenOnce()
    {
        var admin = await _app.AdminAsync();
        var registry = _app.Services.GetRequiredService<HostRegistry>();
        await registry.RegisterAsync(admin, "engine-285");
        var host = _app.Services.GetRequiredService<HostDirectory>().Connect("engine-285", "conn-1", new AgentHello(AgentProtocol.Version, "9.9.9", null), () => { });
        var dump = File.ReadAllText(TestPaths.CoreFixture("iptables/docker-28.5.2-two-networks-published-port.save"));
        host.Apply("conn-1", new AgentSnapshot(0, CollectorStatus.Starting("x", 4) with { EngineAvailable = true, FirewallAvailable = true, LastReadAt = DateTimeOffset.UtcNow, AchievedRateHz = 4 }, null,
            new AgentFirewall(RulesetFormat.IptablesSave, dump, null, DateTimeOffset.UtcNow)));

        SignIn(admin.Name, admin.UserId!, admin: true);
        var page = Render<HostsPage>();
        page.WaitForAssertion(() => Assert.Equal(2, page.FindAll("[data-testid='host-row-name']").Count), TimeSpan.FromSeconds(10));
        Assert.Contains("connected", page.Find("[data-testid='host-state']").TextContent, StringComparison.Ordinal);
        Assert.Contains("9.9.9", page.Markup, StringComparison.Ordinal);
        Assert.Contains("Docker 28", page.Markup, StringComparison.Ordinal);

        page.Find("input[data-testid='host-name']").Change("Not A Name");
        page.Find("[data-testid='host-register']").Click();
        page.WaitForAssertion(() => Assert.Contains("lowercase", page.Find("[data-testid='host-error']").TextContent, StringComparison.Ordinal));

        page.Find("input[data-testid='host-name']").Change("engine-261");
        page.Find("[data-testid='host-register']").Click();
        page.WaitForAssertion(() => Assert.StartsWith(AgentProtocol.TokenPrefix, page.Find("[data-testid='host-token']").TextContent, StringComparison.Ordinal));
        Assert.Contains("never connected", page.Markup, StringComparison.Ordinal);

        host.Detach("conn-1");
        page.WaitForAssertion(() => Assert.Equal(["never connected", "disconnected"], page.FindAll("[data-testid='host-state']").Select(e => e.TextContent.Trim())), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task AViewer_SeesTheHosts_ButIsOfferedNoRegistrationOrRevocation()
    {
        var admin = await _app.AdminAsync();
        await _app.Services.GetRequiredService<HostRegistry>().RegisterAsync(admin, "engine-261");
        var viewer = await _app.CreateUserAsync("viewer2", 1, LabRole.Viewer);
        SignIn(viewer.Name, viewer.Id, admin: false);
        var page = Render<HostsPage>();
        page.WaitForAssertion(() => Assert.Equal(2, page.FindAll("[data-testid='host-row-name']").Count), TimeSpan.FromSeconds(10));
        Assert.Empty(page.FindAll("[data-testid='host-register']"));
        Assert.Empty(page.FindAll("[data-testid='host-revoke']"));
    }
}
