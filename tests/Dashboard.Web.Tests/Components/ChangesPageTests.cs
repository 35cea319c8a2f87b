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

    [SkippableFact]
    public async Task Revert_AsksOnce_KeepItChangesNothing_YesRemovesTheRule()
    {
        RealHost.Require();
        var otto = await _app.CreateUserAsync("otto", 1, LabRole.Operator);
        var anna = await _app.CreateUserAsync("anna", 1, LabRole.Approver);
        var changes = _app.Services.GetRequiredService<ChangeRequestService>();
        var c = await changes.ProposeAsync(otto.Actor, 1, new ChangeRule { Chain = "DOCKER-USER", Source = "172.31.251.0/24", Destination = "172.31.252.0/24", Target = "ACCEPT" }, "revert test", 300);
        await changes.ApproveAsync(anna.Actor, c.Id, null);
        try
        {
            SignIn(otto);
            var page = Render<ChangesPage>(p => p.Add(x => x.Selected, c.Id));
            page.WaitForElement("[data-testid='revert']", TimeSpan.FromSeconds(20)).Click();
            var confirm = page.Find("[data-testid='revert-confirm']");
            Assert.Contains($"Remove change {c.Id}'s rule", confirm.TextContent, StringComparison.Ordinal);
            Assert.Contains(c.Tag, confirm.TextContent, StringComparison.Ordinal);

            page.Find("[data-testid='revert-no']").Click();
            Assert.Empty(page.FindAll("[data-testid='revert-confirm']"));
            Assert.Equal(ChangeState.Applied, (await changes.GetAsync(otto.Actor, c.Id)).State);

            page.Find("[data-testid='revert']").Click();
            page.Find("[data-testid='revert-yes']").Click();
            page.WaitForAssertion(() => Assert.Empty(page.FindAll("[data-testid='revert']")), TimeSpan.FromSeconds(20));
            Assert.Equal(ChangeState.Reverted, (await changes.GetAsync(otto.Actor, c.Id)).State);
            Assert.DoesNotContain(c.Tag, (await new Dashboard.Host.Processes.ProcessRunner().RunAsync("iptables-save", [], TimeSpan.FromSeconds(20))).StdOut, StringComparison.Ordinal);
        }
        finally
        {
            if ((await changes.GetAsync(otto.Actor, c.Id)).State == ChangeState.Applied)
            {
                await changes.RevertAsync(otto.Actor, c.Id);
            }
        }
    }
}
