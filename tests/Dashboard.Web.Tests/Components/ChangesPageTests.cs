using System.Security.Claims;
using Bunit;
using Dashboard.Core.Changes;
using Dashboard.Data.Entities;
using Dashboard.App.Audit;
using Dashboard.App.Changes;
using Dashboard.Web.Components.Pages.Changes;
using Dashboard.App.Labs;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Components;

/// <summary>
/// The rule changes page per role, rendered with the app's real services (over a test database): what each role is
/// offered, and that a handler acting beyond the role is refused by the service underneath, not by the button alone.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class ChangesPageTests : DashboardTestContext
{
    private readonly DashboardFactory _app = new();

    public ChangesPageTests()
    {
        Services.AddSingleton(_app.Services.GetRequiredService<ChangeRequestService>());
        Services.AddSingleton(_app.Services.GetRequiredService<ChangeReconciler>());
        Services.AddSingleton(_app.Services.GetRequiredService<LabAccess>());
        Services.AddSingleton(_app.Services.GetRequiredService<AuditLog>());
        Services.AddSingleton(_app.Services.GetRequiredService<Dashboard.App.Hosts.HostDirectory>());
        Services.AddScoped<Dashboard.Web.Components.HostSession>();
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

    private void SignIn(TestUser user)
    {
        var auth = AddAuthorization();
        auth.SetAuthorized(user.Name);
        auth.SetClaims(new Claim(ClaimTypes.NameIdentifier, user.Id));
    }

    [SkippableFact]
    public async Task EachRole_IsOfferedOnlyWhatItMayDo()
    {
        RealHost.Require();
        var otto = await _app.CreateUserAsync("otto", 1, LabRole.Operator);
        var anna = await _app.CreateUserAsync("anna", 1, LabRole.Approver);
        var vera = await _app.CreateUserAsync("vera", 1, LabRole.Viewer);
        var changes = _app.Services.GetRequiredService<ChangeRequestService>();
        var proposed = await changes.ProposeAsync(otto.Actor, 1, new ChangeRule { Chain = "DOCKER-USER", Source = "172.31.250.0/24", Target = "ACCEPT" }, "page test", null);

        SignIn(vera);
        var page = Render<ChangesPage>(p => p.Add(x => x.Selected, proposed.Id));
        page.WaitForAssertion(() => Assert.Contains("you are Viewer", page.Find("[data-testid='my-role']").TextContent, StringComparison.Ordinal), TimeSpan.FromSeconds(20));
        Assert.Empty(page.FindAll("[data-testid='propose-panel']"));
        page.WaitForAssertion(() => Assert.Contains("Approver role", page.Find("[data-testid='cannot-decide']").TextContent, StringComparison.Ordinal), TimeSpan.FromSeconds(20));
        Assert.Empty(page.FindAll("[data-testid='approve']"));
        Assert.Equal(Dashboard.App.Access.AccessDenial.Forbidden, (await Assert.ThrowsAsync<Dashboard.App.Access.LabAccessException>(() => changes.ApproveAsync(vera.Actor, proposed.Id, null))).Reason);
    }

    [SkippableFact]
    public async Task Proposer_SeesWhyNot_Approver_SeesApproveAndCommand()
    {
        RealHost.Require();
        var anna = await _app.CreateUserAsync("anna", 1, LabRole.Approver);
        var changes = _app.Services.GetRequiredService<ChangeRequestService>();
        var own = await changes.ProposeAsync(anna.Actor, 1, new ChangeRule { Chain = "DOCKER-USER", Source = "172.31.250.0/24", Target = "ACCEPT" }, "anna's own", null);

        SignIn(anna);
        var page = Render<ChangesPage>(p => p.Add(x => x.Selected, own.Id));
        page.WaitForAssertion(() => Assert.Contains("different member", page.Find("[data-testid='cannot-decide']").TextContent, StringComparison.Ordinal), TimeSpan.FromSeconds(20));
        Assert.NotEmpty(page.FindAll("[data-testid='propose-panel']"));
        Assert.Contains($"--comment {own.Tag} -j ACCEPT", page.Find("[data-testid='change-command']").TextContent, StringComparison.Ordinal);
        Assert.Empty(page.FindAll("[data-testid='approve']"));
    }
}
