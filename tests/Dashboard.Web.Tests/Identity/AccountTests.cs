using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Data.Entities;
using Dashboard.App.Audit;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Identity;

/// <summary>Accounts and API tokens: first start, password policy, lockout, token lifecycle, audit CSV escaping. No host changes.</summary>
public sealed class AccountTests : IDisposable
{
    private readonly DashboardFactory _factory = new();

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task FirstStart_WithoutAdministrator_PagesGoToSetup_ApiSaysHow_AndSetupWorksOnce()
    {
        using var fresh = new DashboardFactory(new() { ["Auth:AdminPassword"] = "", ["Auth:AdminToken"] = "" });
        using var http = fresh.CreateAnonymousClient();
        using (var page = await http.GetAsync("/firewall"))
        {
            // The client follows the redirect.
            Assert.Equal("/setup", page.RequestMessage?.RequestUri?.AbsolutePath);
            Assert.Contains("Create the administrator", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var api = await http.GetAsync("/api/networks"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, api.StatusCode);
            Assert.Contains("/setup", await api.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        await using var scope = fresh.Services.CreateAsyncScope();
        var admin = scope.ServiceProvider.GetRequiredService<UserAdmin>();
        var weak = await admin.CreateFirstAdministratorAsync("root", "short", null, "test");
        Assert.False(weak.Succeeded);
        Assert.Contains(weak.Errors, e => e.Code == "PasswordTooShort");
        Assert.True((await admin.CreateFirstAdministratorAsync("root", "first-admin-pass-9", null, "test")).Succeeded);
        var again = await admin.CreateFirstAdministratorAsync("intruder", "second-admin-pass-9", null, "test");
        Assert.False(again.Succeeded);
        Assert.Equal("SetupDone", again.Errors.Single().Code);
        var root = await scope.ServiceProvider.GetRequiredService<UserManager<DashboardUser>>().FindByNameAsync("root");
        Assert.True(root!.IsAdministrator);
        Assert.Equal(LabRole.Admin, await fresh.Services.GetRequiredService<Dashboard.App.Labs.LabAccess>().RoleAsync(new Actor(root.Id, "root", true), 1));

        using var login = await http.GetAsync("/account/login");
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
    }

    [Fact]
    public async Task Tokens_CreateUseRevoke_AndRejectUnknownExpiredAndLockedOwners()
    {
        var vera = await _factory.CreateUserAsync("vera", 1, LabRole.Viewer);
        using var asVera = _factory.CreateClient(vera.Token);
        var created = await (await asVera.PostAsJsonAsync("/api/tokens", new { name = "ci script" })).Content.ReadFromJsonAsync<JsonElement>();
        var token = created.GetProperty("token").GetString()!;
        Assert.StartsWith("nlt_", token, StringComparison.Ordinal);
        using var asScript = _factory.CreateClient(token);
        Assert.Equal("vera", (await asScript.GetFromJsonAsync<JsonElement>("/api/me")).GetProperty("name").GetString());

        // The database keeps only a hash.
        await using (var scope = _factory.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<Dashboard.Data.DashboardDbContext>();
            Assert.DoesNotContain(db.ApiTokens.Select(t => t.Hash).ToList(), h => h.Contains(token[4..], StringComparison.Ordinal));
            Assert.Contains(db.ApiTokens.Select(t => t.Hash).ToList(), h => h == ApiTokenService.Hash(token));
        }

        var id = created.GetProperty("info").GetProperty("id").GetInt32();
        Assert.Equal(HttpStatusCode.NoContent, (await asVera.DeleteAsync($"/api/tokens/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await asScript.GetAsync("/api/me")).StatusCode);

        // Someone else's token cannot be revoked by id.
        var otto = await _factory.CreateUserAsync("otto", 1, LabRole.Operator);
        var ottoTokenId = (await _factory.CreateClient(otto.Token).GetFromJsonAsync<JsonElement>("/api/tokens"))[0].GetProperty("id").GetInt32();
        Assert.Equal(HttpStatusCode.NotFound, (await asVera.DeleteAsync($"/api/tokens/{ottoTokenId}")).StatusCode);

        foreach (var bogus in new[] { "nlt_" + new string('A', 43), "not-a-token", "nlt_; reboot", new string('x', 10_000) })
        {
            using var c = _factory.CreateClient(bogus);
            Assert.Equal(HttpStatusCode.Unauthorized, (await c.GetAsync("/api/me")).StatusCode);
        }

        Assert.Equal(HttpStatusCode.BadRequest, (await asVera.PostAsJsonAsync("/api/tokens", new { name = "old", expiresAt = DateTimeOffset.UtcNow.AddDays(-1) })).StatusCode);

        // A locked account's tokens stop working at once.
        await using (var scope = _factory.Services.CreateAsyncScope())
        {
            var admin = scope.ServiceProvider.GetRequiredService<UserAdmin>();
            await admin.SetLockedAsync(await _factory.AdminAsync(), otto.Id, locked: true);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, (await _factory.CreateClient(otto.Token).GetAsync("/api/me")).StatusCode);
    }

    [Fact]
    public async Task PasswordPolicyAndLockout_AreIdentitys_AsConfigured()
    {
        await using var scope = _factory.Services.CreateAsyncScope();
        var admin = scope.ServiceProvider.GetRequiredService<UserAdmin>();
        var me = await _factory.AdminAsync();
        var weak = await admin.CreateUserAsync(me, "weak", "alllettersonly", false);
        Assert.Contains(weak.Errors, e => e.Code == "PasswordRequiresDigit");
        Assert.Contains((await admin.CreateUserAsync(me, "bad name!", "good-pass-word-1", false)).Errors, e => e.Code == "InvalidUserName");
        Assert.True((await admin.CreateUserAsync(me, "paul", "good-pass-word-1", false)).Succeeded);
        Assert.Equal(Dashboard.App.Access.AccessDenial.Forbidden, (await Assert.ThrowsAsync<LabAccessException>(() => admin.CreateUserAsync(new Actor("x", "x", false), "eve", "good-pass-word-1", true))).Reason);

        var users = scope.ServiceProvider.GetRequiredService<UserManager<DashboardUser>>();
        var paul = await users.FindByNameAsync("paul");

        // A forgotten password: only a site administrator sets a new one, and the policy still holds.
        var vera = await _factory.CreateUserAsync("vera", 1, LabRole.Admin);
        using var asAdmin = _factory.CreateClient();
        Assert.Equal(HttpStatusCode.BadRequest, (await asAdmin.PutAsJsonAsync($"/api/users/{paul!.Id}/password", new { password = "short" })).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await asAdmin.PutAsJsonAsync($"/api/users/{paul.Id}/password", new { password = "reset-pass-word-2" })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await _factory.CreateClient(vera.Token).PutAsJsonAsync($"/api/users/{paul.Id}/password", new { password = "mine-now-pass-3" })).StatusCode);
        await using (var fresh = _factory.Services.CreateAsyncScope())
        {
            // A new scope: this one's context still tracks Paul as he was.
            var check = fresh.ServiceProvider.GetRequiredService<UserManager<DashboardUser>>();
            Assert.True(await check.CheckPasswordAsync((await check.FindByIdAsync(paul.Id))!, "reset-pass-word-2"));
        }

        paul = await users.FindByIdAsync(paul.Id);
        for (var i = 0; i < 5; i++)
        {
            Assert.False(await users.IsLockedOutAsync(paul!));
            await users.AccessFailedAsync(paul!);
        }

        Assert.True(await users.IsLockedOutAsync(paul!));
        Assert.InRange((paul!.LockoutEnd!.Value - DateTimeOffset.UtcNow).TotalMinutes, 4, 5.1);
    }

    [Fact]
    public async Task AuditCsv_EscapesFormulaCells_AndAnswers401WithoutSignIn()
    {
        var audit = _factory.Services.GetRequiredService<AuditLog>();
        await audit.WriteAsync(await _factory.AdminAsync(), "test.formula", "=HYPERLINK(\"http://x\")", "=1+1", command: "+SUM(A1)", result: "@cmd");
        using var http = _factory.CreateClient();
        var csv = await http.GetStringAsync("/api/audit.csv?action=test.formula");
        var line = csv.Split('\n')[1];
        Assert.DoesNotContain(",=", line, StringComparison.Ordinal);
        Assert.DoesNotContain(",\"=", line, StringComparison.Ordinal);
        Assert.DoesNotContain(",+SUM", line, StringComparison.Ordinal);
        Assert.Contains("'=1+1", line, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _factory.CreateAnonymousClient().GetAsync("/api/audit.csv")).StatusCode);
    }

    [Fact]
    public async Task Audit_RecordsTheHostOfHostActions_AndFiltersByIt_InTheApiAndTheCsv()
    {
        var audit = _factory.Services.GetRequiredService<AuditLog>();
        var admin = await _factory.AdminAsync();
        await audit.WriteAsync(admin, "test.host", "capture 1", "on the agent's host", host: "docker-285");
        await audit.WriteAsync(admin, "test.host", "capture 2", "on this dashboard's host", host: "test-host");
        await audit.WriteAsync(admin, "test.host", "lab 1", "not a host action");
        using var http = _factory.CreateClient();

        var rows = (await http.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/audit?action=test.host&host=docker-285")).GetProperty("rows").EnumerateArray().ToList();

        var row = Assert.Single(rows);
        Assert.Equal(("capture 1", "docker-285"), (row.GetProperty("subject").GetString(), row.GetProperty("host").GetString()));
        Assert.Equal(3, (await http.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/audit?action=test.host")).GetProperty("total").GetInt32());
        var csv = (await http.GetStringAsync("/api/audit.csv?action=test.host&host=test-host")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.EndsWith("Host", csv[0].TrimEnd('\r'), StringComparison.Ordinal);
        Assert.Equal(2, csv.Length);
        Assert.EndsWith(",test-host", csv[1].TrimEnd('\r'), StringComparison.Ordinal);
    }
}
