using System.Net;
using System.Net.Sockets;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Host.Processes;

namespace Dashboard.Web.Tests.Api;

/// <summary>The built-in seed experiment run for real, isolated and with DOCKER-USER ACCEPT rules, recorded and compared.</summary>
[Trait("Category", "RealHost")]
public class RunRealHostTests
{
    private static async Task<JsonElement> WaitForEndAsync(HttpClient http, Guid id)
    {
        for (var i = 0; i < 240; i++)
        {
            var run = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}");
            if (run.GetProperty("summary").GetProperty("status").GetString() != "Running")
            {
                return run;
            }

            await Task.Delay(250);
        }

        var last = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}");
        throw new Xunit.Sdk.XunitException($"run {id} did not end within 60 s; it is at '{last.GetProperty("lastStep")}'");
    }

    private static async Task<Guid> SeedExperimentAsync(HttpClient http)
    {
        var experiments = await http.GetFromJsonAsync<JsonElement>("/api/experiments");
        return experiments.EnumerateArray().Single(e => e.GetProperty("builtIn").GetBoolean()).GetProperty("id").GetGuid();
    }

    private static async Task<Guid> StartAsync(HttpClient http, Guid experiment, string variant)
    {
        var response = await http.PostAsJsonAsync("/api/runs", new { experimentId = experiment, variant });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private static async Task AssertHostCleanAsync(params Guid[] runs)
    {
        var runner = new ProcessRunner();
        foreach (var id in runs)
        {
            var containers = await runner.RunAsync("docker", ["ps", "-aq", "--filter", $"label=netlab.run={id:N}"], TimeSpan.FromSeconds(20));
            var networks = await runner.RunAsync("docker", ["network", "ls", "-q", "--filter", $"label=netlab.run={id:N}"], TimeSpan.FromSeconds(20));
            Assert.Equal("", containers.StdOut.Trim());
            Assert.Equal("", networks.StdOut.Trim());
        }

        Assert.DoesNotContain("netlab:run-", (await runner.RunAsync("iptables-save", [], TimeSpan.FromSeconds(20))).StdOut, StringComparison.Ordinal);
    }

    /// <summary>
    /// Once the run's captures are on, the host makes the chatter a fresh machine's bridges make: it joins a multicast
    /// group on each of the run's gateways (the kernel sends IGMP membership reports from the gateway onto the bridge)
    /// and sends an mDNS query from each gateway. Link-local multicast: it stays on the run's own bridges.
    /// </summary>
    private static async Task<List<Socket>> MakeBridgesNoisyAsync(HttpClient http, Guid run)
    {
        for (var i = 0; i < 400; i++)
        {
            var p = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{run}/progress");
            if (p.GetProperty("step").GetString()!.StartsWith("probe ", StringComparison.Ordinal))
            {
                break;
            }

            await Task.Delay(25);
        }

        var runner = new ProcessRunner();
        var ids = (await runner.RunAsync("docker", ["network", "ls", "-q", "--filter", $"label=netlab.run={run:N}"], TimeSpan.FromSeconds(20))).StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var sockets = new List<Socket>();
        foreach (var id in ids)
        {
            var gateway = IPAddress.Parse((await runner.RunAsync("docker", ["network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", id], TimeSpan.FromSeconds(20))).StdOut.Trim());
            Assert.True(gateway.GetAddressBytes() is [172, >= 16 and <= 31, _, _], $"lab gateway {gateway} outside 172.16.0.0/12");
            var member = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            member.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.AddMembership, new MulticastOption(IPAddress.Parse("239.255.77.1"), gateway));
            var mdns = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            mdns.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastInterface, gateway.GetAddressBytes());
            mdns.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastTimeToLive, 1);
            mdns.Bind(new IPEndPoint(gateway, 0));
            await mdns.SendToAsync(Convert.FromHexString("000000000001000000000000046c616273056c6f63616c0000010001"), new IPEndPoint(IPAddress.Parse("224.0.0.251"), 5353));
            sockets.AddRange([member, mdns]);
        }

        return sockets;
    }

    private static async Task<JsonElement> RunNoisyAsync(HttpClient http, Guid experiment, string variant)
    {
        var id = await StartAsync(http, experiment, variant);
        var sockets = await MakeBridgesNoisyAsync(http, id);
        try
        {
            return await WaitForEndAsync(http, id);
        }
        finally
        {
            sockets.ForEach(s => s.Dispose());
        }
    }

    [SkippableFact]
    public async Task AVariantForAChainThisDockerDoesNotHave_SaysSo_AndCreatesNothing()
    {
        RealHost.Require();
        using var factory = new DashboardFactory();
        using var http = factory.CreateClient();

        // DOCKER-ISOLATION is the chain of Docker before 17.06; this host's Docker has the two isolation stages instead.
        var scenario = Dashboard.Core.Experiments.ScenarioDefinition.Seed with
        {
            Variants = [new Dashboard.Core.Experiments.ScenarioVariant("old-docker", [new Dashboard.Core.Experiments.ScenarioRule("DOCKER-ISOLATION", 1, "net:net2")], "the pre-17.06 chain")],
        };
        var created = await http.PostAsJsonAsync("/api/experiments", new { name = "for an older Docker", scenario = JsonSerializer.Deserialize<JsonElement>(scenario.ToJson()) });
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        var id = await StartAsync(http, (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid(), "old-docker");

        var run = await WaitForEndAsync(http, id);
        var summary = run.GetProperty("summary");
        Assert.Equal("Failed", summary.GetProperty("status").GetString());
        Assert.Contains("cannot apply to host", summary.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Contains("no chain DOCKER-ISOLATION in table filter; nothing was created", summary.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal("checking the variant's chains on the host", run.GetProperty("lastStep").GetString());
        Assert.False(string.IsNullOrEmpty(run.GetProperty("engineVersion").GetString()));
        Assert.DoesNotContain("image", run.GetProperty("artifacts").EnumerateArray().Select(a => a.GetString()));
        await AssertHostCleanAsync(id);
    }

    [SkippableFact]
    public async Task SeedExperiment_IsolatedVersusDockerUser_RecordedAndCompared()
    {
        RealHost.Require();
        using var factory = new DashboardFactory();
        using var http = factory.CreateClient();
        var experiment = await SeedExperimentAsync(http);

        var runA = await RunNoisyAsync(http, experiment, "isolated");
        var a = runA.GetProperty("summary").GetProperty("id").GetGuid();
        var runB = await RunNoisyAsync(http, experiment, "docker-user");
        var b = runB.GetProperty("summary").GetProperty("id").GetGuid();

        Assert.Equal("Succeeded", runA.GetProperty("summary").GetProperty("status").GetString());
        Assert.Equal("Succeeded", runB.GetProperty("summary").GetProperty("status").GetString());
        Assert.Equal("0 of 3 replies", runA.GetProperty("summary").GetProperty("outcome").GetString());
        Assert.Equal("3 of 3 replies", runB.GetProperty("summary").GetProperty("outcome").GetString());
        Assert.False(runA.GetProperty("probes")[0].GetProperty("predicted").GetBoolean());
        Assert.True(runB.GetProperty("probes")[0].GetProperty("predicted").GetBoolean());

        // The DROP rule counted the three requests in A; in B the two ACCEPT rules were added and each counted three.
        var dropA = runA.GetProperty("deltas").EnumerateArray().Single(d => d.GetProperty("chain").GetString() == "DOCKER-ISOLATION-STAGE-2" && d.GetProperty("deltaPackets").GetInt64() > 0);
        Assert.Equal(3, dropA.GetProperty("deltaPackets").GetInt64());
        var accepts = runB.GetProperty("deltas").EnumerateArray().Where(d => d.GetProperty("chain").GetString() == "DOCKER-USER" && d.GetProperty("change").GetString() == "added").ToList();
        Assert.Equal(2, accepts.Count);
        Assert.All(accepts, d => Assert.Equal(3, d.GetProperty("deltaPackets").GetInt64()));
        Assert.DoesNotContain(runB.GetProperty("deltas").EnumerateArray(), d => d.GetProperty("chain").GetString() == "DOCKER-ISOLATION-STAGE-2" && d.GetProperty("deltaPackets").GetInt64() > 0);
        Assert.Equal(2, runB.GetProperty("captures").GetArrayLength());

        // Kept with each run: the predicted matrix between its networks, and the traced paths of the first probe's flow.
        var matrixA = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{a}/artifacts/matrix");
        Assert.Contains(matrixA.GetProperty("cells").EnumerateArray(), c => c.GetProperty("from").GetString() == "net2" && c.GetProperty("to").GetString() == "net1" && !c.GetProperty("succeeds").GetBoolean());
        var tracesA = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{a}/artifacts/traces");
        var tracesB = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{b}/artifacts/traces");
        static IEnumerable<string> Decisions(JsonElement t) => t.GetProperty("packets").EnumerateArray()
            .SelectMany(p => p.GetProperty("steps").EnumerateArray().Where(s => s.GetProperty("table").GetString() == "filter" && s.GetProperty("verdict").GetString() is "DROP" or "ACCEPT"))
            .Select(s => $"{s.GetProperty("chain").GetString()} {s.GetProperty("verdict").GetString()}");
        Assert.Contains("DOCKER-ISOLATION-STAGE-2 DROP", Decisions(tracesA));
        Assert.Contains("DOCKER-USER ACCEPT", Decisions(tracesB));

        // The comparison shows exactly those differences, with each run's names replaced by the scenario's.
        var cmp = await http.GetFromJsonAsync<JsonElement>($"/api/runs/compare?a={a}&b={b}");
        var probe = cmp.GetProperty("probes")[0];
        Assert.Equal((0, 3), (probe.GetProperty("a").GetProperty("received").GetInt32(), probe.GetProperty("b").GetProperty("received").GetInt32()));
        var onlyB = cmp.GetProperty("rulesOnlyInB").EnumerateArray().Select(r => r.GetString()).ToList();
        Assert.Contains("-A DOCKER-USER -s {net2.subnet} -d {net1.subnet} -m comment --comment \"netlab:run\" -j ACCEPT", onlyB);
        Assert.Contains("-A DOCKER-USER -s {net1.subnet} -d {net2.subnet} -m comment --comment \"netlab:run\" -j ACCEPT", onlyB);
        Assert.Empty(cmp.GetProperty("rulesOnlyInA").EnumerateArray());
        var drop = cmp.GetProperty("rules").EnumerateArray().Single(r => r.GetProperty("rule").GetString() == "-A DOCKER-ISOLATION-STAGE-2 -o {net1} -j DROP");
        Assert.Equal(3, drop.GetProperty("deltaA").GetInt64());
        Assert.True(drop.GetProperty("deltaB").ValueKind == JsonValueKind.Null || drop.GetProperty("deltaB").GetInt64() == 0);
        // NAT from the probe's own flow only: the gateways' IGMP reports and mDNS queries are other traffic, never NAT.
        Assert.Empty(cmp.GetProperty("natA").EnumerateArray());
        Assert.Equal(["on net1: ping c2 → c1, echo request: source {c2} → {net1.gateway} (gateway of net1), source NAT, 3 packets"],
            cmp.GetProperty("natB").EnumerateArray().Select(n => n.GetString()));
        static Dictionary<(string?, string?), int> Other(JsonElement list) => list.EnumerateArray()
            .ToDictionary(o => (o.GetProperty("network").GetString(), o.GetProperty("kind").GetString()), o => o.GetProperty("packets").GetInt32());
        var otherA = Other(cmp.GetProperty("otherA"));
        Assert.True(otherA.GetValueOrDefault(("net1", "IGMP")) > 0, "the isolated run captured no IGMP report from net1's gateway: " + cmp.GetProperty("otherA"));
        Assert.True(otherA.GetValueOrDefault(("net1", "mDNS")) > 0, "the isolated run captured no mDNS query from net1's gateway: " + cmp.GetProperty("otherA"));
        Assert.True(Other(cmp.GetProperty("otherB")).GetValueOrDefault(("net1", "IGMP")) > 0);

        // Requests and replies told from decoded fields: B's reply crossed net1, A's requests never reached it.
        static IEnumerable<JsonElement> Flow(JsonElement timeline, string network, string direction) => timeline.EnumerateArray()
            .Where(p => p.GetProperty("network").GetString() == network && p.GetProperty("probe").ValueKind == JsonValueKind.Number && p.GetProperty("direction").GetString() == direction);
        Assert.Equal(3, Flow(cmp.GetProperty("timelineB"), "net1", "Reply").Count());
        Assert.Empty(Flow(cmp.GetProperty("timelineA"), "net1", "Request"));
        Assert.Empty(Flow(cmp.GetProperty("timelineA"), "net1", "Reply"));
        Assert.Equal(3, Flow(cmp.GetProperty("timelineA"), "net2", "Request").Count());
        Assert.All(Flow(cmp.GetProperty("timelineA"), "net2", "Request"), p => Assert.StartsWith("IP {c2} > {c1}: ICMP echo request", p.GetProperty("summary").GetString(), StringComparison.Ordinal));

        // Each run's end is audited with what it got.
        foreach (var (id, got) in new[] { (a, "0 of 3 probe replies"), (b, "3 of 3 probe replies") })
        {
            var finished = (await http.GetFromJsonAsync<JsonElement>($"/api/audit?action=run.finished&text=run {id}")).GetProperty("rows").EnumerateArray().Single();
            Assert.Contains("ended succeeded after ", finished.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.Contains(got, finished.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.True(finished.GetProperty("succeeded").GetBoolean());
        }

        // History: both listed, newest first, filtered by variant.
        var page = await http.GetFromJsonAsync<JsonElement>($"/api/runs?experiment={experiment}&variant=docker-user");
        Assert.Equal(b, page.GetProperty("items")[0].GetProperty("id").GetGuid());
        Assert.Equal(1, page.GetProperty("total").GetInt32());

        await AssertHostCleanAsync(a, b);
    }

    [SkippableFact]
    public async Task OwnScenario_TcpAndPingProbesOnOneNetwork_RunForReal_AndBadScenariosAreRefused()
    {
        RealHost.Require();
        using var factory = new DashboardFactory();
        using var http = factory.CreateClient();
        var bad = await http.PostAsJsonAsync("/api/experiments", new { name = "bad", scenario = new { networks = new[] { new { name = "n" } }, containers = new[] { new { name = "a", network = "nowhere" } }, probes = Array.Empty<object>(), variants = new[] { new { name = "plain", rules = Array.Empty<object>() } }, captures = new[] { "n" } } });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("network nowhere is not in the scenario", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var scenario = new
        {
            networks = new[] { new { name = "n", @internal = false, icc = true } },
            containers = new[] { new { name = "a", network = "n" }, new { name = "b", network = "n" } },
            probes = new object[] { new { kind = "tcp", from = "a", to = "b", count = 2, timeoutSeconds = 1, port = 8080 }, new { kind = "ping", from = "a", to = "b", count = 1, timeoutSeconds = 1 } },
            variants = new[] { new { name = "plain", rules = Array.Empty<object>() } },
            captures = new[] { "n" },
            trace = false,
        };
        var created = await http.PostAsJsonAsync("/api/experiments", new { name = "tcp on one network", scenario });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var experiment = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        var id = await StartAsync(http, experiment, "plain");
        var run = await WaitForEndAsync(http, id);
        Assert.Equal("Succeeded", run.GetProperty("summary").GetProperty("status").GetString());
        var tcp = run.GetProperty("probes")[0];
        Assert.Equal(("tcp", 2, 2), (tcp.GetProperty("kind").GetString(), tcp.GetProperty("sent").GetInt32(), tcp.GetProperty("received").GetInt32()));
        Assert.True(tcp.GetProperty("predicted").GetBoolean());
        Assert.Equal(1, run.GetProperty("probes")[1].GetProperty("received").GetInt32());
        Assert.True(run.GetProperty("summary").GetProperty("probesReceived").GetInt32() == 3);
        await AssertHostCleanAsync(id);
    }

    [SkippableFact]
    public async Task RunQueueFull_NextStartAnswers429AtOnce_WithRetryAfter()
    {
        RealHost.Require();
        using var factory = new DashboardFactory(new() { ["Runs:QueueCapacity"] = "1" });
        using var http = factory.CreateClient();
        var experiment = await SeedExperimentAsync(http);

        // One run executing, one waiting: the queue holds one, so a third is refused without waiting.
        var running = await StartAsync(http, experiment, "isolated");
        for (var i = 0; i < 200 && (await http.GetFromJsonAsync<JsonElement>($"/api/runs/{running}/progress")).GetProperty("step").GetString() == "queued"; i++)
        {
            await Task.Delay(25);
        }

        var waiting = await StartAsync(http, experiment, "isolated");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var refused = await http.PostAsJsonAsync("/api/runs", new { experimentId = experiment, variant = "isolated" });
        watch.Stop();

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("30", refused.Headers.GetValues("Retry-After").Single());
        Assert.Contains("runs are already waiting", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"answered after {watch.Elapsed.TotalMilliseconds:0} ms");
        foreach (var id in new[] { running, waiting })
        {
            await http.PostAsync($"/api/runs/{id}/cancel", null);
            await WaitForEndAsync(http, id);
        }

        await AssertHostCleanAsync(running, waiting);
    }

    [SkippableFact]
    public async Task RunCancelledMidWay_IsRecordedAsCancelled_AndLeavesNothing()
    {
        RealHost.Require();
        using var factory = new DashboardFactory();
        using var http = factory.CreateClient();
        var experiment = await SeedExperimentAsync(http);
        var id = await StartAsync(http, experiment, "docker-user");
        for (var i = 0; i < 100; i++)
        {
            var p = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/progress");
            if (p.GetProperty("step").GetString()!.StartsWith("starting", StringComparison.Ordinal) || p.GetProperty("step").GetString()!.StartsWith("reading", StringComparison.Ordinal))
            {
                break;
            }

            await Task.Delay(50);
        }

        Assert.Equal(HttpStatusCode.Accepted, (await http.PostAsync($"/api/runs/{id}/cancel", null)).StatusCode);
        var run = await WaitForEndAsync(http, id);
        Assert.Equal("Cancelled", run.GetProperty("summary").GetProperty("status").GetString());
        Assert.StartsWith("cancelled at", run.GetProperty("summary").GetProperty("error").GetString(), StringComparison.Ordinal);
        await AssertHostCleanAsync(id);
    }
}
