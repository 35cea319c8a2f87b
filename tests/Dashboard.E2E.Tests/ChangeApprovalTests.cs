using Dashboard.Data.Entities;
using Dashboard.E2E.Tests.Pages;
using Dashboard.Host.Netfilter;
using Dashboard.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Dashboard.E2E.Tests;

/// <summary>
/// Two people in two browsers: Alice (Operator) proposes the two ACCEPT rules between the seed's networks, Bob (Approver)
/// reviews the what-if and the command and approves; Alice's page follows live; the ping from c2 to c1 starts to succeed;
/// the audit page shows every step. Also: sign-in required everywhere, and the first-start set-up page.
/// </summary>
[Trait("Category", "RealHost")]
[Trait("Category", "E2E")]
public class ChangeApprovalTests
{
    private static readonly LocatorAssertionsToBeVisibleOptions Visible = new() { Timeout = 15_000 };

    [SkippableFact]
    public async Task OperatorProposes_ApproverApprovesInAnotherBrowser_PingStartsToSucceed_AuditShowsIt()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        var instance = "e" + Guid.NewGuid().ToString("N")[..8];
        using var app = new DashboardFactory(new() { ["Host:InstanceId"] = instance, ["Collector:Enabled"] = "true" }, kestrel: true);
        await app.CreateUserAsync("alice", 1, LabRole.Operator);
        await app.CreateUserAsync("bob", 1, LabRole.Approver);
        await using var browser = await BrowserSession.StartAsync();
        try
        {
            Assert.Equal((3, 0), await lab.PingAsync(seed.C2, seed.C1Ip));

            var alice = new ChangesPage(await browser.NewPageAsync(app.BaseUri, "alice"));
            await alice.OpenAsync("changes");
            await Assertions.Expect(alice.Page.Locator("[data-testid='my-role']")).ToContainTextAsync("Operator");
            await alice.ProposeAsync(seed.Bridge2, seed.Bridge1, "c2 on net2 must reach c1 on net1 (request)");
            await Assertions.Expect(alice.State(1)).ToHaveAttributeAsync("data-state", "Proposed", new() { Timeout = 15_000 });
            await alice.ProposeAsync(seed.Bridge1, seed.Bridge2, "replies from c1 back to c2");
            await Assertions.Expect(alice.State(2)).ToHaveAttributeAsync("data-state", "Proposed", new() { Timeout = 15_000 });

            // Alice cannot approve her own change: the page says who must, the server would refuse anyway.
            await alice.Row(1).ClickAsync();
            await Assertions.Expect(alice.Review.Locator("[data-testid='cannot-decide']")).ToBeVisibleAsync(Visible);
            await Assertions.Expect(alice.Review.Locator("[data-testid='approve']")).ToHaveCountAsync(0);

            // Alice stages the request: it counts the pings and they still fail.
            await alice.Review.Locator("[data-testid='stage']").ClickAsync();
            await Assertions.Expect(alice.Review.Locator("[data-testid='staged-packets']")).ToBeVisibleAsync(Visible);
            Assert.Equal((3, 0), await lab.PingAsync(seed.C2, seed.C1Ip));

            var bob = new ChangesPage(await browser.NewPageAsync(app.BaseUri, "bob"));
            await bob.OpenAsync("changes");
            await bob.Row(1).ClickAsync();

            // Bob sees the evidence beside the what-if, live from the host's counters.
            await Assertions.Expect(bob.Review.Locator("[data-testid='staged-packets']")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^([3-9]|[1-9][0-9]+)$"), new() { Timeout = 15_000 });
            await Assertions.Expect(bob.Review.Locator("[data-testid='change-timeline'] [data-step='staged']")).ToContainTextAsync("alice");
            await Assertions.Expect(bob.Review.Locator("[data-testid='change-command']")).ToContainTextAsync($"iptables -w 5 -t filter -I DOCKER-USER 1 -i {seed.Bridge2} -o {seed.Bridge1} -m comment --comment netlab:change-{instance}-1 -j ACCEPT", new() { Timeout = 15_000 });
            await Assertions.Expect(bob.Review.Locator("[data-testid='whatif-alone']")).ToBeVisibleAsync(Visible);

            // With the other open proposal the matrix shows net2 → net1 succeeding.
            await Assertions.Expect(bob.Review.Locator("[data-testid='whatif-together']")).ToContainTextAsync("#2", new() { Timeout = 15_000 });
            await Assertions.Expect(bob.Review).ToContainTextAsync($"{seed.Net2} → {seed.Net1}");
            await BrowserSession.ScreenshotAsync(bob.Page, "change-review");
            await bob.Review.Locator("[data-testid='approve']").ClickAsync();
            await Assertions.Expect(bob.State(1)).ToHaveAttributeAsync("data-state", "Applied", new() { Timeout = 20_000 });
            await bob.Row(2).ClickAsync();
            await bob.Review.Locator("[data-testid='approve']").ClickAsync();
            await Assertions.Expect(bob.State(2)).ToHaveAttributeAsync("data-state", "Applied", new() { Timeout = 20_000 });
            await Assertions.Expect(bob.Review.Locator("[data-testid='change-timeline'] [data-step='applied']")).ToBeVisibleAsync(Visible);
            await Assertions.Expect(bob.Review.Locator("[data-testid='change-timeline'] [data-step='proposed']")).ToContainTextAsync("alice");
            await Assertions.Expect(bob.Review.Locator("[data-testid='change-outcome']")).ToContainTextAsync("verified: present once in filter DOCKER-USER");
            await BrowserSession.ScreenshotAsync(bob.Page, "change-applied");

            // Alice's page follows without a reload.
            await Assertions.Expect(alice.State(1)).ToHaveAttributeAsync("data-state", "Applied", new() { Timeout = 15_000 });
            await Assertions.Expect(alice.State(2)).ToHaveAttributeAsync("data-state", "Applied", new() { Timeout = 15_000 });

            var (sent, received) = await lab.PingAsync(seed.C2, seed.C1Ip);
            Assert.True(received > 0, $"ping after both approvals: {received}/{sent}");

            // The audit page: proposals, approvals, the applied commands.
            var audit = new DashboardPage(bob.Page);
            await audit.OpenAsync("audit");
            var table = bob.Page.Locator("[data-testid='audit-table']");
            await Assertions.Expect(table).ToContainTextAsync("change.proposed", new() { Timeout = 15_000 });
            await Assertions.Expect(table).ToContainTextAsync("change.approved");
            await Assertions.Expect(table).ToContainTextAsync("change.applied");
            await Assertions.Expect(table).ToContainTextAsync($"--comment netlab:change-{instance}-2 -j ACCEPT");
            await Assertions.Expect(table).ToContainTextAsync("sign-in");
            await bob.Page.Locator("[data-testid='audit-text'] input, input[data-testid='audit-text']").First.FillAsync("change 1");
            await bob.Page.Locator("[data-testid='audit-apply']").ClickAsync();
            await Assertions.Expect(bob.Page.Locator("[data-testid='audit-total']")).Not.ToHaveTextAsync("0 entries", new() { Timeout = 10_000 });
            await Assertions.Expect(table).Not.ToContainTextAsync("change 2");
            await BrowserSession.ScreenshotAsync(bob.Page, "audit");

            var csv = await bob.Page.APIRequest.GetAsync("api/audit.csv?action=change.applied");
            Assert.Equal(200, csv.Status);
            var text = await csv.TextAsync();
            Assert.StartsWith("Id,At,Actor,LabId,LabName,Action", text, StringComparison.Ordinal);
            Assert.Equal(3, text.Trim().Split('\n').Length);
        }
        finally
        {
            await app.Services.GetRequiredService<IptablesRuleWriter>().DeleteTaggedWhereAsync(c => c.StartsWith($"netlab:change-{instance}-", StringComparison.Ordinal));
        }
    }

    [SkippableFact]
    public async Task SignIn_IsRequiredEverywhere_WrongPasswordIsRefused_FirstStartCreatesTheAdministrator()
    {
        RealHost.Require();

        // No administrator configured: every page leads to the one-time set-up page.
        using var fresh = new DashboardFactory(new() { ["Auth:AdminPassword"] = "", ["Auth:AdminToken"] = "" }, kestrel: true);
        await using var browser = await BrowserSession.StartAsync();
        var page = await browser.NewPageAsync(fresh.BaseUri, user: null);
        await page.GotoAsync("firewall");
        await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/setup$"));
        await BrowserSession.SubmitFormAsync(page, "setup", ("user", "root-admin"), ("password", "short"), ("confirm", "short"));
        await Assertions.Expect(page.Locator(".account-error").First).ToBeVisibleAsync(Visible);
        await BrowserSession.SubmitFormAsync(page, "setup", ("password", "first-admin-pass-9"), ("confirm", "first-admin-pass-9"));
        await new DashboardPage(page).OpenAsync("");
        await page.Locator("[data-testid='account-menu']").ClickAsync();
        await Assertions.Expect(page.Locator("[data-testid='signed-in-as']")).ToHaveTextAsync("root-admin");

        // The account menu's links: the password page is rendered on the server (no circuit), so following it loads it whole.
        await page.Locator("[data-testid='account-menu'] a[href='account/password']").ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/account/password$"));
        await Assertions.Expect(page.Locator("h1.account-title")).ToHaveTextAsync("Change your password");
        await new DashboardPage(page).OpenAsync("");

        // The set-up page works once.
        var other = await browser.NewPageAsync(fresh.BaseUri, user: null);
        await other.GotoAsync("setup");
        await Assertions.Expect(other.Locator("[data-testid='setup-done']")).ToBeVisibleAsync(Visible);

        // Not signed in: pages go to sign-in, the API answers 401; a wrong password is refused and audited.
        await other.GotoAsync("changes");
        await Assertions.Expect(other).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/account/login\\?ReturnUrl=%2Fchanges$"));
        Assert.Equal(401, (await other.APIRequest.GetAsync("api/networks")).Status);
        await BrowserSession.SubmitFormAsync(other, "login", ("user", "root-admin"), ("password", "wrong-password-1"));
        await Assertions.Expect(other.Locator("[data-testid='login-error']")).ToContainTextAsync("not right", new() { Timeout = 10_000 });
        await BrowserSession.SubmitFormAsync(other, "login", ("user", "root-admin"), ("password", "first-admin-pass-9"));
        await Assertions.Expect(other).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/changes$"));
        Assert.Equal(200, (await other.APIRequest.GetAsync("api/networks")).Status);

        await new DashboardPage(other).OpenAsync("audit");
        await Assertions.Expect(other.Locator("[data-testid='audit-table']")).ToContainTextAsync("sign-in-failed", new() { Timeout = 10_000 });

        // An API token made on the page works for scripts until it is revoked there.
        await new DashboardPage(other).OpenAsync("account/tokens");
        await other.Locator("[data-testid='token-name'] input, input[data-testid='token-name']").First.FillAsync("nightly script");
        await other.Locator("[data-testid='token-create']").ClickAsync();
        var token = await other.Locator("[data-testid='token-value']").InnerTextAsync(new() { Timeout = 10_000 });
        Assert.StartsWith("nlt_", token, StringComparison.Ordinal);
        var script = await other.Context.APIRequest.GetAsync(new Uri(fresh.BaseUri, "api/me").ToString(), new() { Headers = new Dictionary<string, string> { ["Authorization"] = "Bearer " + token } });
        Assert.Equal(200, script.Status);
        await other.Locator("[data-testid='token-revoke']").ClickAsync();
        await Assertions.Expect(other.Locator("[data-testid='token-table']")).ToContainTextAsync("revoked", new() { Timeout = 10_000 });
        using var anonymous = new HttpClient();
        anonymous.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri(fresh.BaseUri, "api/me"))).StatusCode);

        // Changing the password: a wrong current one is refused; then the new one signs in and the old one does not.
        await other.GotoAsync("account/password");
        await BrowserSession.SubmitFormAsync(other, "password", ("current", "not-my-password-1"), ("new", "second-admin-pass-7"), ("confirm", "second-admin-pass-7"));
        await Assertions.Expect(other.Locator("[data-testid='password-error']").First).ToBeVisibleAsync(Visible);
        await BrowserSession.SubmitFormAsync(other, "password", ("current", "first-admin-pass-9"), ("new", "second-admin-pass-7"), ("confirm", "second-admin-pass-7"));
        await Assertions.Expect(other.Locator("[data-testid='password-done']")).ToBeVisibleAsync(Visible);
        Assert.Equal(200, (await other.APIRequest.GetAsync("api/networks")).Status);

        // Signing out ends the session.
        await new DashboardPage(other).OpenAsync("");
        await other.Locator("[data-testid='sign-out']").ClickAsync();
        await Assertions.Expect(other).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/account/login"));
        Assert.Equal(401, (await other.APIRequest.GetAsync("api/networks")).Status);
        await BrowserSession.SubmitFormAsync(other, "login", ("user", "root-admin"), ("password", "first-admin-pass-9"));
        await Assertions.Expect(other.Locator("[data-testid='login-error']")).ToBeVisibleAsync(Visible);
        await BrowserSession.SubmitFormAsync(other, "login", ("user", "root-admin"), ("password", "second-admin-pass-7"));
        await Assertions.Expect(other).Not.ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/account/login"), new() { Timeout = 10_000 });
    }
}
