using System.Net;
using System.Net.Http.Json;
using System.Text;

namespace Dashboard.Web.Tests.Api;

/// <summary>
/// The API's bad-input contract: damaged dumps (the readers' mutation corpus and the fuzzer's) sent through <c>POST /api/firewall/parse</c>
/// and <c>POST /api/explain</c> are read or answered 400 naming the place; none gets a 5xx.
/// </summary>
public sealed class BadInputContractTests : IDisposable
{
    // Hundreds of calls: the expensive-call budget of one client is raised for this factory only.
    private readonly DashboardFactory _factory = new(new Dictionary<string, string?> { ["RateLimits:ExpensiveBurst"] = "100000", ["RateLimits:ExpensivePerMinute"] = "6000000" });
    private readonly HttpClient _client;

    public BadInputContractTests() => _client = _factory.CreateClient();

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
    }

    private static IEnumerable<string> Corpus()
    {
        var nft = File.ReadAllText(TestPaths.CoreFixture("nft/docker-29-bridge1-published-port.json"));
        foreach (var doc in MalformedCorpus.NftMutations(nft, step: 7))
        {
            yield return doc;
        }

        foreach (var (_, text) in MalformedCorpus.IptablesMutations(TestPaths.ReadShared("iptables/docker-20.10-two-networks-isolated.save")).Where((_, i) => i % 3 == 0))
        {
            yield return text;
        }

        // What AFL++ kept while fuzzing the readers (scripts/fuzz.sh).
        foreach (var (_, _, text) in MalformedCorpus.FuzzCorpus())
        {
            yield return text;
        }
    }

    [Fact]
    public async Task TheMutationCorpus_ThroughParseAndExplain_NeverAnswers5xx()
    {
        var statuses = new Dictionary<(string, HttpStatusCode), int>();
        var sent = 0;
        foreach (var dump in Corpus())
        {
            sent++;
            using var parse = await _client.PostAsync("/api/firewall/parse", new StringContent(dump, Encoding.UTF8, "text/plain"));
            using var explain = await _client.PostAsJsonAsync("/api/explain", new { ruleset = dump, flow = new { inInterface = "br-99a370db15a4", outInterface = "br-5bb1f7c6955f", source = "172.19.0.2", destination = "172.18.0.2", protocol = "icmp" } });
            foreach (var (name, response) in new[] { ("parse", parse), ("explain", explain) })
            {
                var key = (name, response.StatusCode);
                statuses[key] = statuses.GetValueOrDefault(key) + 1;
                if ((int)response.StatusCode >= 500)
                {
                    Assert.Fail($"{name} answered {(int)response.StatusCode} for a damaged dump: {await response.Content.ReadAsStringAsync()}");
                }

                if (response.StatusCode == HttpStatusCode.BadRequest)
                {
                    Assert.Contains("detail", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
                }
            }
        }

        Assert.True(sent > 500, $"{sent} dumps");
        Assert.True(statuses.GetValueOrDefault(("parse", HttpStatusCode.BadRequest)) > 50, string.Join(", ", statuses.Select(s => $"{s.Key}: {s.Value}")));
        Assert.True(statuses.GetValueOrDefault(("explain", HttpStatusCode.BadRequest)) > 50, string.Join(", ", statuses.Select(s => $"{s.Key}: {s.Value}")));
        Assert.Equal(0, statuses.Where(s => s.Key.Item2 is HttpStatusCode.Unauthorized or HttpStatusCode.TooManyRequests).Sum(s => s.Value));
    }

    [Fact]
    public async Task AWhatIfOfSeveralRules_NamesTheBadRule_AndRefusesTooManyOrBoth()
    {
        var good = new { chain = "DOCKER-USER", position = 1, source = "172.18.0.0/16", target = "ACCEPT" };
        var bad = new { chain = "DOCKER-USER", position = 1, source = "172.18.0.0/99", target = "ACCEPT" };

        using var second = await _client.PostAsJsonAsync("/api/isolation/what-if", new { rules = new object[] { good, bad } });
        Assert.Equal(HttpStatusCode.BadRequest, second.StatusCode);
        var text = await second.Content.ReadAsStringAsync();
        Assert.Contains("rules[1].Source", text, StringComparison.Ordinal);

        using var both = await _client.PostAsJsonAsync("/api/isolation/what-if", new { rule = good, rules = new object[] { good } });
        Assert.Equal(HttpStatusCode.BadRequest, both.StatusCode);
        Assert.Contains("not both", await both.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var many = await _client.PostAsJsonAsync("/api/isolation/what-if", new { rules = Enumerable.Repeat<object>(good, 21).ToArray() });
        Assert.Equal(HttpStatusCode.BadRequest, many.StatusCode);
        Assert.Contains("at most 20 rules", await many.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var nulls = await _client.PostAsJsonAsync("/api/isolation/what-if", new { rules = new object?[] { good, null } });
        Assert.Equal(HttpStatusCode.BadRequest, nulls.StatusCode);
        Assert.Contains("rules[1]", await nulls.Content.ReadAsStringAsync(), StringComparison.Ordinal);

    }

    [Fact]
    public async Task AHugeJsonBody_IsRefusedAt64KiB_BeforeAnyOfItIsMadeIntoObjects()
    {
        // Kestrel enforces the endpoint's size limit (the in-memory test server does not): a real server here.
        using var factory = new DashboardFactory(kestrel: true);
        using var client = new HttpClient { BaseAddress = factory.BaseUri };
        client.DefaultRequestHeaders.Authorization = new("Bearer", factory.AdminToken);

        // A million empty rules would be a million objects: 413 at 64 KiB instead, the same for a chunked body.
        var huge = "{\"rules\":[" + string.Join(',', Enumerable.Repeat("{}", 1_000_000)) + "]}";
        using var flood = await client.PostAsync("/api/isolation/what-if", new StringContent(huge, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, flood.StatusCode);
        using var chunked = new StreamContent(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(huge)));
        chunked.Headers.ContentType = new("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/isolation/what-if") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        using var flood2 = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, flood2.StatusCode);
        using var change = await client.PostAsync("/api/changes", new StringContent("{\"rationale\":\"" + new string('a', 100_000) + "\"}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, change.StatusCode);

        // A form-sized body still goes through.
        using var fine = await client.PostAsJsonAsync("/api/isolation/what-if", new { rules = new object[] { new { chain = "DOCKER-USER", position = 1, source = "172.18.0.0/99", target = "ACCEPT" } } });
        Assert.Equal(HttpStatusCode.BadRequest, fine.StatusCode);
    }
}
