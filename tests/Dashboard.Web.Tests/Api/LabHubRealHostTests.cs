using System.Collections.Concurrent;
using Dashboard.Web.Hubs;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Api;

/// <summary>A real SignalR client on /hubs/lab sees the isolation DROP rule count real traffic between two lab containers.</summary>
[Trait("Category", "RealHost")]
public class LabHubRealHostTests
{
    [SkippableFact]
    public async Task LabHub_PingBetweenIsolatedNetworks_SendsCountersChangedForTheIsolationDrop()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        var (_, _, bridge1, _, _, c2, c1Ip) = await lab.CreateSeedLabAsync();

        using var factory = new DashboardFactory(new() { ["Collector:Enabled"] = "true" });
        var server = factory.Server;
        var feed = factory.Services.GetRequiredService<Live.LiveFeed>();
        var received = new ConcurrentQueue<CountersMessage>();
        var statuses = 0;
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(server.BaseAddress, "hubs/lab"), o =>
            {
                o.HttpMessageHandlerFactory = _ => server.CreateHandler();
                o.Transports = HttpTransportType.LongPolling;
            })
            .AddJsonProtocol(o => o.PayloadSerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter()))
            .Build();
        hub.On<CountersMessage>("CountersChanged", m => received.Enqueue(m));
        hub.On<object>("CollectorStatus", _ => Interlocked.Increment(ref statuses));
        await hub.StartAsync();

        // Wait until the collector has classified a ruleset that knows both lab bridges.
        await WaitAsync(() => feed.Ruleset?.Rules.Any(r => r.Bridges.Contains(bridge1)) == true, "the collector to read the lab's rules");
        received.Clear();

        var (sent, got) = await lab.PingAsync(c2, c1Ip, 3);
        Assert.Equal((3, 0), (sent, got));

        await WaitAsync(() => DropDelta(received, bridge1) >= 3, "CountersChanged for the isolation DROP of c1's bridge");
        Assert.Equal(3UL, DropDelta(received, bridge1));
        Assert.All(received, m => Assert.Equal(feed.Host, m.Host));
        Assert.True(statuses > 0, "CollectorStatus messages arrive too");
    }

    private static ulong DropDelta(IEnumerable<CountersMessage> messages, string bridge) =>
        messages.SelectMany(m => m.Rules)
            .Where(r => r.Table == "filter" && r.Chain.StartsWith("DOCKER", StringComparison.Ordinal) && r.Key.Contains($"-o {bridge} -j DROP", StringComparison.Ordinal))
            .Aggregate(0UL, (s, r) => s + r.DeltaPackets);

    private static async Task WaitAsync(Func<bool> condition, string what)
    {
        for (var i = 0; i < 150; i++)
        {
            if (condition())
            {
                return;
            }

            await Task.Delay(100);
        }

        Assert.Fail($"timed out after 15 s waiting for {what}");
    }
}
