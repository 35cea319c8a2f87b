using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Host.Processes;

namespace Dashboard.Web.Tests.Api;

/// <summary>The dashboard killed with SIGKILL in the middle of a run, then started again: the run is Interrupted, the host clean.</summary>
[Trait("Category", "RealHost")]
public class RunKilledRealHostTests
{
    private static Process StartApp(int port, string work, string instance) =>
        AppProcess.Start(port, work, "--Collector:Enabled", "false", "--Host:InstanceId", instance);

    private static async Task WaitUpAsync(HttpClient http)
    {
        for (var i = 0; i < 120; i++)
        {
            try
            {
                await http.GetStringAsync("/api/experiments");
                return;
            }
            catch (HttpRequestException)
            {
                await Task.Delay(250);
            }
        }

        throw new Xunit.Sdk.XunitException("the dashboard did not start within 30 s");
    }

    [SkippableFact]
    public async Task KilledMidRun_RestartMarksTheRunInterrupted_AndLeavesTheHostClean()
    {
        RealHost.Require();
        Assert.True(File.Exists(AppProcess.ReleaseDll), $"build the solution in Release first ({AppProcess.ReleaseDll})");
        var work = Directory.CreateTempSubdirectory("netlab-kill-test-").FullName;
        var instance = "k" + Guid.NewGuid().ToString("N")[..8];
        var port = AppProcess.FreePort();
        using var http = AppProcess.Client(port);
        http.Timeout = TimeSpan.FromSeconds(20);
        var runner = new ProcessRunner();
        Guid id = default;
        Process? app = StartApp(port, work, instance);
        try
        {
            await WaitUpAsync(http);
            var experiments = await http.GetFromJsonAsync<JsonElement>("/api/experiments");
            var seed = experiments.EnumerateArray().Single(e => e.GetProperty("builtIn").GetBoolean()).GetProperty("id").GetGuid();
            var start = await http.PostAsJsonAsync("/api/runs", new { experimentId = seed, variant = "docker-user" });
            id = (await start.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();

            // Wait until the run has made its containers and holds its rules, then SIGKILL.
            for (var i = 0; i < 200; i++)
            {
                var p = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{id}/progress");
                if (p.GetProperty("step").GetString()!.StartsWith("probe", StringComparison.Ordinal) || p.GetProperty("step").GetString()!.StartsWith("capturing", StringComparison.Ordinal))
                {
                    break;
                }

                await Task.Delay(50);
            }

            Assert.NotEqual("", (await runner.RunAsync("docker", ["ps", "-q", "--filter", $"label=netlab.run={id:N}"], TimeSpan.FromSeconds(20))).StdOut.Trim());
            Assert.Contains($"netlab:run-{instance}-", (await runner.RunAsync("iptables-save", [], TimeSpan.FromSeconds(20))).StdOut, StringComparison.Ordinal);
            app.Kill(entireProcessTree: true);
            await app.WaitForExitAsync();
            app.Dispose();

            // Started again on the same data: the run is Interrupted and what it made is gone.
            app = StartApp(port, work, instance);
            await WaitUpAsync(http);
            var run = await RunLeftovers.WhenLeftBehindAsync(http, runner, id);
            Assert.Equal("Interrupted", run.GetProperty("summary").GetProperty("status").GetString());
            Assert.Contains("the dashboard stopped", run.GetProperty("summary").GetProperty("error").GetString(), StringComparison.Ordinal);
            Assert.Contains("ruleset-before", run.GetProperty("artifacts").EnumerateArray().Select(a => a.GetString()));
            Assert.Equal(("", "", false), await RunLeftovers.WhatRemainsAsync(runner, id, instance));
        }
        finally
        {
            await AppProcess.EndAsync(app);

            // If the test failed before the restart cleaned up: remove what the run made, by its labels and tag only.
            if (id != default)
            {
                await RunLeftovers.RemoveAsync(runner, id, instance);
            }

            Directory.Delete(work, recursive: true);
        }
    }
}
