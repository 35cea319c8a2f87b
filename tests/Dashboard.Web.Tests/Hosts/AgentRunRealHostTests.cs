using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.App.Runs;
using Dashboard.Core.Experiments;
using Dashboard.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Hosts;

/// <summary>
/// Runs carried out by agents on three real engines (20.10, 26.1.5, 28.5.2): the same experiment on all three at
/// once, recorded with each host's engine (captures and traces by its agent) and compared; an agent killed in the
/// middle of a run.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class AgentRunRealHostTests
{
    private static async Task<JsonElement> WaitForEndAsync(HttpClient http, Guid id, string logs, int seconds = 180)
    {
        JsonElement run = default;
        await Eventually.UntilAsync(async () =>
        {
            run = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}");
            return run.GetProperty("summary").GetProperty("status").GetString() != "Running";
        }, () => $"run {id} to end (at '{run.GetProperty("lastStep")}'):\n{logs}", seconds);
        return run;
    }

    private static async Task<IReadOnlyList<(string Host, Guid Id)>> StartAsync(HttpClient http, Guid experiment, string variant, params string[] hosts)
    {
        var response = await http.PostAsJsonAsync("/api/runs", new { experimentId = experiment, variant, hosts });
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"start {variant} on {string.Join(", ", hosts)}: {(int)response.StatusCode} {body}");
        return [.. body.GetProperty("runs").EnumerateArray().Select(r => (r.GetProperty("host").GetString()!, r.GetProperty("id").GetGuid()))];
    }

    /// <summary>Nothing of the runs left on the engine: no labelled container or network, no rule with a run tag.</summary>
    private static async Task AssertCleanAsync(LabEngine? engine, IEnumerable<Guid> runs)
    {
        await using var lab = new LabScope(engine);
        foreach (var id in runs)
        {
            Assert.Equal("", (await lab.DockerAsync(["ps", "-aq", "--filter", $"label=netlab.run={id:N}"])).Trim());
            Assert.Equal("", (await lab.DockerAsync(["network", "ls", "-q", "--filter", $"label=netlab.run={id:N}"])).Trim());
        }

        Assert.DoesNotContain("netlab:run-", await lab.RunAsync("iptables-save"), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task TheSeedVariants_RunOnAllThreeEnginesAtOnce_RecordTheirOutcomes_AndTheComparisonNamesTheRawDrop()
    {
        RealHost.Require();
        await using var three = await ThreeAgentHosts.StartAsync();
        var admin = three.Admin;
        var experiment = (await admin.GetFromJsonAsync<JsonElement>("/api/experiments")).EnumerateArray().Single(e => e.GetProperty("builtIn").GetBoolean()).GetProperty("id").GetGuid();
        var names = three.Hosts.Select(h => h.Name).ToArray();

        // One variant on the three hosts side by side, then the other: each host runs its two in order.
        var isolated = await StartAsync(admin, experiment, "isolated", names);
        var dockerUser = await StartAsync(admin, experiment, "docker-user", names);
        var runs = new Dictionary<(string Host, string Variant), JsonElement>();
        foreach (var (variant, started) in new[] { ("isolated", isolated), ("docker-user", dockerUser) })
        {
            foreach (var (host, id) in started)
            {
                runs[(host, variant)] = await WaitForEndAsync(admin, id, three.Logs());
            }
        }

        foreach (var (host, _, version) in three.Hosts)
        {
            var is28 = version.StartsWith("28", StringComparison.Ordinal);
            foreach (var variant in new[] { "isolated", "docker-user" })
            {
                var run = runs[(host, variant)];
                var summary = run.GetProperty("summary");
                Assert.True(summary.GetProperty("status").GetString() == "Succeeded", $"{host} {variant}: {run}\n{three.Logs()}");
                Assert.Equal(host, run.GetProperty("host").GetString());
                Assert.StartsWith(version, run.GetProperty("engineVersion").GetString(), StringComparison.Ordinal);

                // 20.10 and 26.1: 0/3 then 3/3; 28.5: 0/3 and 0/3 (the raw direct-access DROP).
                var expected = variant == "docker-user" && !is28 ? 3 : 0;
                Assert.True(expected == summary.GetProperty("probesReceived").GetInt32() && summary.GetProperty("probesSent").GetInt32() == 3, $"{host} {variant}: {summary}");
                var probe = run.GetProperty("probes")[0];
                Assert.True(probe.GetProperty("predicted").GetBoolean() == (expected > 0), $"{host} {variant}: the prediction agrees with the probe: {probe}");

                // The deciding rule counted exactly the three lost requests. The capture on net2's bridge holds the
                // requests (decoded) where FORWARD drops them; on 28.5 the raw DROP runs in the bridge's own PREROUTING
                // (br_netfilter), before the frame is passed up to the bridge device where tcpdump listens: none there.
                var deltas = run.GetProperty("deltas").EnumerateArray().ToList();
                if (expected == 0)
                {
                    var deciding = deltas.Where(d => is28
                        ? d.GetProperty("table").GetString() == "raw" && d.GetProperty("chain").GetString() == "PREROUTING" && d.GetProperty("rule").GetString()!.Contains("-j DROP", StringComparison.Ordinal)
                        : d.GetProperty("chain").GetString() == "DOCKER-ISOLATION-STAGE-2" && d.GetProperty("rule").GetString()!.Contains("-j DROP", StringComparison.Ordinal)).ToList();
                    Assert.True(deciding.Count == 1 && deciding[0].GetProperty("deltaPackets").GetInt64() == 3, $"{host} {variant}: one deciding DROP with +3: {string.Join("\n", deltas)}");
                }

                var net2 = run.GetProperty("captures").EnumerateArray().Single(c => c.GetProperty("network").GetString() == "net2");
                await using (var scope = three.Factory.Services.CreateAsyncScope())
                {
                    var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
                    var id = summary.GetProperty("id").GetGuid();
                    var iface = net2.GetProperty("interface").GetString();
                    var requests = await db.RunPackets.CountAsync(p => p.RunId == id && p.Interface == iface && p.IpProtocol == 1 && p.IcmpType == 8);
                    Assert.True(is28 ? requests == 0 : requests >= 3, $"{host} {variant}: echo requests in the agent's capture of net2's bridge: {requests}: {net2}");
                }

                // The first probe's flow traced by the host's agent: the deciding step as the kernel saw it.
                var traces = await admin.GetFromJsonAsync<JsonElement>($"/api/runs/{summary.GetProperty("id").GetGuid()}/artifacts/{RunArtifactKind.Traces}");
                var decisions = traces.TryGetProperty("packets", out var packets)
                    ? packets.EnumerateArray().SelectMany(p => p.GetProperty("steps").EnumerateArray().Where(x => x.GetProperty("verdict").GetString() is "DROP" or "ACCEPT"))
                        .Select(x => $"{x.GetProperty("table").GetString()} {x.GetProperty("chain").GetString()} {x.GetProperty("verdict").GetString()}").ToList()
                    : [];
                var decided = is28 ? "raw PREROUTING DROP" : expected == 0 ? "filter DOCKER-ISOLATION-STAGE-2 DROP" : "filter DOCKER-USER ACCEPT";
                Assert.True(decisions.Contains(decided), $"{host} {variant}: the agent's trace shows '{decided}': {traces}");
            }
        }

        // Docker 26.1 against 28.5, both with the DOCKER-USER pair: the comparison names the raw PREROUTING DROP.
        var a = runs[("docker-261", "docker-user")].GetProperty("summary").GetProperty("id").GetGuid();
        var b = runs[("docker-285", "docker-user")].GetProperty("summary").GetProperty("id").GetGuid();
        var comparison = await admin.GetFromJsonAsync<JsonElement>($"/api/runs/compare?a={a}&b={b}");
        Assert.StartsWith("26.1.5", comparison.GetProperty("placeA").GetProperty("engineVersion").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("28.5.2", comparison.GetProperty("placeB").GetProperty("engineVersion").GetString(), StringComparison.Ordinal);
        var difference = comparison.GetProperty("differences").EnumerateArray().Single();
        Assert.Equal("B", difference.GetProperty("lostIn").GetString());
        Assert.Equal(3, difference.GetProperty("lost").GetInt32());
        var rule = difference.GetProperty("rules").EnumerateArray().First();
        Assert.True(rule.GetProperty("table").GetString() == "raw" && rule.GetProperty("chain").GetString() == "PREROUTING" && rule.GetProperty("target").GetString() == "DROP"
            && rule.GetProperty("packets").GetInt64() == 3 && !rule.GetProperty("inOther").GetBoolean(), $"the raw direct-access DROP, only on 28.5: {difference}");
        Assert.Contains("-d {c1}/32", rule.GetProperty("rule").GetString(), StringComparison.Ordinal);

        // The same variant on 20.10 and 26.1 agrees: nothing to explain.
        var c = runs[("docker-2010", "docker-user")].GetProperty("summary").GetProperty("id").GetGuid();
        Assert.Empty((await admin.GetFromJsonAsync<JsonElement>($"/api/runs/compare?a={c}&b={a}")).GetProperty("differences").EnumerateArray());

        foreach (var (host, engine, _) in three.Hosts)
        {
            await AssertCleanAsync(engine, runs.Where(r => r.Key.Host == host).Select(r => r.Value.GetProperty("summary").GetProperty("id").GetGuid()));
        }
    }

    [SkippableFact]
    public async Task AnAgentKilledMidRun_InterruptsTheRun_AndWhenItIsBackItsLeftoversAreRemoved()
    {
        RealHost.Require();
        await using var three = await ThreeAgentHosts.StartAsync();
        var admin = three.Admin;
        var (host, engine, _) = three.Hosts.Single(h => h.Name == "docker-261");

        // The seed with a ten-ping probe: the probe step lasts about ten seconds, long enough to kill the agent in it.
        var scenario = ScenarioDefinition.Seed with { Probes = [new ScenarioProbe("ping", "c2", "c1", 10, 1)], Trace = false };
        var created = await admin.PostAsJsonAsync("/api/experiments", new { name = "ten pings", scenario = JsonSerializer.Deserialize<JsonElement>(scenario.ToJson()) });
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        var experiment = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        var (_, id) = (await StartAsync(admin, experiment, "docker-user", host)).Single();

        await Eventually.UntilAsync(async () => (await admin.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/progress")).GetProperty("step").GetString()!.StartsWith("probe 1", StringComparison.Ordinal),
            () => "the run to reach its probe:\n" + three.Logs(), 120);
        await using var lab = new LabScope(engine);
        Assert.Contains($"-{id:N}", await lab.RunAsync("iptables-save"), StringComparison.Ordinal);
        three.KillAgent(host);

        // The run is interrupted at once, says what it waits for, and what it made is still on the host.
        var run = await WaitForEndAsync(admin, id, three.Logs(), 60);
        var summary = run.GetProperty("summary");
        Assert.True(summary.GetProperty("status").GetString() == "Interrupted", $"{run}");
        Assert.Contains(RunService.AwaitingAgent, summary.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.NotEqual("", (await lab.DockerAsync(["ps", "-aq", "--filter", $"label=netlab.run={id:N}"])).Trim());

        // A run cannot start on the disconnected host: 409, naming it.
        var refused = await admin.PostAsJsonAsync("/api/runs", new { experimentId = experiment, variant = "isolated", hosts = new[] { host } });
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains(host, await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The agent back: its host is reconciled; no container, network or run rule is left, and the run says so.
        three.StartAgent(host);
        await Eventually.UntilAsync(async () =>
                (await lab.DockerAsync(["ps", "-aq", "--filter", $"label=netlab.run={id:N}"])).Trim() == ""
                && (await lab.DockerAsync(["network", "ls", "-q", "--filter", $"label=netlab.run={id:N}"])).Trim() == ""
                && !(await lab.RunAsync("iptables-save")).Contains("netlab:run-", StringComparison.Ordinal),
            () => "the reconnected agent to remove the run's leftovers:\n" + three.Logs(), 90);
        await Eventually.UntilAsync(async () => (await admin.GetFromJsonAsync<JsonElement>($"/api/runs/{id}")).GetProperty("summary").GetProperty("error").GetString()!.Contains("removed when the host's agent connected again", StringComparison.Ordinal),
            () => "the run to say its leftovers were removed", 20);

        var audit = await admin.GetFromJsonAsync<JsonElement>("/api/audit?action=run.reconciled");
        Assert.Contains(audit.GetProperty("rows").EnumerateArray(), e => e.GetProperty("subject").GetString() == $"host {host}" && e.GetProperty("succeeded").GetBoolean());

        // And the host runs again: the next run on it succeeds.
        var (_, next) = (await StartAsync(admin, experiment, "isolated", host)).Single();
        var again = await WaitForEndAsync(admin, next, three.Logs());
        Assert.True(again.GetProperty("summary").GetProperty("status").GetString() == "Succeeded", $"{again}");
        await AssertCleanAsync(engine, [id, next]);
    }
}
