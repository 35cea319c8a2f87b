using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Data.Entities;
using Microsoft.AspNetCore.SignalR.Client;

namespace Dashboard.Web.Tests.Api;

/// <summary>
/// Two replicas (two dashboards on one PostgreSQL database and one Redis, each on a port of its own) with hub clients
/// on both: Alice proposes a change through replica A, Bob approves it through replica B, and each hears every move of
/// the change exactly once whichever replica made it (the backplane, and no replica sending a relayed event again);
/// a run started through B is run by A (the duties' holder), B's hub client receives its progress (sent by A through
/// the backplane) and B's own API answers its progress as A reported it (the live feed relayed into B's process).
/// </summary>
[Trait("Category", "RealHost")]
public sealed class ReplicasRedisRealHostTests
{
    [SkippableFact]
    public async Task ProposeOnA_ApproveOnB_EachHearsEveryMoveOnce_AndARunThroughBIsRunByA_WithItsProgressOnB()
    {
        RealHost.Require();
        PostgresServer.Require();
        var redis = RedisServer.Require();
        var connection = await PostgresServer.CreateDatabaseAsync("netlab_replicas_redis");
        var data = Directory.CreateTempSubdirectory("netlab-replicas-redis-").FullName;
        var instance = "r" + Guid.NewGuid().ToString("N")[..8];
        Dictionary<string, string?> Settings(string name) => new()
        {
            ["Data:ConnectionString"] = connection,
            ["Host:InstanceId"] = instance,
            ["Redis:Connection"] = redis,
            ["Redis:ChannelPrefix"] = "test-" + instance,
            ["Replicas:Name"] = name,
        };
        await using var lab = new LabScope();
        try
        {
            using var a = new DashboardFactory(Settings("replica-a"), kestrel: true, dataDirectory: data, provider: "postgres");
            using var adminA = a.CreateClient();
            await Eventually.UntilAsync(async () => (await adminA.GetFromJsonAsync<JsonElement>("/api/replica")).GetProperty("holdsDuties").GetBoolean(), () => "replica A to hold the duties", 30);
            using var b = new DashboardFactory(Settings("replica-b"), kestrel: true, dataDirectory: data, provider: "postgres");
            using var adminB = b.CreateClient();
            var rb = await adminB.GetFromJsonAsync<JsonElement>("/api/replica");
            Assert.False(rb.GetProperty("holdsDuties").GetBoolean(), rb.ToString());
            Assert.Equal("replica-a", rb.GetProperty("holder").GetString());

            var alice = await a.CreateUserAsync("alice", 1, LabRole.Operator);
            var bob = await a.CreateUserAsync("bob", 1, LabRole.Approver);
            var heard = new ConcurrentQueue<(string Who, string Method, int Id, string State)>();
            var progressOnB = new ConcurrentQueue<JsonElement>();
            async Task<HubConnection> ConnectAsync(DashboardFactory app, string token, string who)
            {
                var hub = new HubConnectionBuilder()
                    .WithUrl(new Uri(app.BaseUri, "hubs/lab"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(token))
                    .Build();
                hub.On<JsonElement>("ChangeRequestUpdated", c => heard.Enqueue((who, "change", c.GetProperty("id").GetInt32(), c.GetProperty("state").GetString()!)));
                hub.On<JsonElement>("RunUpdated", p => progressOnB.Enqueue(p));
                await hub.StartAsync();
                return hub;
            }

            await using var aliceOnA = await ConnectAsync(a, alice.Token, "alice@A");
            await using var bobOnB = await ConnectAsync(b, bob.Token, "bob@B");

            // Alice proposes through A, Bob approves through B (B applies it to the host), Alice reverts through A.
            var seed = await lab.CreateSeedLabAsync();
            using var aliceA = a.CreateClient(alice.Token);
            using var bobB = b.CreateClient(bob.Token);
            var proposed = await aliceA.PostAsJsonAsync("/api/changes", new { lab = 1, rule = new { chain = "DOCKER-USER", position = 1, inInterface = seed.Bridge2, outInterface = seed.Bridge1, target = "ACCEPT" }, rationale = "replica test" });
            Assert.True(proposed.IsSuccessStatusCode, await proposed.Content.ReadAsStringAsync());
            var id = (await proposed.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt32();
            var approved = await bobB.PostAsJsonAsync($"/api/changes/{id}/approve", new { note = "from replica B" });
            Assert.True(approved.IsSuccessStatusCode, await approved.Content.ReadAsStringAsync());
            var reverted = await aliceA.PostAsync($"/api/changes/{id}/revert", null);
            Assert.True(reverted.IsSuccessStatusCode, await reverted.Content.ReadAsStringAsync());
            string Heard() => string.Join("; ", heard.Select(h => $"{h.Who} {h.Id} {h.State}"));
            foreach (var who in new[] { "alice@A", "bob@B" })
            {
                await Eventually.UntilAsync(() => heard.Any(h => h.Who == who && h.Id == id && h.State == "Reverted"), $"{who} to hear the revert: {Heard()}", 20);
            }

            await Task.Delay(1000);
            foreach (var who in new[] { "alice@A", "bob@B" })
            {
                var states = heard.Where(h => h.Who == who && h.Id == id).Select(h => h.State).ToList();
                Assert.Contains("Proposed", states);
                Assert.Contains("Applied", states);
                Assert.Contains("Reverted", states);
                Assert.True(states.Count == states.Distinct().Count(), $"{who} heard a move twice: {string.Join(", ", states)}");
            }

            // A run started through B: A runs it; B's hub client hears its progress and B's API answers it with A's fraction.
            using var aliceB = b.CreateClient(alice.Token);
            var experiments = await aliceB.GetFromJsonAsync<JsonElement>("/api/experiments");
            var seedExperiment = experiments.EnumerateArray().Single(e => e.GetProperty("builtIn").GetBoolean()).GetProperty("id").GetGuid();
            await using var aliceOnB = await ConnectAsync(b, alice.Token, "alice@B");
            var start = await aliceB.PostAsJsonAsync("/api/runs", new { experimentId = seedExperiment, variant = "docker-user" });
            Assert.True(start.IsSuccessStatusCode, await start.Content.ReadAsStringAsync());
            var run = (await start.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
            var fractions = new List<double>();
            await Eventually.UntilAsync(
                async () =>
                {
                    var p = await aliceB.GetFromJsonAsync<JsonElement>($"/api/runs/{run}/progress");
                    fractions.Add(p.GetProperty("fraction").GetDouble());
                    return p.GetProperty("status").GetString() != "Running";
                },
                () => "the run to end, seen through B",
                180);
            var summary = (await aliceB.GetFromJsonAsync<JsonElement>($"/api/runs/{run}")).GetProperty("summary");
            Assert.True(summary.GetProperty("status").GetString() == "Succeeded", summary.ToString());
            Assert.Contains(fractions, f => f is > 0 and < 1);
            var runEvents = progressOnB.Where(p => p.GetProperty("runId").GetGuid() == run).ToList();
            Assert.True(runEvents.Count >= 3, $"{runEvents.Count} RunUpdated messages through B's hub");
            Assert.Contains(runEvents, p => p.GetProperty("fraction").GetDouble() is > 0 and < 1);
        }
        finally
        {
            await PostgresServer.DropDatabaseAsync(connection);
            Directory.Delete(data, recursive: true);
        }
    }
}
