using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dashboard.Core.Capture;
using Dashboard.Data;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Hosts;

/// <summary>
/// Captures and verdict traces started from the dashboard on agents' hosts (three real engines: 20.10, 26.1.5 and
/// 28.5.2, each with its real agent): the packets come live through the hub with the capture's accounting, the pcap
/// comes from the agent when downloaded, the trace shows each engine's deciding rule, and nothing is left behind.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class AgentCaptureRealHostTests
{
    private static async Task<JsonElement> PostAsync(HttpClient http, string path, object body, HttpStatusCode expected)
    {
        var response = await http.PostAsJsonAsync(path, body);
        var json = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == expected, $"POST {path}: {(int)response.StatusCode} {json}");
        return json;
    }

    /// <summary>The agent host's own view of the seed lab: c2's host veth (where its requests leave it on every engine).</summary>
    private static async Task<string> HostVethOfAsync(ThreeAgentHosts three, string host, string container)
    {
        string? veth = null;
        await Eventually.UntilAsync(() => Task.FromResult((veth = three.Directory.Remote(host)!.Feed.Topology?.Containers.FirstOrDefault(c => c.Name == container)?.Endpoints
            .FirstOrDefault(e => e.Veth is not null)?.Veth!.HostInterface) is not null), () => $"{host} to report {container}'s host veth:\n{three.Logs()}", 60);
        return veth!;
    }

    [SkippableFact]
    public async Task CapturesAndTraces_OnEachAgentsHost_ComeLive_AccountForEveryPacket_AndLeaveNothingBehind()
    {
        RealHost.Require();
        await using var three = await ThreeAgentHosts.StartAsync();
        var admin = three.Admin;
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(three.Factory.BaseUri, "hubs/lab"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(three.Factory.AdminToken))
            .AddJsonProtocol(o => o.PayloadSerializerOptions.Converters.Add(new JsonStringEnumConverter()))
            .Build();
        var batches = new ConcurrentQueue<JsonElement>();
        var traced = new ConcurrentQueue<JsonElement>();
        hub.On<JsonElement>("PacketsCaptured", batches.Enqueue);
        hub.On<JsonElement>("TraceUpdated", traced.Enqueue);
        await hub.StartAsync();

        foreach (var (name, engine, version) in three.Hosts)
        {
            await hub.InvokeAsync("JoinHost", name);
            await using var lab = new LabScope(engine);
            var seed = await lab.CreateSeedLabAsync();
            var veth = await HostVethOfAsync(three, name, seed.C2);
            var c2Ip = await lab.IpOfAsync(seed.C2, seed.Net2);

            // Refused before the agent is asked: an interface that is not the host's Docker bridge or veth.
            var refused = await PostAsync(admin, $"/api/hosts/{name}/captures", new { @interface = "lo" }, HttpStatusCode.BadRequest);
            Assert.Contains($"host {name}'s Docker networks", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);

            // Refused by the agent: a filter its tcpdump does not compile.
            var bad = await PostAsync(admin, $"/api/hosts/{name}/captures", new { @interface = veth, filter = "icmp and nonsense(" }, HttpStatusCode.BadRequest);
            Assert.Contains($"host {name}: the filter does not compile", bad.GetProperty("detail").GetString(), StringComparison.Ordinal);

            // A capture on c2's host veth, run by the agent: the three echo requests come live, decoded here.
            var started = await PostAsync(admin, $"/api/hosts/{name}/captures", new { @interface = veth, filter = "icmp" }, HttpStatusCode.Created);
            var id = started.GetProperty("id").GetString()!;
            Assert.Equal((3, 0), await lab.PingAsync(seed.C2, seed.C1Ip, 3));
            await Eventually.UntilAsync(() => Task.FromResult(batches.Where(b => b.GetProperty("capture").GetProperty("id").GetString() == id)
                    .SelectMany(b => b.GetProperty("packets").EnumerateArray()).Count(p => p.GetProperty("source").GetString() == c2Ip && p.GetProperty("destination").GetString() == seed.C1Ip
                        && p.GetProperty("echo").ValueKind == JsonValueKind.Object && p.GetProperty("echo").GetProperty("isRequest").GetBoolean()) == 3),
                () => $"{name}: the three echo requests c2 → c1 as PacketsCaptured on /hubs/lab:\n{string.Join("\n", batches.Take(10))}\n{three.Logs()}", 30);

            var stopped = await admin.DeleteAsync($"/api/hosts/{name}/captures/{id}");
            var capture = await stopped.Content.ReadFromJsonAsync<JsonElement>();
            Assert.True(stopped.IsSuccessStatusCode, $"{name}: stop {(int)stopped.StatusCode} {capture}");
            Assert.Equal("Requested", capture.GetProperty("endReason").GetString());

            // The accounting holds end to end: read on the agent = shown + counted here, and tcpdump's own count.
            var stats = capture.GetProperty("stats");
            List<JsonElement> Mine() => [.. batches.Where(b => b.GetProperty("capture").GetProperty("id").GetString() == id)];
            await Eventually.UntilAsync(() => Task.FromResult(Mine().Any(b => b.GetProperty("final").GetBoolean())), () => $"{name}: the final batch on /hubs/lab", 10);
            var mine = Mine();
            var shown = mine.Sum(b => b.GetProperty("packets").GetArrayLength());
            var notShown = mine.Sum(b => b.GetProperty("notShown").GetInt64());
            Assert.Equal(stats.GetProperty("read").GetInt64(), shown + notShown);
            Assert.Equal(stats.GetProperty("read").GetInt64(), stats.GetProperty("capturedByTcpdump").GetInt64());

            // The pcap, fetched from the agent as it is downloaded, holds every packet read, the requests among them.
            var pcap = await admin.GetAsync($"/api/hosts/{name}/captures/{id}/pcap");
            Assert.Equal(HttpStatusCode.OK, pcap.StatusCode);
            Assert.Contains(name, pcap.Content.Headers.ContentDisposition?.FileName ?? "", StringComparison.Ordinal);
            var reader = new PcapStreamReader(new MemoryStream(await pcap.Content.ReadAsByteArrayAsync()));
            var header = await reader.ReadHeaderAsync();
            var records = new List<DecodedPacket>();
            while (await reader.ReadFrameAsync() is { } f)
            {
                records.Add(PacketDecoder.Decode(new PcapRecord(f.Timestamp, f.OriginalLength, f.Data.ToArray()), header!.Value.LinkType));
            }

            Assert.Equal(stats.GetProperty("read").GetInt64(), records.Count);
            Assert.Equal(3, records.Count(p => p.Source == c2Ip && p.Destination == seed.C1Ip && p.Echo is { IsRequest: true }));

            // A trace of c2 → c1 by the host's agent: the deciding step as that engine's kernel saw it.
            var trace = await PostAsync(admin, $"/api/hosts/{name}/traces", new { source = c2Ip, destination = seed.C1Ip, protocol = "icmp" }, HttpStatusCode.Created);
            var traceId = trace.GetProperty("id").GetString()!;
            Assert.StartsWith("netlab:trace-", trace.GetProperty("tag").GetString(), StringComparison.Ordinal);
            Assert.Equal((1, 0), await lab.PingAsync(seed.C2, seed.C1Ip, 1));
            var decided = version.StartsWith("28", StringComparison.Ordinal) ? "raw PREROUTING DROP" : "filter DOCKER-ISOLATION-STAGE-2 DROP";
            JsonElement paths = default;
            await Eventually.UntilAsync(async () =>
            {
                paths = await admin.GetFromJsonAsync<JsonElement>($"/api/hosts/{name}/traces/{traceId}");
                return paths.GetProperty("packets").EnumerateArray().Any(p => p.GetProperty("steps").EnumerateArray()
                    .Any(s => $"{s.GetProperty("table").GetString()} {s.GetProperty("chain").GetString()} {s.GetProperty("verdict").GetString()}" == decided));
            }, () => $"{name}: the traced packet decided by '{decided}': {paths}\n{three.Logs()}", 30);
            Assert.Contains(traced, t => t.GetProperty("trace").GetProperty("id").GetString() == traceId && t.GetProperty("packets").GetArrayLength() > 0);

            var stop = await admin.DeleteAsync($"/api/hosts/{name}/traces/{traceId}");
            Assert.True(stop.IsSuccessStatusCode, $"{name}: stop trace {(int)stop.StatusCode} {await stop.Content.ReadAsStringAsync()}");

            // Nothing left on the engine: no TRACE rule of the agent's, no tcpdump in its namespace.
            await Eventually.UntilAsync(async () => !(await lab.RunAsync("iptables-save")).Contains("netlab:trace-", StringComparison.Ordinal),
                () => $"{name}: the trace's rules to be removed", 20);
            Assert.DoesNotContain(veth, await lab.RunAsync("ps", "-eo", "args"), StringComparison.Ordinal);
            await hub.InvokeAsync("LeaveHost", name);
        }

        // Every start, stop and refusal is audited with its host, and the audit filters by it.
        foreach (var (name, _, _) in three.Hosts)
        {
            var entries = (await admin.GetFromJsonAsync<JsonElement>($"/api/audit?host={name}&pageSize=500")).GetProperty("rows").EnumerateArray().ToList();
            Assert.All(entries, e => Assert.Equal(name, e.GetProperty("host").GetString()));
            int Count(string action) => entries.Count(e => e.GetProperty("action").GetString() == action);
            Assert.Equal((1, 1, 2, 1, 1), (Count("capture.started"), Count("capture.stopped"), Count("capture.refused"), Count("trace.started"), Count("trace.stopped")));
            Assert.Contains(entries, e => e.GetProperty("action").GetString() == "agent.connected");
        }
    }

    [SkippableFact]
    public async Task AnAgentGone_EndsItsCapture_AndTheHostIsLeftClean_AndALabLimitedToOtherHostsMayNotCaptureThere()
    {
        RealHost.Require();
        await using var three = await ThreeAgentHosts.StartAsync();
        var admin = three.Admin;
        const string name = "docker-261";
        var engine = three.Hosts.Single(h => h.Name == name).Engine;
        await using var lab = new LabScope(engine);
        var seed = await lab.CreateSeedLabAsync();
        var veth = await HostVethOfAsync(three, name, seed.C2);

        var started = await PostAsync(admin, $"/api/hosts/{name}/captures", new { @interface = veth }, HttpStatusCode.Created);
        var id = started.GetProperty("id").GetString()!;
        Assert.Contains(veth, await lab.RunAsync("ps", "-eo", "args"), StringComparison.Ordinal);

        three.KillAgent(name);
        JsonElement capture = default;
        await Eventually.UntilAsync(async () =>
        {
            capture = (await admin.GetFromJsonAsync<JsonElement>($"/api/hosts/{name}/captures")).EnumerateArray().Single(c => c.GetProperty("id").GetString() == id);
            return capture.GetProperty("endReason").GetString() != "Running";
        }, () => $"the capture to end with its agent: {capture}", 30);
        Assert.Contains("agent disconnected", capture.GetProperty("endMessage").GetString(), StringComparison.Ordinal);

        // The agent's tcpdump went with it (its process tree); a command to the host meanwhile is a 503 that says why.
        Assert.DoesNotContain(veth, await lab.RunAsync("ps", "-eo", "args"), StringComparison.Ordinal);
        var meanwhile = await admin.PostAsJsonAsync($"/api/hosts/{name}/captures", new { @interface = veth });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, meanwhile.StatusCode);
        Assert.Contains("disconnected", await meanwhile.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // Back: a new agent process knows nothing of the old capture; its pcap went with the old one's data.
        three.StartAgent(name);
        await three.AllConnectedAsync("the agent of docker-261 back");
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync($"/api/hosts/{name}/captures/{id}/pcap")).StatusCode);

        // An Operator whose only lab may use 20.10 alone: a capture on 26.1 is refused, and the refusal audited.
        var limited = await PostAsync(admin, "/api/labs", new { name = "only-2010" }, HttpStatusCode.Created);
        var labId = limited.GetProperty("labId").GetInt32();
        Assert.True((await admin.PutAsJsonAsync($"/api/labs/{labId}/hosts", new { hosts = new[] { "docker-2010" } })).IsSuccessStatusCode);
        var operatorUser = await three.Factory.CreateUserAsync("operator-2010", labId, Dashboard.Data.Entities.LabRole.Operator);
        using var op = new HttpClient { BaseAddress = three.Factory.BaseUri };
        op.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + operatorUser.Token);
        var forbidden = await op.PostAsJsonAsync($"/api/hosts/{name}/captures", new { @interface = veth });
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        Assert.Contains("limited to other hosts", await forbidden.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        await using var scope = three.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        Assert.Equal(1, await db.AuditEntries.CountAsync(a => a.Action == "capture.started-refused" && a.UserId == operatorUser.Id && a.Host == name));
    }
}
