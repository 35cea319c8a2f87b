using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Core.Changes;

namespace Dashboard.Web.Tests.Api;

/// <summary>
/// Prediction against the kernel on three lab networks (plain, --internal, ICC disabled), two containers each:
/// every cell probed by a real ping agrees, before and after ACCEPT rules between the plain and the ICC-less network.
/// </summary>
[Trait("Category", "RealHost")]
public class IsolationRealHostTests
{
    private static JsonElement Cell(JsonElement matrix, string from, string to) =>
        matrix.GetProperty("cells").EnumerateArray().Single(c => c.GetProperty("from").GetString() == from && c.GetProperty("to").GetString() == to);

    [SkippableFact]
    public async Task Matrix_ThreeLabNetworks_PredictionAndProbesAgree_BeforeAndAfterAcceptRules()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        await lab.CreateNetworkAsync("plain");
        await lab.CreateNetworkAsync("internal", "--internal");
        await lab.CreateNetworkAsync("noicc", "-o", "com.docker.network.bridge.enable_icc=false");
        var (plain, internalNet, noIcc) = (lab.Name("plain"), lab.Name("internal"), lab.Name("noicc"));
        foreach (var (net, suffix) in new[] { (plain, "p"), (internalNet, "i"), (noIcc, "n") })
        {
            await lab.RunBusyboxAsync(suffix + "1", net);
            await lab.RunBusyboxAsync(suffix + "2", net);
        }

        using var factory = new DashboardFactory();
        using var http = factory.CreateClient();
        http.Timeout = TimeSpan.FromMinutes(2);
        string[] ours = [plain, internalNet, noIcc];

        async Task<JsonElement> VerifyAsync()
        {
            var response = await http.PostAsJsonAsync("/api/isolation/verify", new { by = "networks", protocol = "icmp" });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            foreach (var v in body.GetProperty("cells").EnumerateArray().Where(c => ours.Contains(c.GetProperty("from").GetString()) && ours.Contains(c.GetProperty("to").GetString())))
            {
                Assert.True(v.GetProperty("agreement").GetString() == "Agreed", $"{v.GetProperty("from")} → {v.GetProperty("to")}: {v}");
            }

            return body;
        }

        var before = await VerifyAsync();
        var m = before.GetProperty("matrix");
        Assert.True(Cell(m, plain, plain).GetProperty("succeeds").GetBoolean());
        Assert.True(Cell(m, internalNet, internalNet).GetProperty("succeeds").GetBoolean());
        Assert.False(Cell(m, noIcc, noIcc).GetProperty("succeeds").GetBoolean());
        Assert.Contains("-j DROP", Cell(m, noIcc, noIcc).GetProperty("decidingRule").GetProperty("rule").GetString(), StringComparison.Ordinal);
        Assert.Contains("DOCKER-ISOLATION-STAGE-1", Cell(m, plain, internalNet).GetProperty("decidingRule").GetProperty("chain").GetString(), StringComparison.Ordinal);
        Assert.Equal("DOCKER-ISOLATION-STAGE-2", Cell(m, plain, noIcc).GetProperty("decidingRule").GetProperty("chain").GetString());

        // What-if first: the proposed pair changes exactly plain → noicc (the reverse needs the second rule).
        var ipamPlain = (await lab.InspectAsync("network", plain)).GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Subnet").GetString()!;
        var ipamNoIcc = (await lab.InspectAsync("network", noIcc)).GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Subnet").GetString()!;
        var whatIf = await http.PostAsJsonAsync("/api/isolation/what-if", new { rule = new { chain = "DOCKER-USER", position = 1, source = ipamPlain, destination = ipamNoIcc, target = "ACCEPT" } });
        Assert.Equal(HttpStatusCode.OK, whatIf.StatusCode);
        var w = await whatIf.Content.ReadFromJsonAsync<JsonElement>();
        var changed = w.GetProperty("changes").EnumerateArray().Select(c => (c.GetProperty("from").GetString(), c.GetProperty("to").GetString())).ToList();
        Assert.Contains((plain, noIcc), changed);
        Assert.Equal("the request is delivered but the reply is dropped", Cell(w.GetProperty("after"), plain, noIcc).GetProperty("outcome").GetString());
        Assert.StartsWith("iptables -w 5 -t filter -I DOCKER-USER 1 -s " + ipamPlain, w.GetProperty("command").GetString(), StringComparison.Ordinal);

        // Both rules stacked in one what-if: the pair opens both ways, as the real rules below then prove.
        var stacked = await http.PostAsJsonAsync("/api/isolation/what-if", new
        {
            rules = new[]
            {
                new { chain = "DOCKER-USER", position = 1, source = ipamPlain, destination = ipamNoIcc, target = "ACCEPT" },
                new { chain = "DOCKER-USER", position = 1, source = ipamNoIcc, destination = ipamPlain, target = "ACCEPT" },
            },
        });
        Assert.Equal(HttpStatusCode.OK, stacked.StatusCode);
        var ws = await stacked.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(Cell(ws.GetProperty("after"), plain, noIcc).GetProperty("succeeds").GetBoolean());
        Assert.True(Cell(ws.GetProperty("after"), noIcc, plain).GetProperty("succeeds").GetBoolean());
        Assert.Equal(2, ws.GetProperty("commands").GetArrayLength());
        Assert.StartsWith("iptables -w 5 -t filter -I DOCKER-USER 1 -s " + ipamNoIcc, ws.GetProperty("commands")[1].GetString(), StringComparison.Ordinal);

        await lab.InsertAsync(new RuleSpec { Chain = "DOCKER-USER", Position = 1, Source = ipamPlain, Destination = ipamNoIcc, Target = "ACCEPT", Tag = lab.Tag });
        await lab.InsertAsync(new RuleSpec { Chain = "DOCKER-USER", Position = 1, Source = ipamNoIcc, Destination = ipamPlain, Target = "ACCEPT", Tag = lab.Tag });
        var after = await VerifyAsync();
        m = after.GetProperty("matrix");
        Assert.True(Cell(m, plain, noIcc).GetProperty("succeeds").GetBoolean());
        Assert.True(Cell(m, noIcc, plain).GetProperty("succeeds").GetBoolean());
        Assert.Equal("DOCKER-USER", Cell(m, plain, noIcc).GetProperty("decidingRule").GetProperty("chain").GetString());
        Assert.False(Cell(m, noIcc, noIcc).GetProperty("succeeds").GetBoolean());
        Assert.False(Cell(m, plain, internalNet).GetProperty("succeeds").GetBoolean());
        var probed = after.GetProperty("cells").EnumerateArray().Count(c => ours.Contains(c.GetProperty("from").GetString()) && ours.Contains(c.GetProperty("to").GetString()));
        Assert.Equal(9, probed);
    }
}
