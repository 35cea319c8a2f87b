using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Agent;
using Dashboard.App.Hosts;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Data;
using Dashboard.Host.Agents;
using Dashboard.Host.Collector;
using Dashboard.Host.Netfilter;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Dashboard.Web.Tests.Hosts;

/// <summary>
/// Agents against the real app on Kestrel (real WebSockets on loopback): the agent's own connection code fed as its
/// collector would feed it, from a real Docker 28.5.2 dump. Registration, what the host pages and API then hold, and
/// every refusal: a wrong, an API and a revoked token, and an agent claiming another host.
/// </summary>
public sealed class AgentHubTests : IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } };

    private readonly DashboardFactory _factory = new(kestrel: true);

    public void Dispose() => _factory.Dispose();

    private HttpClient Client(string? bearer)
    {
        var http = new HttpClient { BaseAddress = _factory.BaseUri };
        if (bearer is not null)
        {
            http.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + bearer);
        }

        return http;
    }

    private HttpClient Admin() => Client(_factory.AdminToken);

    private async Task<string> RegisterAsync(string name)
    {
        using var admin = Admin();
        var response = await admin.PostAsJsonAsync("/api/hosts", new { name });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        var token = body.GetProperty("token").GetString()!;
        Assert.StartsWith(AgentProtocol.TokenPrefix, token, StringComparison.Ordinal);
        Assert.Contains("--token-file", body.GetProperty("agentCommand").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(token, body.GetProperty("agentCommand").GetString(), StringComparison.Ordinal);
        return token;
    }

    private AgentConnection Agent(string token, string? name = null) => new(
        Options.Create(new AgentOptions { Server = _factory.BaseUri.ToString(), Token = token, Name = name, MinBackoff = TimeSpan.FromMilliseconds(100), MaxBackoff = TimeSpan.FromMilliseconds(500) }),
        NullLogger<AgentConnection>.Instance);

    private static readonly string Dump = File.ReadAllText(TestPaths.CoreFixture("iptables/docker-28.5.2-two-networks-published-port.save"));

    /// <summary>The networks of that dump, as an agent's topology reader would report them.</summary>
    private static HostTopology Topology() => new(
        new EngineInfo("28.5.2", "1.51", "1.24", "linux", "6.1.0", "x86_64", FirewallBackend.IptablesNft, "test", "1.8.9", true),
        [Network("net1", "br-7080e7f0b518", "172.28.1.0/24"), Network("net2", "br-b1a2760b727e", "172.28.2.0/24")],
        [Container("c1", "net1", "172.28.1.2"), Container("c2", "net2", "172.28.2.2")],
        [], [], DateTimeOffset.UtcNow, []);

    private static DockerNetwork Network(string name, string bridge, string subnet) =>
        new(name + "-id", name, "bridge", "local", bridge, [new NetworkSubnet(subnet, subnet.Replace("0/24", "1", StringComparison.Ordinal))], false, true, false, null,
            new Dictionary<string, string> { ["com.docker.network.bridge.name"] = bridge }, new Dictionary<string, string>());

    private static DockerContainer Container(string name, string network, string ip) =>
        new(name + "-id", name, "busybox", "running", "Up", 1, null, [new ContainerEndpoint(network + "-id", network, null, ip, 24, null, null, null, null)], new Dictionary<string, string>());

    /// <summary>Feeds the agent as its collector does: status, topology, the parsed dump with its text, one counter move.</summary>
    private static (Ruleset Ruleset, RuleCounterChange Drop) Feed(ICollectorSink sink, string claimedHost = "whatever-the-agent-says")
    {
        var ruleset = IptablesSaveReader.Read(Dump);
        var readAt = DateTimeOffset.UtcNow;
        sink.StatusChanged(CollectorStatus.Starting(claimedHost, 4) with { EngineAvailable = true, FirewallAvailable = true, Backend = FirewallBackend.IptablesNft, LastReadAt = readAt, AchievedRateHz = 4 });
        sink.TopologyChanged(Topology());
        sink.FirewallChanged(ruleset, new FirewallSnapshot(ruleset, readAt, TimeSpan.FromMilliseconds(3), ["iptables-save -c"], []) { RawText = Dump });
        var drop = ruleset.Rules.Single(r => r.Table == "raw" && r.Text.Contains("172.28.1.2/32", StringComparison.Ordinal));
        var moved = new RuleCounterChange(RuleId.Of(drop), drop.Position, drop.Packets + 2, drop.Bytes + 168, 2, 168, false);
        sink.CountersChanged(new CountersUpdate(claimedHost, readAt.AddMilliseconds(250), [moved], []));
        return (ruleset, moved);
    }

    [Fact]
    public async Task RegisteredAgent_ReportsA28Host_ListedWithItsVersionLayoutCountersAndMatrix()
    {
        var token = await RegisterAsync("engine-285");
        using var agent = Agent(token);
        var (ruleset, drop) = Feed(agent);
        await agent.StartAsync(CancellationToken.None);
        using var admin = Admin();

        var host = await Eventually.ValueAsync(async () =>
        {
            var list = await admin.GetFromJsonAsync<JsonElement>("/api/hosts");
            return list.EnumerateArray().Where(h => h.GetProperty("name").GetString() == "engine-285" && h.GetProperty("agent").GetString() == "Connected"
                && h.GetProperty("rules").GetInt32() > 0).Select(h => (JsonElement?)h).FirstOrDefault();
        }, "the agent's host to be listed as connected with its rules");
        Assert.Equal("28.5.2", host.GetProperty("engineVersion").GetString());
        Assert.Equal(AgentProtocol.BuildVersion, host.GetProperty("agentVersion").GetString());
        Assert.Equal(nameof(DockerLayoutKind.Docker28), host.GetProperty("layout").GetString());
        Assert.Equal(ruleset.RuleCount, host.GetProperty("rules").GetInt32());
        Assert.False(host.GetProperty("stale").GetBoolean());

        // The local host is listed first, as itself.
        var all = await admin.GetFromJsonAsync<JsonElement>("/api/hosts");
        Assert.True(all[0].GetProperty("local").GetBoolean());

        // Rules parsed by the dashboard from the agent's text, with the counter that moved after it.
        var firewall = await Eventually.ValueAsync(async () =>
        {
            var f = await admin.GetFromJsonAsync<JsonElement>("/api/hosts/engine-285/firewall");
            var raw = f.GetProperty("ruleset").GetProperty("tables").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "raw");
            var rule = raw.GetProperty("chains").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "PREROUTING").GetProperty("rules").EnumerateArray()
                .Single(r => r.GetProperty("key").GetString() == drop.Id.Key);
            return rule.GetProperty("packets").GetUInt64() == drop.Packets ? (JsonElement?)f : null;
        }, "the moved counter of the raw DROP to reach the host's firewall view");
        Assert.Equal(nameof(DockerLayoutKind.Docker28), firewall.GetProperty("layout").GetProperty("kind").GetString());

        // The matrix computed from that host's rules: c2 → c1 dies in raw PREROUTING on 28.5 (the direct-access DROP).
        var matrix = await admin.GetFromJsonAsync<JsonElement>("/api/hosts/engine-285/isolation?by=containers");
        var cell = matrix.GetProperty("cells").EnumerateArray().Single(c => c.GetProperty("from").GetString() == "c2@net2" && c.GetProperty("to").GetString() == "c1@net1");
        Assert.False(cell.GetProperty("succeeds").GetBoolean());
        Assert.Equal("raw", cell.GetProperty("decidingRule").GetProperty("table").GetString());

        // Everything is recorded under the token's host, whatever the agent's own status said.
        var collector = await admin.GetFromJsonAsync<JsonElement>("/api/hosts/engine-285/collector");
        Assert.Equal("engine-285", collector.GetProperty("host").GetString());

        await using (var scope = _factory.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
            Assert.True(await db.AuditEntries.AnyAsync(a => a.Action == "host.registered" && a.Subject == "host engine-285"));
            Assert.True(await db.AuditEntries.AnyAsync(a => a.Action == "agent.connected" && a.Subject == "host engine-285"));
            var stored = await db.Hosts.SingleAsync(h => h.Name == "engine-285");
            Assert.NotEqual(token, stored.TokenHash);
            Assert.Equal(Dashboard.App.Access.Secrets.Hash(token), stored.TokenHash);
            Assert.Equal("28.5.2", stored.LastEngineVersion);
        }

        await agent.StopAsync(CancellationToken.None);
        var stale = await Eventually.ValueAsync(async () =>
        {
            var h = await admin.GetFromJsonAsync<JsonElement>("/api/hosts/engine-285");
            return h.GetProperty("agent").GetString() == "Disconnected" ? (JsonElement?)h : null;
        }, "the host to be shown disconnected");
        Assert.True(stale.GetProperty("stale").GetBoolean());
        var afterStop = await admin.GetAsync("/api/hosts/engine-285/firewall");
        Assert.Equal("true", afterStop.Headers.GetValues("X-Stale").Single());
    }

    [Fact]
    public async Task ALabHubClientJoiningAnAgentHost_GetsItsCounters_AndTheAgentLearnsItIsWatched()
    {
        var token = await RegisterAsync("engine-285");
        using var agent = Agent(token);
        var (_, drop) = Feed(agent);
        await agent.StartAsync(CancellationToken.None);
        var directory = _factory.Services.GetRequiredService<HostDirectory>();
        await Eventually.UntilAsync(() => directory.Remote("engine-285")?.Feed.Ruleset is not null, "the agent's rules");

        var received = new System.Collections.Concurrent.ConcurrentQueue<JsonElement>();
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(_factory.BaseUri, "hubs/lab"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(_factory.AdminToken))
            .Build();
        hub.On<JsonElement>("CountersChanged", m => received.Enqueue(m));
        await hub.StartAsync();
        var unknown = await Assert.ThrowsAsync<Microsoft.AspNetCore.SignalR.HubException>(() => hub.InvokeAsync("JoinHost", "nobody"));
        Assert.Contains("404", unknown.Message, StringComparison.Ordinal);
        await hub.InvokeAsync("JoinHost", "engine-285");

        // The agent is told someone watches (it then reads up to its duty cap).
        await Eventually.UntilAsync(() => agent.CounterWatchers > 0, "the agent to learn it is watched");

        var moved = drop with { Packets = drop.Packets + 5, Bytes = drop.Bytes + 420, DeltaPackets = 5, DeltaBytes = 420 };
        ((ICollectorSink)agent).CountersChanged(new CountersUpdate("x", DateTimeOffset.UtcNow, [moved], []));
        await Eventually.UntilAsync(() => received.Any(m => m.GetProperty("host").GetString() == "engine-285"
            && m.GetProperty("rules").EnumerateArray().Any(r => r.GetProperty("key").GetString() == drop.Id.Key && r.GetProperty("packets").GetUInt64() == moved.Packets)), "CountersChanged of the agent host on /hubs/lab");

        await hub.InvokeAsync("LeaveHost", "engine-285");
        await Eventually.UntilAsync(() => agent.CounterWatchers == 0, "the agent to learn nobody watches");
        await agent.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task WrongApiAndRevokedTokens_AreRefusedAndAudited_AndARevokedAgentIsCutOff()
    {
        var token = await RegisterAsync("engine-261");
        using var http = Client(null);

        // No token, a made-up one, and the administrator's API token: 401 on the agent hub.
        foreach (var bearer in new string?[] { null, AgentProtocol.TokenPrefix + new string('x', 43), _factory.AdminToken })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/hubs/agent/negotiate?negotiateVersion=1");
            if (bearer is not null)
            {
                request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + bearer);
            }

            Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(request)).StatusCode);
        }

        // An agent token is no API token.
        using (var asApi = new HttpRequestMessage(HttpMethod.Get, "/api/hosts"))
        {
            asApi.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(asApi)).StatusCode);
        }

        using var agent = Agent(token);
        Feed(agent);
        await agent.StartAsync(CancellationToken.None);
        var directory = _factory.Services.GetRequiredService<HostDirectory>();
        await Eventually.UntilAsync(() => directory.Remote("engine-261")?.State == AgentState.Connected, "the agent to connect");

        using var admin = Admin();
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/hosts/engine-261")).StatusCode);
        await Eventually.UntilAsync(() => directory.Remote("engine-261")?.State == AgentState.Disconnected, "the revoked agent to be cut off");

        // It keeps trying (with backoff) and stays out.
        await Task.Delay(1500);
        Assert.Equal(AgentState.Disconnected, directory.Remote("engine-261")!.State);
        await agent.StopAsync(CancellationToken.None);

        await using var scope = _factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        var refused = await db.AuditEntries.Where(a => a.Action == "agent.refused").ToListAsync();
        Assert.NotEmpty(refused);
        Assert.All(refused, a => Assert.False(a.Succeeded));
        Assert.True(await db.AuditEntries.AnyAsync(a => a.Action == "host.revoked" && a.Subject == "host engine-261"));
        Assert.True(await db.AuditEntries.AnyAsync(a => a.Action == "agent.disconnected" && a.Subject == "host engine-261"));
    }

    [Fact]
    public async Task AnAgentClaimingAnotherHost_IsRefused_AndReportsNothing()
    {
        var tokenA = await RegisterAsync("host-a");
        await RegisterAsync("host-b");
        using var agent = Agent(tokenA, name: "host-b");
        Feed(agent, claimedHost: "host-b");
        await agent.StartAsync(CancellationToken.None);
        var directory = _factory.Services.GetRequiredService<HostDirectory>();
        await Eventually.UntilAsync(() => directory.Remote("host-a") is { State: AgentState.Incompatible }, "the refusal");
        var a = directory.Remote("host-a")!;
        Assert.Contains("issued for host 'host-a'", a.LastProblem, StringComparison.Ordinal);
        Assert.Null(directory.Remote("host-b"));
        Assert.Null(a.Feed.Ruleset);
        await agent.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task HostileMessages_AreRefusedWithTheMemberNamed_AndTheHostsListStaysWhole()
    {
        var token = await RegisterAsync("hostile");
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(_factory.BaseUri, AgentProtocol.HubPath), o => o.AccessTokenProvider = () => Task.FromResult<string?>(token))
            .AddJsonProtocol(o => o.PayloadSerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter()))
            .Build();
        await hub.StartAsync();

        // Nothing before hello; hello once.
        var early = await Assert.ThrowsAsync<Microsoft.AspNetCore.SignalR.HubException>(() => hub.InvokeAsync("Status", new { sequence = 0, status = new { } }));
        Assert.Contains("400: say Hello first", early.Message, StringComparison.Ordinal);
        var welcome = await hub.InvokeAsync<AgentWelcome>("Hello", new AgentHello(AgentProtocol.Version, "hostile-1", null));
        Assert.True(welcome.Accepted);
        var again = await Assert.ThrowsAsync<Microsoft.AspNetCore.SignalR.HubException>(() => hub.InvokeAsync<AgentWelcome>("Hello", new AgentHello(AgentProtocol.Version, "x", null)));
        Assert.Contains("409", again.Message, StringComparison.Ordinal);

        // Members missing, an engine without a version, duplicate networks: each refused, naming the member.
        object[] hostile =
        [
            new { sequence = 0 },
            new { sequence = 0, status = CollectorStatus.Starting("x", 4), topology = new { engine = (object?)null, networks = Array.Empty<object>(), containers = Array.Empty<object>(), bridges = Array.Empty<object>(), links = Array.Empty<object>(), readAt = DateTimeOffset.UtcNow, warnings = Array.Empty<string>() } },
            new { sequence = 0, status = CollectorStatus.Starting("x", 4), topology = Topology() with { Networks = [Topology().Networks[0], Topology().Networks[0]] } },
        ];
        foreach (var message in hostile)
        {
            var refused = await Assert.ThrowsAsync<Microsoft.AspNetCore.SignalR.HubException>(() => hub.InvokeAsync("Snapshot", message));
            Assert.Contains("400: ", refused.Message, StringComparison.Ordinal);
        }

        using var admin = Admin();
        var list = await admin.GetAsync("/api/hosts");
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        var host = (await list.Content.ReadFromJsonAsync<JsonElement>()).EnumerateArray().Single(h => h.GetProperty("name").GetString() == "hostile");
        Assert.Equal(0, host.GetProperty("rules").GetInt32());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await admin.GetAsync("/api/hosts/hostile/topology")).StatusCode);
    }

    [Fact]
    public async Task Registration_RefusesBadNamesDuplicatesTheLocalNameAndNonAdministrators()
    {
        using var admin = Admin();
        var bad = await admin.PostAsJsonAsync("/api/hosts", new { name = "Bad Name!" });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("name:", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PostAsJsonAsync("/api/hosts", new { })).StatusCode);
        await RegisterAsync("twice");
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsJsonAsync("/api/hosts", new { name = "twice" })).StatusCode);
        var local = _factory.Services.GetRequiredService<Dashboard.App.Live.LiveFeed>().Host.ToLowerInvariant();
        if (HostRegistry.IsValidName(local))
        {
            Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsJsonAsync("/api/hosts", new { name = local })).StatusCode);
        }

        var user = await _factory.CreateUserAsync("viewer1");
        using var viewer = Client(user.Token);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsJsonAsync("/api/hosts", new { name = "mine" })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.DeleteAsync("/api/hosts/twice")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync("/api/hosts")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await viewer.GetAsync("/api/hosts/nobody/firewall")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.DeleteAsync("/api/hosts/nobody")).StatusCode);

        await using var scope = _factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        Assert.True(await db.AuditEntries.AnyAsync(a => a.Action == "host.register" && !a.Succeeded));
    }
}
