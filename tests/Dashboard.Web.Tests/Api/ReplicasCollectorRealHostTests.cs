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
/// watching counters on B makes A read at the watched rate, and A hears when nobody watches any more; a stranger's
/// messages on the channels are refused; A stops: B shows A's silence, then takes the duty and its own collector reads.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class ReplicasCollectorRealHostTests
{
    /// <summary>Seconds since replica B's duty connection (named <c>netlab duties replica-b</c>) last asked for the lock.</summary>
    private static async Task<double?> SinceBAskedAsync(string connection)
    {
        await using var db = new Npgsql.NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var query = new Npgsql.NpgsqlCommand("SELECT EXTRACT(EPOCH FROM clock_timestamp() - query_start)::float8 FROM pg_stat_activity WHERE application_name = 'netlab duties replica-b'", db);
        return await query.ExecuteScalarAsync() is double seconds ? seconds : null;
    }

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
            // B asks for the duties only every 25 s: long enough to see it mark A's silence once A has gone.
            ["Replicas:Retry"] = name == "replica-b" ? "00:00:25" : "00:00:05",
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

            // Anything else on the relay's channels (not JSON, no names, an unknown method, a refused snapshot from a
            // stranger): refused and counted, and B goes on following A.
            await using (var stranger = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(new RedisOptions { Connection = redis }.Client()))
            {
                var refusedBefore = relayB.Counts.Refused;
                var collector = StackExchange.Redis.RedisChannel.Literal($"test-{instance}:collector");
                var ask = StackExchange.Redis.RedisChannel.Literal($"test-{instance}:collector-ask");
                var sub = stranger.GetSubscriber();
                await sub.PublishAsync(collector, "not json");
                await sub.PublishAsync(collector, "{}");
                await sub.PublishAsync(collector, """{"origin":"stranger","epoch":"e1","method":"Reboot","body":{}}""");
                await sub.PublishAsync(collector, """{"origin":"stranger","epoch":"e1","method":"Snapshot","body":{"sequence":0}}""");
                await sub.PublishAsync(ask, "{\"origin\":null}");
                await Eventually.UntilAsync(() => Task.FromResult(relayB.Counts.Refused >= refusedBefore + 4), () => $"B to refuse the stranger's messages: {relayB.Counts.Refused - refusedBefore}", 10);
                Assert.StartsWith("replica-a/", relayB.Following, StringComparison.Ordinal);
                var applied = relayB.Counts.Applied;
                await Eventually.UntilAsync(() => Task.FromResult(relayB.Counts.Applied > applied + 2), () => "B to go on applying A's reads", 10);
            }

            // Somebody watches the counters on B: A reads at the watched rate; nobody any more: A hears that too.
            Assert.Equal(0, relayA.CounterWatchers - feedA.CounterWatchers);
            using (feedB.WatchCounters())
            {
                await Eventually.UntilAsync(() => relayA.CounterWatchers - feedA.CounterWatchers == 1, "A to count B's watcher", 10);
            }

            // Within 3 s, well before A would forget B's word anyway (6 s): B said it.
            await Eventually.UntilAsync(() => relayA.CounterWatchers - feedA.CounterWatchers == 0, "A to hear B's watcher left", 3);

            // A stops (its lease ends with its connection). B, not asking for the duties yet, shows A's silence after 10 s
            // (the last state, marked unavailable); then it takes the duty and reads the host itself.
            // Just after one of B's asks (the time its lock connection last asked, as PostgreSQL reports it): its next
            // comes some 20 s after A has gone.
            await Eventually.UntilAsync(async () => await SinceBAskedAsync(connection) is >= 1 and <= 4, () => "the moment just after one of B's asks for the duties", 40);

            a.Dispose();
            a = null;
            await Eventually.UntilAsync(() => Task.FromResult(feedB.Status.EngineError?.Contains("has said nothing since", StringComparison.Ordinal) == true && !feedB.Status.FirewallAvailable && !feedB.Status.EngineAvailable),
                () => $"B to mark A's silence: {feedB.Status.EngineError}", 15);
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
