using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Host.Processes;
using Xunit.Abstractions;

namespace Dashboard.Web.Tests.Api;

/// <summary>
/// Two dashboard processes on one PostgreSQL database (one data folder, one instance id, as two replicas on one
/// machine): one holds the singleton duties, the other waits; a run started through the waiting one is run by the
/// holder; the holder killed with SIGKILL in the middle of that run: the other takes the duties within 30 s (with the
/// default settings), marks the run interrupted and removes what it had made on the host.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class ReplicasRealHostTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task TwoReplicas_OneHoldsTheDuties_RunsQueuedThroughTheOther_AndAKilledHolderIsReplacedWithin30s()
    {
        RealHost.Require();
        PostgresServer.Require();
        Assert.True(File.Exists(AppProcess.ReleaseDll), $"build the solution in Release first ({AppProcess.ReleaseDll})");
        var work = Directory.CreateTempSubdirectory("netlab-replicas-test-").FullName;
        var instance = "r" + Guid.NewGuid().ToString("N")[..8];
        var connection = await PostgresServer.CreateDatabaseAsync("netlab_replicas");
        var (portA, portB) = (AppProcess.FreePort(), AppProcess.FreePort());
        using var a = AppProcess.Client(portA);
        using var b = AppProcess.Client(portB);
        a.Timeout = b.Timeout = TimeSpan.FromSeconds(20);
        var runner = new ProcessRunner();
        Guid id = default;
        Process? appA = null, appB = null;
        try
        {
            appA = AppProcess.StartReplica(portA, work, instance, connection, "replica-a", null, "--Collector:Enabled", "false");
            var ra = await AppProcess.ReplicaAsync(a);
            for (var i = 0; i < 40 && !ra.GetProperty("holdsDuties").GetBoolean(); i++)
            {
                await Task.Delay(250);
                ra = await AppProcess.ReplicaAsync(a);
            }

            Assert.True(ra.GetProperty("holdsDuties").GetBoolean(), ra.ToString());
            Assert.True(ra.GetProperty("shared").GetBoolean());
            appB = AppProcess.StartReplica(portB, work, instance, connection, "replica-b", null, "--Collector:Enabled", "false");
            var rb = await AppProcess.ReplicaAsync(b);
            Assert.Equal("replica-b", rb.GetProperty("replica").GetString());
            Assert.False(rb.GetProperty("holdsDuties").GetBoolean(), rb.ToString());
            Assert.Equal("replica-a", rb.GetProperty("holder").GetString());

            // Started through B, which does not hold the queue: A takes it from the database and runs it; both show its progress.
            var experiments = await b.GetFromJsonAsync<JsonElement>("/api/experiments");
            var seed = experiments.EnumerateArray().Single(e => e.GetProperty("builtIn").GetBoolean()).GetProperty("id").GetGuid();
            var start = await b.PostAsJsonAsync("/api/runs", new { experimentId = seed, variant = "docker-user" });
            Assert.True(start.IsSuccessStatusCode, await start.Content.ReadAsStringAsync());
            id = (await start.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
            string? stepOnB = null;
            for (var i = 0; i < 400; i++)
            {
                var onA = (await a.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/progress")).GetProperty("step").GetString()!;
                if (onA.StartsWith("probe", StringComparison.Ordinal) || onA.StartsWith("capturing", StringComparison.Ordinal))
                {
                    stepOnB = (await b.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/progress")).GetProperty("step").GetString();
                    break;
                }

                await Task.Delay(50);
            }

            Assert.NotNull(stepOnB);
            Assert.NotEqual("queued", stepOnB);
            Assert.NotEqual("", (await runner.RunAsync("docker", ["ps", "-q", "--filter", $"label=netlab.run={id:N}"], TimeSpan.FromSeconds(20))).StdOut.Trim());
            Assert.Contains($"netlab:run-{instance}-", (await runner.RunAsync("iptables-save", [], TimeSpan.FromSeconds(20))).StdOut, StringComparison.Ordinal);

            // A dies mid-run: B takes the duties, marks the run interrupted and removes what it made.
            appA.Kill(entireProcessTree: true);
            var killedAt = Stopwatch.StartNew();
            await appA.WaitForExitAsync();
            while (!(rb = await AppProcess.ReplicaAsync(b)).GetProperty("holdsDuties").GetBoolean())
            {
                Assert.True(killedAt.Elapsed < TimeSpan.FromSeconds(30), $"replica B did not take the duties within 30 s: {rb}");
                await Task.Delay(100);
            }

            var takeover = killedAt.Elapsed;
            output.WriteLine($"takeover after SIGKILL: {takeover.TotalSeconds:0.0} s (Replicas:Retry 5 s)");
            var run = await RunLeftovers.WhenLeftBehindAsync(b, runner, id);
            Assert.Equal("Interrupted", run.GetProperty("summary").GetProperty("status").GetString());
            Assert.Contains("the dashboard stopped", run.GetProperty("summary").GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.Equal(("", "", false), await RunLeftovers.WhatRemainsAsync(runner, id, instance));

            // Both takings of the duties are in the audit, in order.
            var audit = await b.GetFromJsonAsync<JsonElement>("/api/audit?action=replica.duties-taken");
            var details = audit.GetProperty("rows").EnumerateArray().Select(e => e.GetProperty("detail").GetString()!).ToList();
            Assert.Contains(details, d => d.Contains("'replica-a'", StringComparison.Ordinal));
            Assert.Contains(details, d => d.Contains("'replica-b'", StringComparison.Ordinal));
        }
        finally
        {
            await AppProcess.EndAsync(appA, appB);

            if (id != default)
            {
                await RunLeftovers.RemoveAsync(runner, id, instance);
            }

            await PostgresServer.DropDatabaseAsync(connection);
            Directory.Delete(work, recursive: true);
        }
    }
}
