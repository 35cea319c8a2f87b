using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dashboard.E2E.Tests.Pages;
using Dashboard.Host.Netfilter;
using Dashboard.Host.Processes;
using Dashboard.TestSupport;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Dashboard.E2E.Tests;

/// <summary>
/// A team's installation as deployed: two dashboard processes (replicas A and B) on one PostgreSQL database and one
/// Redis, behind nginx running deploy/nginx/netlab.conf as shipped (only its ports changed). Two browsers, each kept on
/// one replica by nginx's stickiness cookie: Alice's on A proposes a change, Bob's on B approves it (B applies it to the
/// host) and Alice's page follows live; Alice starts a run on A's page, Bob's page on B shows its progress; A is killed
/// with SIGKILL mid-run: B takes the singleton duties within 30 s, Bob's page shows the run Interrupted without a reload,
/// what the run made is gone from the host, and Alice's browser, sent to B by nginx, is still signed in and finds
/// everything (the change applied, the run interrupted).
/// </summary>
[Trait("Category", "RealHost")]
[Trait("Category", "E2E")]
public sealed class ReplicasTests(ITestOutputHelper output)
{
    private static readonly LocatorAssertionsToBeVisibleOptions Visible = new() { Timeout = 15_000 };

    [SkippableFact]
    public async Task BehindNginx_ProposeOnA_ApproveOnB_RunOnAFollowedOnB_AKilled_BTakesOverAndNothingIsLost()
    {
        RealHost.Require();
        PostgresServer.Require();
        var redis = RedisServer.Require();
        NginxProxy.Require();
        Assert.True(File.Exists(AppProcess.ReleaseDll), $"build the solution in Release first ({AppProcess.ReleaseDll})");
        var work = Directory.CreateTempSubdirectory("netlab-e2e-replicas-").FullName;
        var instance = "e" + Guid.NewGuid().ToString("N")[..8];
        var connection = await PostgresServer.CreateDatabaseAsync("netlab_e2e_replicas");
        var (portA, portB) = (AppProcess.FreePort(), AppProcess.FreePort());
        using var a = AppProcess.Client(portA);
        using var b = AppProcess.Client(portB);
        var runner = new ProcessRunner();
        Guid run = default;
        Process? appA = null, appB = null;
        IPage? alicePage = null, bobPage = null;
        await using var lab = new LabScope();
        try
        {
            // A first, so it holds the duties (the run queue, reconciliation); then B, which waits for them.
            appA = AppProcess.StartReplica(portA, work, instance, connection, "replica-a", redis);
            await Eventually.UntilAsync(async () => (await AppProcess.ReplicaAsync(a)).GetProperty("holdsDuties").GetBoolean(), () => "replica A to hold the duties", 60);
            appB = AppProcess.StartReplica(portB, work, instance, connection, "replica-b", redis);
            Assert.Equal("replica-a", (await AppProcess.ReplicaAsync(b)).GetProperty("holder").GetString());
            using var nginx = await NginxProxy.StartAsync(portA, portB);
            using var front = AppProcess.Client(nginx.Port);

            foreach (var (name, role) in new[] { ("alice", "Operator"), ("bob", "Approver") })
            {
                var created = await front.PostAsJsonAsync("/api/users", new { userName = name, password = DashboardFactory.AdminPassword, administrator = false });
                Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
                var member = await front.PutAsJsonAsync("/api/labs/1/members", new { userName = name, role });
                Assert.True(member.IsSuccessStatusCode, await member.Content.ReadAsStringAsync());
            }

            // nginx places each browser by its netlab_lb cookie: find a value it sends to A and one it sends to B.
            var aliceCookie = await NginxProxy.StickyCookieForAsync(front, "replica-a");
            var bobCookie = await NginxProxy.StickyCookieForAsync(front, "replica-b");
            output.WriteLine($"netlab_lb={aliceCookie} → replica-a, netlab_lb={bobCookie} → replica-b");

            var seed = await lab.CreateSeedLabAsync();
            await using var browser = await BrowserSession.StartAsync();
            alicePage = await browser.NewPageAsync(nginx.BaseUri, "alice", cookies: new Dictionary<string, string> { [NginxProxy.StickyCookie] = aliceCookie });
            bobPage = await browser.NewPageAsync(nginx.BaseUri, "bob", cookies: new Dictionary<string, string> { [NginxProxy.StickyCookie] = bobCookie });

            // Alice (on A) proposes; Bob (on B) approves; B applies it; Alice's page on A follows without a reload.
            var alice = new ChangesPage(alicePage);
            await alice.OpenAsync("changes");
            await alice.ProposeAsync(seed.Bridge2, seed.Bridge1, "c2 on net2 must reach c1 on net1, proposed on replica A");
            await Assertions.Expect(alice.State(1)).ToHaveAttributeAsync("data-state", "Proposed", new() { Timeout = 15_000 });
            var bob = new ChangesPage(bobPage);
            await bob.OpenAsync("changes");
            await bob.Row(1).ClickAsync();
            await Assertions.Expect(bob.Review.Locator("[data-testid='change-command']")).ToContainTextAsync($"--comment netlab:change-{instance}-1 -j ACCEPT", new() { Timeout = 15_000 });
            await bob.Review.Locator("[data-testid='approve']").ClickAsync();
            await Assertions.Expect(bob.State(1)).ToHaveAttributeAsync("data-state", "Applied", new() { Timeout = 20_000 });
            await Assertions.Expect(alice.State(1)).ToHaveAttributeAsync("data-state", "Applied", new() { Timeout = 15_000 });
            Assert.Contains($"netlab:change-{instance}-1", (await runner.RunAsync("iptables-save", [], TimeSpan.FromSeconds(20))).StdOut, StringComparison.Ordinal);
            await BrowserSession.ScreenshotAsync(alicePage, "replicas-alice-follows");
            var approvedBy = await front.GetFromJsonAsync<JsonElement>("/api/audit?action=change.applied");
            Assert.Contains(approvedBy.GetProperty("rows").EnumerateArray(), e => e.GetProperty("actor").GetString() == "bob");

            // Alice starts the seed run on A's page (A holds the run queue and runs it); Bob opens it on B and follows its progress.
            await new DashboardPage(alicePage).OpenAsync("experiments");
            await alicePage.Locator("[data-testid='experiment'] [data-testid='run-variant'][data-variant='docker-user']").First.ClickAsync();
            await Assertions.Expect(alicePage).ToHaveURLAsync(new Regex("/runs/[0-9a-f-]{36}$"), new() { Timeout = 30_000 });
            run = Guid.Parse(alicePage.Url[^36..]);
            await new DashboardPage(bobPage).OpenAsync($"runs/{run}");
            var bobStep = bobPage.Locator("[data-testid='run-step']");
            await Assertions.Expect(bobStep).ToHaveTextAsync(new Regex("^(capturing|probe) "), new() { Timeout = 60_000 });
            var fraction = double.Parse(await bobPage.Locator("[data-testid='run-progress']").GetAttributeAsync("data-fraction") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(fraction is > 0 and < 1, $"Bob's progress bar on B: {fraction}");
            Assert.NotEqual("", (await runner.RunAsync("docker", ["ps", "-q", "--filter", $"label=netlab.run={run:N}"], TimeSpan.FromSeconds(20))).StdOut.Trim());
            await BrowserSession.ScreenshotAsync(bobPage, "replicas-bob-follows-run");

            // A dies mid-run. B takes the duties, marks the run interrupted (Bob's page shows it live) and removes what it made.
            appA.Kill(entireProcessTree: true);
            var killedAt = Stopwatch.StartNew();
            await appA.WaitForExitAsync();
            await Eventually.UntilAsync(async () => (await AppProcess.ReplicaAsync(b)).GetProperty("holdsDuties").GetBoolean(), () => "replica B to take the duties", 30);
            output.WriteLine($"B holds the duties {killedAt.Elapsed.TotalSeconds:0.0} s after A's SIGKILL");
            await Assertions.Expect(bobPage.Locator("[data-testid='run-status']").First).ToHaveTextAsync("Interrupted", new() { Timeout = 20_000 });
            await Assertions.Expect(bobPage.Locator("[data-testid='run-error']")).ToContainTextAsync("the dashboard stopped");
            await BrowserSession.ScreenshotAsync(bobPage, "replicas-bob-sees-interrupted");
            var left = await RunLeftovers.WhenLeftBehindAsync(b, runner, run);
            Assert.Equal("Interrupted", left.GetProperty("summary").GetProperty("status").GetString());
            Assert.Equal(("", "", false), await RunLeftovers.WhatRemainsAsync(runner, run, instance));

            // Alice's browser: nginx now sends it to B; her sign-in holds (keys in the database) and nothing is lost.
            await new DashboardPage(alicePage).OpenAsync($"runs/{run}");
            await Assertions.Expect(alicePage.Locator("[data-testid='run-status']").First).ToHaveTextAsync("Interrupted", new() { Timeout = 20_000 });
            await alice.OpenAsync("changes");
            await Assertions.Expect(alice.State(1)).ToHaveAttributeAsync("data-state", "Applied", new() { Timeout = 15_000 });
            Assert.Equal("replica-b", (await front.GetFromJsonAsync<JsonElement>("/api/replica")).GetProperty("replica").GetString());
            await BrowserSession.ScreenshotAsync(alicePage, "replicas-alice-on-b");
        }
        catch
        {
            foreach (var (page, who) in new[] { (alicePage, "alice"), (bobPage, "bob") })
            {
                if (page is not null)
                {
                    await BrowserSession.ScreenshotAsync(page, $"failure-replicas-{who}");
                }
            }

            throw;
        }
        finally
        {
            await AppProcess.EndAsync(appA, appB);

            if (run != default)
            {
                await RunLeftovers.RemoveAsync(runner, run, instance);
            }

            var writer = new IptablesRuleWriter(runner, Microsoft.Extensions.Options.Options.Create(new Dashboard.Host.DockerHostOptions()));
            await writer.DeleteTaggedWhereAsync(c => c.StartsWith($"netlab:change-{instance}-", StringComparison.Ordinal));
            await PostgresServer.DropDatabaseAsync(connection);
            Directory.Delete(work, recursive: true);
        }
    }
}
