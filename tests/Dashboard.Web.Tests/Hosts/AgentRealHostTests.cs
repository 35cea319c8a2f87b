using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Core.Firewall;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Hosts;

/// <summary>
/// Three real engines, each with a real agent process: the system's Docker 20.10 (agent in the root namespace, over
/// TCP), and Docker 26.1.5 and 28.5.2 from <c>scripts/lab-engine.sh</c>, their agents started inside each engine's
/// network and mount namespaces (<c>nsenter -t PID -n -m</c>) and reaching the dashboard through its Unix socket.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class AgentRealHostTests
{
    [SkippableFact]
    public async Task ThreeRealEngines_EachWithItsAgent_AreListed_AndTheSeedVariantsArePredictedCountedAndVerifiedOnEach()
    {
        RealHost.Require();
        await using var three = await ThreeAgentHosts.StartAsync();
        var (admin, directory, hosts) = (three.Admin, three.Directory, three.Hosts);
        string Logs() => three.Logs();
        foreach (var (name, engine, version) in hosts)
        {
            await using var lab = new LabScope(engine);
            var seed = await lab.CreateSeedLabAsync();
            var feed = directory.Remote(name)!.Feed;

            // The agent sees the lab with both containers' veths (read inside the engine's own mount namespace).
            await Eventually.UntilAsync(() => Task.FromResult(feed.Topology is { } t
                    && t.Containers.Where(c => c.Name == seed.C1 || c.Name == seed.C2).Count(c => c.Endpoints.Any(e => e.Veth is not null)) == 2
                    && feed.Ruleset?.Rules.Any(r => r.Bridges.Contains(seed.Bridge1)) == true),
                () => $"host {name} to report the seed lab with veths and its rules:\n{Logs()}", 60);

            // The rule that decides c2 → c1: the isolation DROP before 28, the raw direct-access DROP on 28.5.
            var is28 = version.StartsWith("28", StringComparison.Ordinal);
            FirewallRule Raw() => feed.Ruleset!.Rules.Single(r => r.Table == "raw" && r.Chain == "PREROUTING" && r.FindValue("-d") == seed.C1Ip + "/32" && r.Target == "DROP");
            FirewallRule Deciding() => is28 ? Raw()
                : feed.Ruleset!.Rules.Single(r => r.Table == "filter" && r.Chain == "DOCKER-ISOLATION-STAGE-2" && r.FindValue("-o") == seed.Bridge1 && r.Target == "DROP");

            // Isolated, then with the ACCEPT pair at the head of DOCKER-USER (added in the engine's own namespace).
            foreach (var variant in new[] { "isolated", "docker-user" })
            {
                if (variant == "docker-user")
                {
                    var s1 = (await lab.InspectAsync("network", seed.Net1)).GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Subnet").GetString()!;
                    var s2 = (await lab.InspectAsync("network", seed.Net2)).GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Subnet").GetString()!;
                    await lab.InsertAsync(new Dashboard.Core.Changes.RuleSpec { Chain = "DOCKER-USER", Position = 1, Source = s2, Destination = s1, Target = "ACCEPT", Tag = lab.Tag });
                    await lab.InsertAsync(new Dashboard.Core.Changes.RuleSpec { Chain = "DOCKER-USER", Position = 1, Source = s1, Destination = s2, Target = "ACCEPT", Tag = lab.Tag });
                    await Eventually.UntilAsync(() => Task.FromResult(feed.Ruleset!.Rules.Count(r => r.Comment == lab.Tag) == 2),
                        () => $"{name}: the two tagged ACCEPT rules to reach the dashboard through the agent:\n{Logs()}", 20);

                    // The firewall history of the agent's host: Docker's rules for the seed's networks are Docker's (the
                    // engine's activity came through the agent too); the test's tagged ACCEPTs, inserted by hand with a
                    // tag that is not this dashboard instance's, are outside, the tag named.
                    var history = three.Factory.Services.GetRequiredService<Dashboard.App.Firewall.FirewallHistoryQueries>();
                    IReadOnlyList<Dashboard.App.Contracts.FirewallChangeDto> changes = [];
                    await Eventually.UntilAsync(async () =>
                    {
                        changes = (await history.ListAsync(name, new Dashboard.App.Firewall.FirewallHistoryFilter(PageSize: 500))).Changes;
                        return changes.Any(c => c.Cause == "Docker" && c.RuleText?.Contains(seed.Bridge1, StringComparison.Ordinal) == true)
                            && changes.Count(c => c.Cause == "Outside" && c.CauseDetail?.Contains(lab.Tag, StringComparison.Ordinal) == true) == 2;
                    }, () => $"{name}: the history to hold Docker's rules for {seed.Bridge1} and the two tagged rules: {string.Join("; ", changes.Select(c => $"{c.Line} [{c.Cause}]"))}", 20);
                    Assert.DoesNotContain(changes, c => c.Cause != "Docker" && (c.RuleText?.Contains(seed.Bridge1, StringComparison.Ordinal) == true || c.RuleText?.Contains(seed.Bridge2, StringComparison.Ordinal) == true));
                }

                var opens = variant == "docker-user" && !is28;
                var before = feed.CountersOf(Deciding()).Packets;
                var matrix = await admin.GetFromJsonAsync<JsonElement>($"/api/hosts/{name}/isolation?by=containers");
                var cell = matrix.GetProperty("cells").EnumerateArray().Single(c => c.GetProperty("from").GetString() == $"{seed.C2}@{seed.Net2}" && c.GetProperty("to").GetString() == $"{seed.C1}@{seed.Net1}");
                Assert.True(opens == cell.GetProperty("succeeds").GetBoolean(), $"{name} {variant}: the dashboard predicts c2 → c1 {(opens ? "answered" : "blocked")}: {cell}");
                if (!opens)
                {
                    Assert.Equal(Deciding().Table, cell.GetProperty("decidingRule").GetProperty("table").GetString());
                    Assert.Equal(Deciding().Chain, cell.GetProperty("decidingRule").GetProperty("chain").GetString());
                }

                Assert.Equal((3, opens ? 3 : 0), await lab.PingAsync(seed.C2, seed.C1Ip, 3));
                if (!opens)
                {
                    await Eventually.UntilAsync(() => Task.FromResult(feed.CountersOf(Deciding()).Packets >= before + 3),
                        () => $"{name} {variant}: the deciding rule's counter to move by 3 through the agent (from {before}, now {feed.CountersOf(Deciding()).Packets}):\n{Logs()}", 20);
                    await Task.Delay(1000);
                    Assert.Equal(before + 3, feed.CountersOf(Deciding()).Packets);
                }

                // The dashboard's own verification, its pings run by that host's agent, agrees in both directions.
                var verify = await admin.PostAsJsonAsync($"/api/hosts/{name}/isolation/verify", new { by = "containers" });
                var verified = await verify.Content.ReadFromJsonAsync<JsonElement>();
                Assert.True(verify.IsSuccessStatusCode, $"{name} {variant}: verify answered {(int)verify.StatusCode}: {verified}");
                foreach (var (from, to) in new[] { (seed.C2, seed.C1), (seed.C1, seed.C2) })
                {
                    var v = verified.GetProperty("cells").EnumerateArray().Single(c => c.GetProperty("from").GetString()!.StartsWith(from + "@", StringComparison.Ordinal)
                        && c.GetProperty("to").GetString()!.StartsWith(to + "@", StringComparison.Ordinal));
                    Assert.True(v.GetProperty("agreement").GetString() == "Agreed", $"{name} {variant}: {from} → {to} verified by the agent's ping: {v}");
                }
            }
        }
    }
}
