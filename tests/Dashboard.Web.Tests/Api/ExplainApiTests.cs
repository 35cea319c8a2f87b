using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Dashboard.Web.Tests.Api;

/// <summary><c>POST /api/explain</c> on pasted dumps: no live host involved.</summary>
public sealed class ExplainApiTests : IDisposable
{
    private readonly DashboardFactory _factory = new();
    private readonly HttpClient _client;

    public ExplainApiTests() => _client = _factory.CreateClient();

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> ExplainAsync(object body)
    {
        using var response = await _client.PostAsJsonAsync("/api/explain", body);
        var text = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(text);
        return (response.StatusCode, doc.RootElement.Clone());
    }

    private static object Net2ToNet1(string dump) => new
    {
        ruleset = dump,
        flow = new { inInterface = "br-99a370db15a4", outInterface = "br-5bb1f7c6955f", source = "172.19.0.2", destination = "172.18.0.2", protocol = "icmp" },
    };

    [Fact]
    public async Task Isolated2010Dump_DropByStage2_NoReply()
    {
        var (status, body) = await ExplainAsync(Net2ToNet1(TestPaths.ReadShared("iptables/docker-20.10-two-networks-isolated.save")));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("DROP", body.GetProperty("verdict").GetString());
        var rule = body.GetProperty("decidingRule");
        Assert.Equal(("filter", "DOCKER-ISOLATION-STAGE-2"), (rule.GetProperty("table").GetString(), rule.GetProperty("chain").GetString()));
        Assert.Equal("-A DOCKER-ISOLATION-STAGE-2 -o br-5bb1f7c6955f -j DROP", rule.GetProperty("rule").GetString());
        Assert.True(rule.GetProperty("position").GetInt32() > 0);
        Assert.True(body.GetProperty("path").GetArrayLength() > 3);
        Assert.Equal(JsonValueKind.Null, body.GetProperty("reply").ValueKind);
    }

    [Fact]
    public async Task DockerUserAcceptDump_AcceptBothWays_WithNatSource()
    {
        var request = new
        {
            ruleset = TestPaths.ReadShared("iptables/docker-20.10-two-networks-docker-user-accept.save"),
            flow = new { inInterface = "br-99a370db15a4", outInterface = "br-5bb1f7c6955f", source = "172.19.0.2", destination = "172.18.0.2" },
            interfaceAddresses = new Dictionary<string, string> { ["br-5bb1f7c6955f"] = "172.18.0.1" },
        };
        var (status, body) = await ExplainAsync(request);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("ACCEPT", body.GetProperty("verdict").GetString());
        Assert.Equal("DOCKER-USER", body.GetProperty("decidingRule").GetProperty("chain").GetString());
        Assert.Equal("172.18.0.1", body.GetProperty("natSource").GetString());
        Assert.Equal("ACCEPT", body.GetProperty("reply").GetProperty("verdict").GetString());
        Assert.Equal("delivered and answered", body.GetProperty("outcome").GetString());
    }

    [Fact]
    public async Task NftablesJsonDump_IsExplainedToo()
    {
        var dump = File.ReadAllText(TestPaths.CoreFixture("nft/docker-29-bridge1-published-port.json"));
        var (status, body) = await ExplainAsync(new { ruleset = dump, flow = new { inInterface = "docker0", outInterface = "bridge1", source = "172.17.0.2", destination = "192.0.2.2" } });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("DROP", body.GetProperty("verdict").GetString());
        Assert.Equal("raw-PREROUTING", body.GetProperty("decidingRule").GetProperty("chain").GetString());
    }

    [Theory]
    [InlineData("{\"ruleset\": \"*filter\\n-A NOPE\\n\", \"flow\": {\"source\": \"172.19.0.2\", \"destination\": \"172.18.0.2\"}}", "could not be read")]
    [InlineData("{\"ruleset\": \"*filter\\n:FORWARD DROP [0:0]\\nCOMMIT\\n\", \"flow\": {\"source\": \"1.2.3.4; reboot\", \"destination\": \"172.18.0.2\"}}", "source must be one IPv4 address")]
    [InlineData("{\"ruleset\": \"*filter\\n:FORWARD DROP [0:0]\\nCOMMIT\\n\", \"flow\": {\"source\": \"172.19.0.2\", \"destination\": \"172.18.0.2\", \"inInterface\": \"eth0 -j ACCEPT\"}}", "inInterface must be an interface name")]
    [InlineData("{\"ruleset\": \"*filter\\n:FORWARD DROP [0:0]\\nCOMMIT\\n\", \"flow\": {\"source\": \"172.19.0.2\", \"destination\": \"172.18.0.2\", \"state\": \"RELATED\"}}", "state is NEW or ESTABLISHED")]
    [InlineData("{\"flow\": {}}", "give \\\"ruleset\\\"")]
    [InlineData("not json", "not the expected JSON")]
    public async Task BadInput_IsA400WithAMessage(string json, string message)
    {
        using var response = await _client.PostAsync("/api/explain", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(message, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PolicyOnlyDump_DecidedByThePolicy()
    {
        var (status, body) = await ExplainAsync(new { ruleset = "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n", flow = new { inInterface = "br-a", outInterface = "br-b", source = "172.19.0.2", destination = "172.18.0.2" } });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("DROP", body.GetProperty("verdict").GetString());
        Assert.Equal("policy DROP", body.GetProperty("decidingRule").GetProperty("rule").GetString());
        Assert.Equal(JsonValueKind.Null, body.GetProperty("decidingRule").GetProperty("position").ValueKind);
    }

    [Fact]
    public async Task TooLarge_Is413()
    {
        var big = new string('#', 17 * 1024 * 1024);
        using var response = await _client.PostAsync("/api/explain", new StringContent(big));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }
}
