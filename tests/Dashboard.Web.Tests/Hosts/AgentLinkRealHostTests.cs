using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.App.Hosts;
using Dashboard.App.Live;
using Dashboard.Core.Firewall;

namespace Dashboard.Web.Tests.Hosts;

/// <summary>
/// What agents and the dashboard survive on real engines: a host's link down for 30 s while its counters move, and a
/// dashboard restarted while its agents run.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class AgentLinkRealHostTests
{
    /// <summary>The kernel's own count for the rule, read now with iptables-save -c in the engine's namespace.</summary>
    private static async Task<ulong> KernelCountAsync(LabScope lab, FirewallRule rule)
    {
        var id = RuleId.Of(rule);
        return IptablesSaveReader.Read(await lab.RunAsync("iptables-save", "-c")).Rules.Single(r => RuleId.Of(r) == id).Packets;
    }

    private static FirewallRule StageTwoDrop(LiveFeed feed, SeedLab seed) =>
        feed.Ruleset!.Rules.Single(r => r.Table == "filter" && r.Chain == "DOCKER-ISOLATION-STAGE-2" && r.FindValue("-o") == seed.Bridge1 && r.Target == "DROP");

    [SkippableFact]
    public async Task TheLinkOfAHostDownFor30s_WhileItsCountersMove_AfterwardsTheCountersAreTheKernels_NoResetAndTheGapShown()
    {
        RealHost.Require();
        await using var three = await ThreeAgentHosts.StartAsync();
        var (host, engine, _) = three.Hosts.Single(h => h.Name == "docker-261");

        // The agent of 26.1 through a link the test can cut (and a short backoff, so it is back soon after the link).
        using var link = new UnixRelay(three.Socket);
        three.KillAgent(host);
        three.StartAgent(host, link.Path, new Dictionary<string, string> { ["Agent__MaxBackoff"] = "00:00:02" });
        var remote = three.Directory.Remote(host)!;
        await Eventually.UntilAsync(() => Task.FromResult(remote.State == AgentState.Connected), () => "the agent to connect through the link:\n" + three.Logs(), 60);

        await using var lab = new LabScope(engine);
        var seed = await lab.CreateSeedLabAsync();
        var feed = remote.Feed;
        await Eventually.UntilAsync(() => Task.FromResult(feed.Ruleset?.Rules.Any(r => r.Chain == "DOCKER-ISOLATION-STAGE-2" && r.FindValue("-o") == seed.Bridge1) == true),
            () => "the seed's isolation rules to reach the dashboard:\n" + three.Logs(), 30);
        // Found again each time: a snapshot after the link is back brings a new ruleset (with new rule objects).
        ulong Count() => feed.CountersOf(StageTwoDrop(feed, seed)).Packets;
        var rule = StageTwoDrop(feed, seed);
        var id = RuleId.Of(rule);
        await Eventually.UntilAsync(async () => Count() == await KernelCountAsync(lab, rule), () => "the counter to settle", 20);
        var before = Count();
        var resets = new List<RuleCounterChange>();
        using var watch = feed.Subscribe([LiveTopic.Counters()], e =>
        {
            if (e is CountersChangedEvent c)
            {
                lock (resets)
                {
                    resets.AddRange(c.Update.Rules.Where(r => r.Id == id && r.Reset));
                }
            }
        });

        // Down for 30 s; in it c2 pings c1 twice, 4 requests each, all dropped by the rule.
        var down = DateTimeOffset.UtcNow;
        link.Down();
        await Eventually.UntilAsync(() => Task.FromResult(remote.State == AgentState.Disconnected), () => "the dashboard to see the link down", 20);
        Assert.Equal((4, 0), await lab.PingAsync(seed.C2, seed.C1Ip, 4));
        await Task.Delay(TimeSpan.FromSeconds(10));
        Assert.Equal((4, 0), await lab.PingAsync(seed.C2, seed.C1Ip, 4));
        Assert.Equal(before, Count());
        var left = TimeSpan.FromSeconds(30) - (DateTimeOffset.UtcNow - down);
        if (left > TimeSpan.Zero)
        {
            await Task.Delay(left);
        }

        link.Up();

        // Back: the counter is the kernel's (8 more, counted once at reconnection), never reset, and the gap is shown.
        await Eventually.UntilAsync(() => Task.FromResult(remote.State == AgentState.Connected && Count() >= before + 8),
            () => $"the agent back with the 8 requests counted (now {Count()}, from {before}):\n{three.Logs()}", 60);
        Assert.Equal(before + 8, Count());
        Assert.Equal(await KernelCountAsync(lab, rule), Count());
        Assert.Empty(resets);
        var samples = feed.HistoryOf(id);
        Assert.True(samples.Zip(samples.Skip(1)).All(p => p.Second.Packets >= p.First.Packets), "the rule's history never goes down: " + string.Join(", ", samples.Select(s => s.Packets)));
        // Two spans without data: the agent's restart onto the link at the start, then the 30 s the link was down.
        Assert.Equal(2, feed.Gaps.Count);
        var gap = feed.Gaps[^1];
        Assert.True(gap.Duration >= TimeSpan.FromSeconds(29) && gap.Duration < TimeSpan.FromSeconds(60), $"the gap spans the 30 s the link was down: {gap}");

        var listed = (await three.Admin.GetFromJsonAsync<JsonElement>("/api/hosts")).EnumerateArray().Single(h => h.GetProperty("name").GetString() == host);
        Assert.Equal(2, listed.GetProperty("outages").GetInt32());
        Assert.True(listed.GetProperty("lastOutage").GetProperty("duration").GetString() is { } d && TimeSpan.Parse(d, System.Globalization.CultureInfo.InvariantCulture) >= TimeSpan.FromSeconds(29), $"{listed}");
    }

    [SkippableFact]
    public async Task TheDashboardRestarted_WhileAgentsRun_TheyReconnectByThemselves_AndNothingIsLost()
    {
        RealHost.Require();
        await using var three = await ThreeAgentHosts.StartAsync();
        var runs = (await three.Admin.PostAsJsonAsync("/api/runs", new
        {
            experimentId = (await three.Admin.GetFromJsonAsync<JsonElement>("/api/experiments")).EnumerateArray().Single(e => e.GetProperty("builtIn").GetBoolean()).GetProperty("id").GetGuid(),
            variant = "isolated",
            hosts = new[] { "docker-261", "docker-285" },
        })).Content.ReadFromJsonAsync<JsonElement>();
        var started = (await runs).GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("id").GetGuid()).ToList();
        foreach (var id in started)
        {
            await Eventually.UntilAsync(async () => (await three.Admin.GetFromJsonAsync<JsonElement>($"/api/runs/{id}")).GetProperty("summary").GetProperty("status").GetString() == "Succeeded",
                () => $"run {id} to succeed:\n{three.Logs()}", 180);
        }

        three.RestartDashboard();

        // The two agents on the Unix socket come back by themselves (the 20.10 agent's TCP port is a new one: it is
        // restarted with it); their tokens still hold, their hosts are listed, the runs are kept.
        three.KillAgent("docker-2010");
        three.StartAgent("docker-2010");
        await three.AllConnectedAsync("all three hosts connected to the restarted dashboard");
        foreach (var id in started)
        {
            var run = await three.Admin.GetFromJsonAsync<JsonElement>($"/api/runs/{id}");
            Assert.Equal("Succeeded", run.GetProperty("summary").GetProperty("status").GetString());
            Assert.Equal(3, run.GetProperty("probes")[0].GetProperty("sent").GetInt32());
        }

        // Live again: a counter on 28.5 moves through its agent after the restart.
        var (_, e28, _) = three.Hosts.Single(h => h.Name == "docker-285");
        await using var lab = new LabScope(e28);
        var seed = await lab.CreateSeedLabAsync();
        var feed = three.Directory.Remote("docker-285")!.Feed;
        FirewallRule Raw() => feed.Ruleset!.Rules.Single(r => r.Table == "raw" && r.Chain == "PREROUTING" && r.FindValue("-d") == seed.C1Ip + "/32" && r.Target == "DROP");
        await Eventually.UntilAsync(() => Task.FromResult(feed.Ruleset?.Rules.Any(r => r.Table == "raw" && r.FindValue("-d") == seed.C1Ip + "/32") == true), () => "the seed's raw rule on 28.5", 30);
        var before = feed.CountersOf(Raw()).Packets;
        Assert.Equal((3, 0), await lab.PingAsync(seed.C2, seed.C1Ip, 3));
        await Eventually.UntilAsync(() => Task.FromResult(feed.CountersOf(Raw()).Packets == before + 3), () => $"the raw DROP to count 3 after the restart (from {before}, now {feed.CountersOf(Raw()).Packets})", 20);
    }
}
