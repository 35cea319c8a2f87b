using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Data.Entities;

namespace Dashboard.Web.Tests.Labs;

/// <summary>
/// A lab limited to some hosts: only a site administrator sets the list (names it knows), and the lab's runs and
/// changes are refused, with the reason and an audit entry, for any other host.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class LabHostsTests
{
    [SkippableFact]
    public async Task ALabLimitedToAnAgentsHost_RefusesRunsAndChangesForOthers_AndOnlyASiteAdministratorSetsIt()
    {
        RealHost.Require();
        using var factory = new DashboardFactory();
        using var admin = factory.CreateClient();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync("/api/hosts", new { name = "docker-x" })).StatusCode);

        // Names it knows only, each once.
        var unknown = await admin.PutAsJsonAsync("/api/labs/1/hosts", new { hosts = new[] { "nosuchhost" } });
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Contains("'nosuchhost' is neither", await unknown.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PutAsJsonAsync("/api/labs/1/hosts", new { hosts = new[] { "docker-x", "docker-x" } })).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.PutAsJsonAsync("/api/labs/1/hosts", new { hosts = new[] { "docker-x" } })).StatusCode);
        var lab = (await admin.GetFromJsonAsync<JsonElement>("/api/labs")).EnumerateArray().Single(l => l.GetProperty("labId").GetInt32() == 1);
        Assert.Equal(["docker-x"], lab.GetProperty("hosts").EnumerateArray().Select(h => h.GetString()));

        // The lab's runs and changes on the dashboard's own host are refused, saying which hosts the lab may use.
        var seed = (await admin.GetFromJsonAsync<JsonElement>("/api/experiments")).EnumerateArray().Single(e => e.GetProperty("builtIn").GetBoolean()).GetProperty("id").GetGuid();
        var run = await admin.PostAsJsonAsync("/api/runs", new { experimentId = seed, variant = "isolated" });
        Assert.Equal(HttpStatusCode.Forbidden, run.StatusCode);
        Assert.Contains("may use only the hosts docker-x", await run.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var change = await admin.PostAsJsonAsync("/api/changes", new { lab = 1, rule = new { chain = "DOCKER-USER", source = "172.31.250.0/24", target = "ACCEPT" }, rationale = "limited" });
        Assert.Equal(HttpStatusCode.BadRequest, change.StatusCode);
        var problem = await change.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Contains("may use only the hosts docker-x", problem.GetProperty("errors").GetProperty("Host").GetString(), StringComparison.Ordinal);

        // A lab Admin who is not a site administrator cannot widen (or narrow) it; the refusal is audited.
        var lena = await factory.CreateUserAsync("lena", 1, LabRole.Admin);
        using var asLena = factory.CreateClient(lena.Token);
        Assert.Equal(HttpStatusCode.Forbidden, (await asLena.PutAsJsonAsync("/api/labs/1/hosts", new { hosts = (string[]?)null })).StatusCode);
        var audit = await admin.GetFromJsonAsync<JsonElement>("/api/audit?action=lab.settings-refused");
        Assert.Contains(audit.GetProperty("rows").EnumerateArray(), r => r.GetProperty("actor").GetString() == "lena");
        Assert.Contains((await admin.GetFromJsonAsync<JsonElement>("/api/audit?action=run.refused")).GetProperty("rows").EnumerateArray(), r => r.GetProperty("succeeded").GetBoolean() == false);

        // Every host again.
        Assert.Equal(HttpStatusCode.NoContent, (await admin.PutAsJsonAsync("/api/labs/1/hosts", new { hosts = (string[]?)null })).StatusCode);
        lab = (await admin.GetFromJsonAsync<JsonElement>("/api/labs")).EnumerateArray().Single(l => l.GetProperty("labId").GetInt32() == 1);
        Assert.Equal(JsonValueKind.Null, lab.GetProperty("hosts").ValueKind);
    }
}
