using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.App.Live;
using Dashboard.Core.Firewall;
using Dashboard.Host.Collector;
using Dashboard.Web.Replicas;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Api;

/// <summary>
/// The embedded collector as a singleton duty of two replicas (one PostgreSQL database, one Redis): only the duty's
/// holder (A) reads the host; B's live feed follows A's reads through Redis (a lab made after both started appears in
/// B's topology, the isolation DROP's counter in B's feed grows by the echo requests of a dropped ping); a page
/// watching counters on B makes A read at the watched rate, and A hears when nobody watches any more; A stops: B takes
/// the duty and its own collector reads from then on.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class ReplicasCollectorRealHostTests
{
    [SkippableFact]
    public async Task OnlyTheHolderReads_TheOtherFollowsItsReadsAndWatchers_AndReadsItselfOnceItHoldsTheDuty()
    {
        RealHost.Require();
        PostgresServer.Require();
        var redis = RedisServer.Require();
        var connection = await PostgresServer.CreateDatabaseAsync("netlab_replicas_collector");
        var data = Directory.CreateTempSubdirectory("netlab-replicas-collector-").FullName;
        var instance = "c" + Guid.NewGuid().ToString("N")[..8];
        Dictionary<string, string?> Settings(string name) => new()
        {
            ["Data:ConnectionString"] = connection,
            ["Host:InstanceId"] = instance,
            ["Redis:Connection"] = redis,
            ["Redis:ChannelPrefix"] = "test-" + instance,
            ["Replicas:Name"] = name,
            ["Collector:Enabled"] = "true",
        };
        await using var lab = new LabScope();
        DashboardFactory? a = null;
        try
        {
            a = new DashboardFactory(Settings("replica-a"), kestrel: true, dataDirectory: data, provider: "postgres");
            using var adminA = a.CreateClient();
            await Eventually.UntilAsync(async () => (await adminA.GetFromJsonAsync<JsonElement>("/api/replica")).GetProperty("holdsDuties").GetBoolean(), () => "replica A to hold the duties", 30);
            using var b = new DashboardFactory(Settings("replica-b"), kestrel: true, dataDirectory: data, provider: "postgres");
            var feedA = a.Services.GetRequiredService<LiveFeed>();
            var feedB = b.Services.GetRequiredService<LiveFeed>();
            var relayA = a.Services.GetRequiredService<RedisCollectorRelay>();
            var relayB = b.Services.GetRequiredService<RedisCollectorRelay>();
            var collectorB = b.Services.GetRequiredService<HostCollector>();

            // The lab is made after both started: B learns of it only from A's reads.
            var seed = await lab.CreateSeedLabAsync();
            await Eventually.UntilAsync(() => Task.FromResult(feedB.Topology?.Networks.Any(n => n.Name == seed.Net1) == true && feedB.Ruleset?.Rules.Any(r => r.Bridges.Contains(seed.Bridge1)) == true),
                () => $"B's feed to show {seed.Net1} and its rules (B follows {relayB.Following ?? "nobody"}, applied {relayB.Counts.Applied}, refused {relayB.Counts.Refused}; A published {relayA.Counts.Published})", 30);
            Assert.StartsWith("replica-a/", relayB.Following, StringComparison.Ordinal);
            Assert.Equal(0, collectorB.Status.Reads);
            Assert.Equal(0, relayB.Counts.Refused);

            // The dropped ping's echo requests are counted by the isolation DROP in B's feed, as A read them.
            FirewallRule Drop(LiveFeed feed) => feed.Ruleset!.Rules.Single(r => r.Chain == "DOCKER-ISOLATION-STAGE-2" && r.Target == "DROP" && r.Text.Contains($"-o {seed.Bridge1} ", StringComparison.Ordinal));
            var before = feedB.CountersOf(Drop(feedB)).Packets;
            Assert.Equal((3, 0), await lab.PingAsync(seed.C2, seed.C1Ip));
            await Eventually.UntilAsync(() => Task.FromResult(feedB.CountersOf(Drop(feedB)).Packets >= before + 3), () => $"B's DROP counter to grow by 3 from {before}: {feedB.CountersOf(Drop(feedB)).Packets} (A's: {feedA.CountersOf(Drop(feedA)).Packets})", 20);
            // B's feed shows A's reads (A's collector status, relayed); B's own collector has not read once.
            Assert.True(feedB.Status.Reads > 0 && collectorB.Status.Reads == 0, $"B's feed: {feedB.Status.Reads} reads; B's collector: {collectorB.Status.Reads}");
            using (var b2 = b.CreateClient())
            {
                var status = await b2.GetFromJsonAsync<JsonElement>("/api/collector");
                Assert.True(status.GetProperty("firewallAvailable").GetBoolean(), status.ToString());
            }

            // Somebody watches the counters on B: A reads at the watched rate; nobody any more: A hears that too.
            Assert.Equal(0, relayA.CounterWatchers - feedA.CounterWatchers);
            using (feedB.WatchCounters())
            {
                await Eventually.UntilAsync(() => relayA.CounterWatchers - feedA.CounterWatchers == 1, "A to count B's watcher", 10);
            }

            await Eventually.UntilAsync(() => relayA.CounterWatchers - feedA.CounterWatchers == 0, "A to hear B's watcher left", 10);

            // A stops (its lease ends with its connection): B takes the duty and reads the host itself.
            a.Dispose();
            a = null;
            using var adminB = b.CreateClient();
            await Eventually.UntilAsync(async () => (await adminB.GetFromJsonAsync<JsonElement>("/api/replica")).GetProperty("holdsDuties").GetBoolean(), () => "replica B to take the duties", 30);
            await Eventually.UntilAsync(() => collectorB.Status.Reads > 0, "B's own collector to read", 20);
            Assert.Null(relayB.Following);
            before = feedB.CountersOf(Drop(feedB)).Packets;
            Assert.Equal((3, 0), await lab.PingAsync(seed.C2, seed.C1Ip));
            await Eventually.UntilAsync(() => Task.FromResult(feedB.CountersOf(Drop(feedB)).Packets >= before + 3), () => $"B's own reads to count the ping: {feedB.CountersOf(Drop(feedB)).Packets} from {before}", 20);
        }
        finally
        {
            a?.Dispose();
            await PostgresServer.DropDatabaseAsync(connection);
            Directory.Delete(data, recursive: true);
        }
    }
}
