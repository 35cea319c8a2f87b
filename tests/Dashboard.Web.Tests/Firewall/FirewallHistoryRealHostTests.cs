using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.App.Firewall;
using Dashboard.App.Live;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Firewall;

/// <summary>
/// The firewall history on the real host: a rule inserted by hand with iptables is flagged as outside within 5 s (hub
/// message, audit, history); the rules Docker writes for a new network are Docker's, and the diff between before and
/// after its creation is exactly those rules (checked against iptables-save); a trace's rules are the dashboard's own.
/// </summary>
[Trait("Category", "RealHost")]
public class FirewallHistoryRealHostTests
{
    [SkippableFact]
    public async Task History_HandRuleNewNetworkAndTrace_AreOutsideDockerAndTheDashboards()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        using var factory = new DashboardFactory(new() { ["Collector:Enabled"] = "true" });
        var feed = factory.Services.GetRequiredService<LiveFeed>();
        var queries = factory.Services.GetRequiredService<FirewallHistoryQueries>();
        var host = feed.Host;
        using var http = factory.CreateClient();
        var outside = new ConcurrentQueue<(TimeSpan At, JsonElement Alert)>();
        var clock = Stopwatch.StartNew();
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(factory.Server.BaseAddress, "hubs/lab"), o =>
            {
                o.HttpMessageHandlerFactory = _ => factory.Server.CreateHandler();
                o.AccessTokenProvider = () => Task.FromResult<string?>(factory.AdminToken);
                o.Transports = HttpTransportType.LongPolling;
            })
            .Build();
        hub.On<JsonElement>("FirewallChangedOutside", m => outside.Enqueue((clock.Elapsed, m)));
        await hub.StartAsync();
        await WaitAsync(async () => await queries.LatestShapeAsync(host) is not null, "the history's first checkpoint of the host");

        // Docker: the rules written for a new network, and nothing else, between before and after its creation.
        var kernelBefore = await KernelRulesAsync(lab);
        var t0 = DateTimeOffset.UtcNow;
        var id = await lab.CreateNetworkAsync("hist");
        var bridge = "br-" + id[..12];
        var kernelAfter = await KernelRulesAsync(lab);
        var added = kernelAfter.Except(kernelBefore).ToHashSet();
        Assert.Contains(added, l => l.Contains(bridge, StringComparison.Ordinal));
        Assert.Empty(kernelBefore.Except(kernelAfter));
        FirewallDiff? diff = null;
        await WaitAsync(async () =>
        {
            diff = await queries.DiffAsync(host, t0, DateTimeOffset.UtcNow);
            return diff.Lines.Count(l => l.Kind == "Added") == added.Count && diff.Lines.All(l => l.Cause is not null);
        }, () => $"the history to hold Docker's {added.Count} rules for {bridge}; its diff has {string.Join("; ", diff?.Lines.Select(l => $"{l.Kind} {l.Table} {l.RuleText} [{l.Cause}]") ?? [])}");
        Assert.Equal(added.Order(StringComparer.Ordinal), diff!.Lines.Select(l => $"{l.Table} {l.RuleText}").Order(StringComparer.Ordinal));
        Assert.All(diff.Lines, l => Assert.Equal(("Added", "Ipv4", "Docker"), (l.Kind, l.Family, l.Cause)));

        // Outside: a rule inserted by hand (its own comment tag; matches only addresses no lab uses), flagged within 5 s.
        var comment = $"nltest-outside-{lab.Id}";
        string[] spec = ["DOCKER-USER", "-s", "198.18.255.1/32", "-d", "198.18.255.2/32", "-m", "comment", "--comment", comment, "-j", "RETURN"];
        var inserted = clock.Elapsed;
        await lab.RunAsync("iptables", ["-w", "5", "-I", .. spec[..1], "1", .. spec[1..]]);
        try
        {
            await WaitAsync(() => Task.FromResult(outside.Any(o => Mentions(o.Alert, comment))), "the hub's FirewallChangedOutside naming the rule");
            var (at, alert) = outside.First(o => Mentions(o.Alert, comment));
            Assert.True(at - inserted < TimeSpan.FromSeconds(5), $"flagged {(at - inserted).TotalSeconds:0.0} s after the insert");
            var change = alert.GetProperty("changes").EnumerateArray().Single(c => c.GetProperty("ruleText").GetString()!.Contains(comment, StringComparison.Ordinal));
            Assert.Equal(("Added", "filter", "DOCKER-USER", 1, "Outside"), (change.GetProperty("kind").GetString(), change.GetProperty("table").GetString(), change.GetProperty("chain").GetString(), change.GetProperty("positionAfter").GetInt32(), change.GetProperty("cause").GetString()));
            Assert.Equal(host, alert.GetProperty("host").GetString());

            var audit = await http.GetFromJsonAsync<JsonElement>("/api/audit?action=firewall.outside");
            Assert.Contains(audit.GetProperty("rows").EnumerateArray(), r => r.GetProperty("detail").GetString()!.Contains(comment, StringComparison.Ordinal) && r.GetProperty("host").GetString() == host);
            var list = await http.GetFromJsonAsync<JsonElement>($"/api/hosts/{host}/firewall/history?cause=Outside&chain=filter/DOCKER-USER");
            Assert.Contains(list.GetProperty("changes").EnumerateArray(), c => c.GetProperty("ruleText").GetString()!.Contains(comment, StringComparison.Ordinal));
        }
        finally
        {
            await lab.RunAsync("iptables", ["-w", "5", "-D", .. spec]);
        }

        await WaitAsync(() => Task.FromResult(outside.Any(o => o.Alert.GetProperty("changes").EnumerateArray().Any(c => c.GetProperty("kind").GetString() == "Removed" && c.GetProperty("ruleText").GetString()!.Contains(comment, StringComparison.Ordinal)))), "its removal flagged too");

        // An approved change's rule is the dashboard's; removed by hand while the change is still applied, it is outside.
        var alice = await factory.CreateUserAsync("alice", 1, Dashboard.Data.Entities.LabRole.Operator);
        using var aliceHttp = factory.CreateClient(alice.Token);
        var proposed = await aliceHttp.PostAsJsonAsync("/api/changes", new { lab = 1, rule = new { chain = "DOCKER-USER", position = 1, inInterface = bridge, outInterface = bridge, target = "ACCEPT" }, rationale = "history test" });
        Assert.True(proposed.IsSuccessStatusCode, await proposed.Content.ReadAsStringAsync());
        var changeId = (await proposed.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
        var approved = await http.PostAsJsonAsync($"/api/changes/{changeId}/approve", new { note = "history test" });
        var applied = await approved.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(applied.GetProperty("state").GetString() == "Applied", applied.ToString());
        var changeTag = applied.GetProperty("tag").GetString()!;
        try
        {
            await WaitAsync(async () => (await http.GetFromJsonAsync<JsonElement>($"/api/hosts/{host}/firewall/history?cause=Dashboard&chain=filter/DOCKER-USER")).GetProperty("changes").EnumerateArray()
                .Any(c => c.GetProperty("kind").GetString() == "Added" && c.GetProperty("ruleText").GetString()!.Contains(changeTag, StringComparison.Ordinal)), "the approved change's rule recorded as the dashboard's");
            var line = (await lab.RunAsync("iptables", "-w", "5", "-S", "DOCKER-USER")).Split('\n').Single(l => l.Contains(changeTag, StringComparison.Ordinal));
            await lab.RunAsync("iptables", ["-w", "5", "-D", .. line.Trim().Split(' ')[1..].Select(a => a.Trim('"'))]);
            await WaitAsync(() => Task.FromResult(outside.Any(o => o.Alert.GetProperty("changes").EnumerateArray().Any(c => c.GetProperty("kind").GetString() == "Removed"
                && c.GetProperty("ruleText").GetString()!.Contains(changeTag, StringComparison.Ordinal)
                && c.GetProperty("causeDetail").GetString()!.Contains($"change #{changeId}, still applied", StringComparison.Ordinal)))), "the applied change's rule removed by hand flagged as outside");
        }
        finally
        {
            await http.PostAsync($"/api/changes/{changeId}/revert", null);
            if ((await lab.RunAsync("iptables", "-w", "5", "-S", "DOCKER-USER")).Split('\n').FirstOrDefault(l => l.Contains(changeTag, StringComparison.Ordinal)) is { } left)
            {
                await lab.RunAsync("iptables", ["-w", "5", "-D", .. left.Trim().Split(' ')[1..].Select(a => a.Trim('"'))]);
            }
        }

        // The dashboard's own: a trace's rules carry its tag.
        // Two addresses of the new network no container holds (a trace only watches; no packet is sent).
        var subnet = (await lab.InspectAsync("network", lab.Name("hist"))).GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Subnet").GetString()!;
        var prefix = subnet[..subnet.LastIndexOf('.')];
        var started = await http.PostAsJsonAsync("/api/traces", new { source = prefix + ".200", destination = prefix + ".201", protocol = "icmp" });
        Assert.True(started.StatusCode == System.Net.HttpStatusCode.Created, $"trace: {(int)started.StatusCode} {await started.Content.ReadAsStringAsync()}");
        var trace = await started.Content.ReadFromJsonAsync<JsonElement>();
        var traceId = trace.GetProperty("id").GetString()!;
        await WaitAsync(async () => (await OwnAsync(http, host)).Any(c => c.Kind == "Added"), "the trace's rules recorded as the dashboard's");
        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.DeleteAsync($"/api/traces/{traceId}")).StatusCode);
        await WaitAsync(async () => (await OwnAsync(http, host)).Any(c => c.Kind == "Removed"), "their removal recorded as the dashboard's");
        Assert.All(await OwnAsync(http, host), c => Assert.StartsWith("trace-", c.Detail, StringComparison.Ordinal));
        Assert.DoesNotContain(outside, o => o.Alert.GetProperty("changes").EnumerateArray().Any(c => c.GetProperty("ruleText").GetString()?.Contains("netlab:trace-", StringComparison.Ordinal) == true));
    }

    private static bool Mentions(JsonElement alert, string text) =>
        alert.GetProperty("changes").EnumerateArray().Any(c => c.GetProperty("ruleText").GetString()?.Contains(text, StringComparison.Ordinal) == true);

    private static async Task<List<(string Kind, string? Detail)>> OwnAsync(HttpClient http, string host)
    {
        var list = await http.GetFromJsonAsync<JsonElement>($"/api/hosts/{host}/firewall/history?cause=Dashboard&chain=raw/PREROUTING");
        return [.. list.GetProperty("changes").EnumerateArray().Select(c => (c.GetProperty("kind").GetString()!, c.GetProperty("causeDetail").GetString()))];
    }

    /// <summary>Every IPv4 rule as "table -A …", read with iptables-save (counters aside).</summary>
    private static async Task<HashSet<string>> KernelRulesAsync(LabScope lab)
    {
        var rules = new HashSet<string>(StringComparer.Ordinal);
        string? table = null;
        foreach (var line in (await lab.RunAsync("iptables-save")).Split('\n'))
        {
            if (line.StartsWith('*'))
            {
                table = line[1..].Trim();
            }
            else if (line.StartsWith("-A ", StringComparison.Ordinal))
            {
                rules.Add($"{table} {line.TrimEnd()}");
            }
        }

        return rules;
    }

    private static Task WaitAsync(Func<Task<bool>> condition, string what) => WaitAsync(condition, () => what);

    private static async Task WaitAsync(Func<Task<bool>> condition, Func<string> what)
    {
        for (var i = 0; i < 150; i++)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(100);
        }

        Assert.Fail("timed out (15 s) waiting for " + what());
    }
}
