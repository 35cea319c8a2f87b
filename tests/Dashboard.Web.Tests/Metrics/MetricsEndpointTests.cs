using System.Net.Http.Json;
using Dashboard.App.Live;
using Dashboard.Core.Firewall;
using Dashboard.Web.Metrics;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Metrics;

/// <summary>/metrics from what the live feed holds: a series per rule with a stable id, the text in an info series, policies, the per-host cap, and series of rules gone removed.</summary>
public sealed class MetricsEndpointTests
{
    private const string Dump = "*filter\n:FORWARD DROP [7:588]\n:DOCKER-ISOLATION-STAGE-2 - [0:0]\n:DOCKER-USER - [0:0]\n"
        + "[11:924] -A FORWARD -j DOCKER-USER\n[3:252] -A DOCKER-ISOLATION-STAGE-2 -o br-aaaaaaaaaaaa -j DROP\n[0:0] -A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP\n"
        + "[5:420] -A DOCKER-USER -s 172.18.0.0/16 -m comment --comment \"netlab:change-main-3\" -j ACCEPT\n[11:924] -A DOCKER-USER -j RETURN\nCOMMIT\n";

    [Fact]
    public async Task EachRule_IsASeriesWithAStableId_PoliciesToo_AndTheCapCountsWhatIsLeftOut()
    {
        using var app = new DashboardFactory(new() { ["Metrics:MaxRulesPerHost"] = "4" });
        var feed = app.Services.GetRequiredService<LiveFeed>();
        var ruleset = IptablesSaveReader.Read(Dump);
        RuleClassifier.Classify(ruleset, null, null);
        feed.FirewallChanged(ruleset, DateTimeOffset.UtcNow);
        var token = (await app.Services.GetRequiredService<ApiTokenService>().CreateAsync(await app.AdminAsync(), "scraper", null, scope: TokenScopes.Metrics)).Token;
        using var http = app.CreateClient(token);

        var text = await http.GetStringAsync("/metrics");
        var drop = ruleset.Rules.Single(r => r.Text.Contains("br-aaaaaaaaaaaa", StringComparison.Ordinal));
        var id = NetlabMetrics.RuleIdOf(drop);
        Assert.Matches("^[0-9a-f]{12}$", id);
        Assert.Contains($"netlab_rule_packets_total{{host=\"{feed.Host}\",family=\"ipv4\",table=\"filter\",chain=\"DOCKER-ISOLATION-STAGE-2\",owner=\"docker\",rule=\"{id}\"}} 3", text, StringComparison.Ordinal);
        Assert.Contains($"netlab_rule_bytes_total{{host=\"{feed.Host}\",family=\"ipv4\",table=\"filter\",chain=\"DOCKER-ISOLATION-STAGE-2\",owner=\"docker\",rule=\"{id}\"}} 252", text, StringComparison.Ordinal);
        Assert.Contains($"rule=\"{id}\",text=\"-A DOCKER-ISOLATION-STAGE-2 -o br-aaaaaaaaaaaa -j DROP\"}} 1", text, StringComparison.Ordinal);
        Assert.Contains("owner=\"dashboard\"", text, StringComparison.Ordinal);
        Assert.Contains($"netlab_chain_policy_packets_total{{host=\"{feed.Host}\",family=\"ipv4\",table=\"filter\",chain=\"FORWARD\",policy=\"DROP\"}} 7", text, StringComparison.Ordinal);
        Assert.Contains($"netlab_rules_exported{{host=\"{feed.Host}\"}} 4", text, StringComparison.Ordinal);
        Assert.Contains($"netlab_rules_left_out{{host=\"{feed.Host}\"}} 1", text, StringComparison.Ordinal);

        // The same rule keeps its id when a rule is inserted above it; a rule gone takes its series with it.
        var moved = IptablesSaveReader.Read(Dump.Replace("[3:252] -A DOCKER-ISOLATION-STAGE-2", "[0:0] -A DOCKER-ISOLATION-STAGE-2 -o br-cccccccccccc -j DROP\n[4:336] -A DOCKER-ISOLATION-STAGE-2", StringComparison.Ordinal)
            .Replace("[0:0] -A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP\n", "", StringComparison.Ordinal));
        RuleClassifier.Classify(moved, null, null);
        feed.FirewallChanged(moved, DateTimeOffset.UtcNow);
        Assert.Equal(id, NetlabMetrics.RuleIdOf(moved.Rules.Single(r => r.Text.Contains("br-aaaaaaaaaaaa", StringComparison.Ordinal))));
        text = await http.GetStringAsync("/metrics");
        Assert.Contains($"rule=\"{id}\"}} 4", text, StringComparison.Ordinal);
        var gone = NetlabMetrics.RuleIdOf(ruleset.Rules.Single(r => r.Text.Contains("docker0", StringComparison.Ordinal)));
        Assert.DoesNotContain(gone, text, StringComparison.Ordinal);

        // Only a site administrator makes a metrics token (refused on the server, audited).
        var vera = await app.CreateUserAsync("vera", 1, Dashboard.Data.Entities.LabRole.Operator);
        using var asVera = app.CreateClient(vera.Token);
        using var refused = await asVera.PostAsJsonAsync("/api/tokens", new { name = "mine", scope = "metrics" });
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, (await asVera.GetAsync("/metrics")).StatusCode);
    }
}
