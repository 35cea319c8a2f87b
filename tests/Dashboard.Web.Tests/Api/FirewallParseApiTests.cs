using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Dashboard.Web.Tests.Api;

public sealed class FirewallParseApiTests : IDisposable
{
    private readonly DashboardFactory _factory = new();
    private readonly HttpClient _client;

    public FirewallParseApiTests() => _client = _factory.CreateClient();

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(HttpContent content)
    {
        using var response = await _client.PostAsync("/api/firewall/parse", content);
        var text = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(text);
        return (response.StatusCode, doc.RootElement.Clone());
    }

    [Fact]
    public async Task Parse_Docker2010IsolatedDump_ReturnsTheModelWithCountersAndOwners()
    {
        var (status, body) = await PostAsync(new StringContent(TestPaths.ReadShared("iptables/docker-20.10-two-networks-isolated.save")));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Docker18To27", body.GetProperty("layout").GetProperty("kind").GetString());
        Assert.Equal(47, body.GetProperty("ruleset").GetProperty("ruleCount").GetInt32());
        var stage2 = body.GetProperty("ruleset").GetProperty("tables")[0].GetProperty("chains").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "DOCKER-ISOLATION-STAGE-2");
        var drop = stage2.GetProperty("rules")[3];
        Assert.Equal(3UL, drop.GetProperty("packets").GetUInt64());
        Assert.Equal("Docker", drop.GetProperty("owner").GetString());
        Assert.Equal("br-5bb1f7c6955f", drop.GetProperty("bridges")[0].GetString());
    }

    [Fact]
    public async Task Parse_MultipartUploadOfNftJson_IsRead()
    {
        var json = await File.ReadAllTextAsync(TestPaths.CoreFixture("nft/docker-29-bridge1-published-port.json"));
        using var form = new MultipartFormDataContent();
        var file = new StringContent(json);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        form.Add(file, "dump", "ruleset.json");

        var (status, body) = await PostAsync(form);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Docker29Nftables", body.GetProperty("layout").GetProperty("kind").GetString());
        Assert.Equal("NftJson", body.GetProperty("ruleset").GetProperty("format").GetString());
    }

    [Fact]
    public async Task Parse_TruncatedDump_IsProblemDetailsNamingTheLine()
    {
        var text = string.Join('\n', TestPaths.ReadShared("iptables/docker-17-seed-isolated.save").Split('\n').Take(20));

        var (status, body) = await PostAsync(new StringContent(text));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("The dump could not be read", body.GetProperty("title").GetString());
        Assert.Equal(20, body.GetProperty("line").GetInt32());
        Assert.Contains("not committed", body.GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData("{\"nftables\": [{\"rule\": 5}]}", "item 1 of \"nftables\": \"rule\" is a number, expected an object")]
    [InlineData("{\"nftables\": [{\"table\": {\"family\": \"ip\", \"name\": \"filter\"}}, {\"chain\": {\"family\": \"ip\", \"table\": \"filter\", \"name\": \"FORWARD\", \"prio\": \"high\"}}, {\"rule\": {\"family\": \"ip\", \"table\": \"filter\", \"chain\": \"FORWARD\", \"expr\": [{\"match\": {\"op\": \"==\", \"left\": 5}}]}}]}", "item 3 of \"nftables\" (rule 1 of chain filter FORWARD)")]
    [InlineData("{\"nftables\": [{\"metainfo\": {\"version\": 1.1}}]}", "item 1 of \"nftables\" (metainfo)")]
    public async Task Parse_NftJsonOfTheWrongShape_IsProblemDetailsNamingTheItem(string json, string place)
    {
        var (status, body) = await PostAsync(new StringContent(json, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(place, body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Parse_BinaryNoise_IsRejectedWithAMessage()
    {
        var bytes = new byte[100_000];
        new Random(7).NextBytes(bytes);

        var (status, body) = await PostAsync(new ByteArrayContent(bytes));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.False(string.IsNullOrEmpty(body.GetProperty("detail").GetString()));
    }

    [Fact]
    public async Task Parse_TwentyMegabyteUpload_IsRefusedAsTooLarge()
    {
        var big = new StringBuilder("*filter\n:X - [0:0]\n");
        while (big.Length < 20 * 1024 * 1024)
        {
            big.Append("[0:0] -A X -s 172.18.0.0/16 -d 172.19.0.0/16 -m comment --comment \"padding padding padding\" -j ACCEPT\n");
        }

        var (status, body) = await PostAsync(new StringContent(big.ToString()));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Contains("MiB", body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Parse_EmptyMultipartForm_SaysWhatToSend()
    {
        using var form = new MultipartFormDataContent { { new StringContent("x"), "notafile" } };

        var (status, body) = await PostAsync(form);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("No dump uploaded", body.GetProperty("title").GetString());
    }
}
