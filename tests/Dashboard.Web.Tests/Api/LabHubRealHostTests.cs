using System.Collections.Concurrent;
using System.Net.Http.Json;
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
        var feed = factory.Services.GetRequiredService<Dashboard.App.Live.LiveFeed>();
        var received = new ConcurrentQueue<CountersMessage>();
        var statuses = 0;
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(server.BaseAddress, "hubs/lab"), o =>
            {
                o.HttpMessageHandlerFactory = _ => server.CreateHandler();
                o.AccessTokenProvider = () => Task.FromResult<string?>(factory.AdminToken);
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

        var kernelBefore = await KernelDropPacketsAsync(lab, bridge1);
        var (sent, got) = await lab.PingAsync(c2, c1Ip, 3);
        Assert.Equal((3, 0), (sent, got));
        var kernelAfter = await KernelDropPacketsAsync(lab, bridge1);

        // Said on failure: whether the collector saw the DROP move (then the hub did not deliver it) or not.
        string Seen() =>
            $"CountersChanged for the isolation DROP of c1's bridge (hub messages {received.Count}, their DROP delta {DropDelta(received, bridge1)}; " +
            $"the feed's DROP counters {string.Join(", ", feed.Ruleset?.Rules.Where(r => r.Text.Contains($"-o {bridge1} -j DROP", StringComparison.Ordinal)).Select(r => feed.CountersOf(r).Packets) ?? [])}; " +
            $"collector reads {feed.Status.Reads} at {feed.Status.AchievedRateHz:0.0} Hz, firewall available {feed.Status.FirewallAvailable}; " +
            $"the kernel's own DROP count (iptables-save -c) went {kernelBefore} → {kernelAfter} during the ping)";
        await WaitAsync(() => DropDelta(received, bridge1) >= 3, Seen);
        Assert.Equal(3UL, DropDelta(received, bridge1));
        Assert.All(received, m => Assert.Equal(feed.Host, m.Host));
        Assert.True(statuses > 0, "CollectorStatus messages arrive too");
    }

    [SkippableFact]
    public async Task LabHub_CaptureAndTraceStartedOverTheApi_StreamPacketsCapturedAndTraceUpdated()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        var c2Ip = await lab.IpOfAsync(seed.C2, seed.Net2);

        using var factory = new DashboardFactory();
        var server = factory.Server;
        using var http = factory.CreateClient();
        var packets = new ConcurrentQueue<System.Text.Json.JsonElement>();
        var traces = new ConcurrentQueue<System.Text.Json.JsonElement>();
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(server.BaseAddress, "hubs/lab"), o =>
            {
                o.HttpMessageHandlerFactory = _ => server.CreateHandler();
                o.AccessTokenProvider = () => Task.FromResult<string?>(factory.AdminToken);
                o.Transports = HttpTransportType.LongPolling;
            })
            .Build();
        hub.On<System.Text.Json.JsonElement>("PacketsCaptured", m => packets.Enqueue(m));
        hub.On<System.Text.Json.JsonElement>("TraceUpdated", m => traces.Enqueue(m));
        await hub.StartAsync();

        // A bad trace request is refused with a message, and nothing starts.
        var bad = await http.PostAsJsonAsync("/api/traces", new { source = "172.18.0.2; reboot", destination = seed.C1Ip });
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("must be one IPv4 address", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var capture = await (await http.PostAsJsonAsync("/api/captures", new { @interface = seed.Bridge2, filter = $"icmp and host {seed.C1Ip}" })).Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        var traceResponse = await http.PostAsJsonAsync("/api/traces", new { source = c2Ip, destination = seed.C1Ip, protocol = "icmp" });
        Assert.Equal(System.Net.HttpStatusCode.Created, traceResponse.StatusCode);
        var trace = await traceResponse.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        var (captureId, traceId) = (capture.GetProperty("id").GetString()!, trace.GetProperty("id").GetString()!);

        Assert.Equal((2, 0), await lab.PingAsync(seed.C2, seed.C1Ip, 2));

        await WaitAsync(() => Requests(packets, captureId) >= 2, "PacketsCaptured with both echo requests");
        await WaitAsync(() => traces.Any(t => t.GetProperty("trace").GetProperty("id").GetString() == traceId && t.GetProperty("packets").EnumerateArray().Any(p => Decision(p) == "DOCKER-ISOLATION-STAGE-2 DROP")), "TraceUpdated naming the isolation DROP");

        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.DeleteAsync($"/api/traces/{traceId}")).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.DeleteAsync($"/api/captures/{captureId}")).StatusCode);
        await WaitAsync(() => packets.Any(m => m.GetProperty("capture").GetProperty("id").GetString() == captureId && m.GetProperty("final").GetBoolean()), "the capture's final batch");
        var final = packets.Last(m => m.GetProperty("capture").GetProperty("id").GetString() == captureId);
        Assert.Equal(2, final.GetProperty("totalShown").GetInt64() + final.GetProperty("totalNotShown").GetInt64());
        Assert.Equal(2, final.GetProperty("capture").GetProperty("stats").GetProperty("capturedByTcpdump").GetInt64());
        Assert.DoesNotContain("netlab:trace-", await lab.RunAsync("iptables-save", "-t", "raw"), StringComparison.Ordinal);
    }

    /// <summary>The packet counter of the isolation DROP for a bridge, read straight from the kernel, or -1 when the rule is missing.</summary>
    private static async Task<long> KernelDropPacketsAsync(LabScope lab, string bridge)
    {
        var save = await lab.RunAsync("iptables-save", "-c", "-t", "filter");
        var line = save.Split('\n').FirstOrDefault(l => l.Contains($"-o {bridge} -j DROP", StringComparison.Ordinal) && l.Contains("-A DOCKER", StringComparison.Ordinal));
        var m = line is null ? null : System.Text.RegularExpressions.Regex.Match(line, @"^\[(\d+):\d+\]");
        return m is { Success: true } ? long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : -1;
    }

    private static int Requests(IEnumerable<System.Text.Json.JsonElement> messages, string captureId) =>
        messages.Where(m => m.GetProperty("capture").GetProperty("id").GetString() == captureId)
            .SelectMany(m => m.GetProperty("packets").EnumerateArray())
            .Count(p => p.GetProperty("summary").GetString()!.Contains("ICMP echo request", StringComparison.Ordinal));

    private static string? Decision(System.Text.Json.JsonElement packet) =>
        packet.GetProperty("steps").EnumerateArray()
            .Where(s => s.GetProperty("table").GetString() == "filter" && s.GetProperty("verdict").GetString() is "ACCEPT" or "DROP")
            .Select(s => $"{s.GetProperty("chain").GetString()} {s.GetProperty("verdict").GetString()}")
            .LastOrDefault();

    private static ulong DropDelta(IEnumerable<CountersMessage> messages, string bridge) =>
        messages.SelectMany(m => m.Rules)
            .Where(r => r.Table == "filter" && r.Chain.StartsWith("DOCKER", StringComparison.Ordinal) && r.Key.Contains($"-o {bridge} -j DROP", StringComparison.Ordinal))
            .Aggregate(0UL, (s, r) => s + r.DeltaPackets);

    private static Task WaitAsync(Func<bool> condition, string what) => WaitAsync(condition, () => what);

    /// <summary>Waits up to 15 s; on time-out the message is made then, so it can say what the app saw meanwhile.</summary>
    private static async Task WaitAsync(Func<bool> condition, Func<string> what)
    {
        for (var i = 0; i < 150; i++)
        {
            if (condition())
            {
                return;
            }

            await Task.Delay(100);
        }

        Assert.Fail($"timed out after 15 s waiting for {what()}");
    }
}
