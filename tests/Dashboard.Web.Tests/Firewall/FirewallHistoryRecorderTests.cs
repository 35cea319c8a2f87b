using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.App.Audit;
using Dashboard.App.Firewall;
using Dashboard.App.Live;
using Dashboard.Core.Firewall;
using Dashboard.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Firewall;

/// <summary>The history recorder against the database, fed rulesets through the live feed (no host needed).</summary>
public class FirewallHistoryRecorderTests
{
    private const string Base = "*filter\n:FORWARD DROP [0:0]\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\n";
    private const string HandRule = "-A DOCKER-USER -s 198.18.0.1/32 -m comment --comment by-hand -j RETURN";

    private static Ruleset Ruleset(params string[] rules)
    {
        var rs = IptablesSaveReader.Read(Base + string.Concat(rules.Select(r => r + "\n")) + "COMMIT\n");
        RuleClassifier.Classify(rs, null, null);
        return rs;
    }

    [Fact]
    public async Task Recorder_OutsideRuleThenDiffAndRestart_RecordsAlertsAuditsAndRebuildsMoments()
    {
        var data = Directory.CreateTempSubdirectory("netlab-history-test-").FullName;
        try
        {
            var t0 = DateTimeOffset.UtcNow.AddMinutes(-10);
            string host;
            using (var factory = new DashboardFactory(dataDirectory: data))
            {
                var feed = factory.Services.GetRequiredService<LiveFeed>();
                host = feed.Host;
                var recorder = factory.Services.GetRequiredService<FirewallHistoryRecorder>();
                var dbs = factory.Services.GetRequiredService<IDbContextFactory<DashboardDbContext>>();
                using var http = factory.CreateClient();

                feed.FirewallChanged(Ruleset(), t0);
                await WaitAsync(async () => await CountAsync(dbs, db => db.FirewallCheckpoints.CountAsync()) == 1, "the first read's checkpoint");

                var alerts = new List<OutsideChangeAlert>();
                using var sub = feed.Subscribe([LiveTopic.OutsideChanges], e => { lock (alerts) { alerts.Add(((FirewallChangedOutsideEvent)e).Alert); } });
                feed.FirewallChanged(Ruleset(HandRule), t0.AddSeconds(10));
                await WaitAsync(() => Task.FromResult(alerts.Count == 1), "the outside alert");
                var alert = alerts[0];
                var change = Assert.Single(alert.Changes);
                Assert.Equal(("Added", "DOCKER-USER", 2, "Outside"), (change.Kind, change.Chain, change.PositionAfter!.Value, change.Cause));
                Assert.Contains("by-hand", change.RuleText, StringComparison.Ordinal);
                Assert.Equal(alert.Id, Assert.Single(recorder.RecentAlerts(host)).Id);
                var audit = await factory.Services.GetRequiredService<AuditLog>().QueryAsync(await factory.AdminAsync(), new AuditFilter(Action: "firewall.outside"));
                Assert.Contains("by-hand", Assert.Single(audit.Rows).Detail, StringComparison.Ordinal);

                // A move and a removal, by the dashboard's own tag and from outside.
                var own = $"-A DOCKER-USER -s 172.18.0.2/32 -m comment --comment netlab:change-{factory.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Dashboard.Host.DockerHostOptions>>().Value.InstanceId}-7 -j ACCEPT";
                feed.FirewallChanged(Ruleset(own, HandRule), t0.AddSeconds(20));
                await WaitAsync(async () => await CountAsync(dbs, db => db.FirewallChanges.CountAsync()) == 2, "the dashboard's rule recorded (reads coming faster than the recorder are merged)");
                feed.FirewallChanged(Ruleset(own), t0.AddSeconds(30));
                await WaitAsync(async () => await CountAsync(dbs, db => db.FirewallChanges.CountAsync()) >= 3, "three changes recorded");

                var list = await http.GetFromJsonAsync<JsonElement>($"/api/hosts/{host}/firewall/history?cause=Dashboard");
                var ownChange = Assert.Single(list.GetProperty("changes").EnumerateArray());
                Assert.Equal("Added", ownChange.GetProperty("kind").GetString());
                Assert.EndsWith("-7", ownChange.GetProperty("causeDetail").GetString(), StringComparison.Ordinal);
                var outside = await http.GetFromJsonAsync<JsonElement>($"/api/hosts/{host}/firewall/history?cause=Outside&chain=filter/DOCKER-USER");
                Assert.Equal(["Removed", "Added"], outside.GetProperty("changes").EnumerateArray().Select(c => c.GetProperty("kind").GetString()));

                // The diff between any two moments, rebuilt from the checkpoint and the changes after it.
                var diff = await http.GetFromJsonAsync<JsonElement>($"/api/hosts/{host}/firewall/history/diff?from={Iso(t0.AddSeconds(5))}&to={Iso(t0.AddSeconds(25))}");
                var lines = diff.GetProperty("lines").EnumerateArray().ToList();
                Assert.Equal(2, lines.Count);
                Assert.All(lines, l => Assert.Equal("Added", l.GetProperty("kind").GetString()));
                Assert.Equal(["Dashboard", "Outside"], lines.Select(l => l.GetProperty("cause").GetString()).Order());
                Assert.Equal((2, 4), (diff.GetProperty("rulesBefore").GetInt32(), diff.GetProperty("rulesAfter").GetInt32()));
                var none = await http.GetFromJsonAsync<JsonElement>($"/api/hosts/{host}/firewall/history/diff?from={Iso(t0.AddSeconds(21))}&to={Iso(t0.AddSeconds(29))}");
                Assert.Empty(none.GetProperty("lines").EnumerateArray());

                // Bad input: a 400 naming the parameter; nothing else happens.
                await AssertBadAsync(http, $"/api/hosts/{host}/firewall/history?cause=Someone", "'cause'");
                await AssertBadAsync(http, $"/api/hosts/{host}/firewall/history?from=yesterday", "'from'");
                await AssertBadAsync(http, $"/api/hosts/{host}/firewall/history?pageSize=100000", "'pageSize'");
                await AssertBadAsync(http, $"/api/hosts/{host}/firewall/history/diff", "'from' is required");
                await AssertBadAsync(http, $"/api/hosts/{host}/firewall/history/diff?from={Iso(t0.AddDays(-1))}", "starts at");
                await AssertBadAsync(http, $"/api/hosts/{host}/firewall/history/diff?from={Iso(t0.AddSeconds(20))}&to={Iso(t0)}", "'to' is before 'from'");
                Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/api/hosts/NO_SUCH/firewall/history")).StatusCode);
                Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/api/hosts/never-seen/firewall/history")).StatusCode);
                await AssertBadAsync(http, $"/api/hosts/{host}/firewall/history?from=01/02/2026", "'from'");
                Assert.Equal(HttpStatusCode.Unauthorized, (await factory.CreateAnonymousClient().GetAsync($"/api/hosts/{host}/firewall/history")).StatusCode);
            }

            // Started again: what changed meanwhile is recorded as unobserved, and the retention cut keeps the moments after it rebuildable.
            using (var factory = new DashboardFactory(dataDirectory: data))
            {
                var feed = factory.Services.GetRequiredService<LiveFeed>();
                var dbs = factory.Services.GetRequiredService<IDbContextFactory<DashboardDbContext>>();
                feed.FirewallChanged(Ruleset(), t0.AddSeconds(40)); // the dashboard's rule went while it was stopped
                await WaitAsync(async () => await CountAsync(dbs, db => db.FirewallChanges.CountAsync(c => c.Cause == "Unobserved")) == 1, "the change made while stopped");
                var queries = factory.Services.GetRequiredService<FirewallHistoryQueries>();
                var before = await queries.ShapeAtAsync(host, t0.AddSeconds(25));
                await factory.Services.GetRequiredService<FirewallHistoryRecorder>().PruneAsync(t0.AddSeconds(15), CancellationToken.None);
                Assert.Equal(0, await CountAsync(dbs, db => db.FirewallChanges.CountAsync(c => c.At <= t0.AddSeconds(15))));
                var after = await queries.ShapeAtAsync(host, t0.AddSeconds(25));
                Assert.Equal(before, after, Dashboard.TestSupport.ShapeComparer.Instance);
                Assert.Null(await queries.ShapeAtAsync(host, t0.AddSeconds(14)));
            }
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    private static string Iso(DateTimeOffset t) => Uri.EscapeDataString(t.ToString("O", System.Globalization.CultureInfo.InvariantCulture));

    private static async Task AssertBadAsync(HttpClient http, string url, string says)
    {
        var r = await http.GetAsync(url);
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.BadRequest, $"{url}: {(int)r.StatusCode} {body}");
        Assert.Contains(says, body, StringComparison.Ordinal);
    }

    private static async Task<int> CountAsync(IDbContextFactory<DashboardDbContext> dbs, Func<DashboardDbContext, Task<int>> count)
    {
        await using var db = await dbs.CreateDbContextAsync();
        return await count(db);
    }

    private static Task WaitAsync(Func<Task<bool>> condition, string what) => Eventually.UntilAsync(condition, () => what, 10);
}
