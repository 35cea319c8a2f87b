using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Host.Processes;

namespace Dashboard.TestSupport;

/// <summary>What a run made on the system's engine and firewall, found by the run's label and its instance's rule tag.</summary>
public static class RunLeftovers
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>What remains of a run now: its containers' and networks' ids (empty when none), and whether a rule carries its instance's run or trace tag (a run traces its first probe).</summary>
    public static async Task<(string Containers, string Networks, bool Rules)> WhatRemainsAsync(ProcessRunner runner, Guid run, string instance)
    {
        ArgumentNullException.ThrowIfNull(runner);
        return (
            (await runner.RunAsync("docker", ["ps", "-aq", "--filter", $"label=netlab.run={run:N}"], Timeout)).StdOut.Trim(),
            (await runner.RunAsync("docker", ["network", "ls", "-q", "--filter", $"label=netlab.run={run:N}"], Timeout)).StdOut.Trim(),
            (await runner.RunAsync("iptables-save", [], Timeout)).StdOut is var rules && (rules.Contains($"netlab:run-{instance}-", StringComparison.Ordinal) || rules.Contains($"netlab:trace-{instance}-", StringComparison.Ordinal)));
    }

    /// <summary>
    /// After the dashboard that ran <paramref name="run"/> died: waits (up to 20 s) until <paramref name="http"/>'s
    /// dashboard reports the run no longer Running, then (up to 15 s) until its networks are gone (containers go first,
    /// in the background); returns <c>GET /api/runs/{id}</c> as last read.
    /// </summary>
    public static async Task<JsonElement> WhenLeftBehindAsync(HttpClient http, ProcessRunner runner, Guid run)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(runner);
        JsonElement read = default;
        for (var i = 0; i < 80; i++)
        {
            read = await http.GetFromJsonAsync<JsonElement>($"/api/runs/{run}");
            if (read.GetProperty("summary").GetProperty("status").GetString() != "Running")
            {
                break;
            }

            await Task.Delay(250);
        }

        for (var i = 0; i < 60 && (await runner.RunAsync("docker", ["network", "ls", "-q", "--filter", $"label=netlab.run={run:N}"], Timeout)).StdOut.Trim() != ""; i++)
        {
            await Task.Delay(250);
        }

        return read;
    }

    /// <summary>Removes what a run left (a test that failed before the dashboard cleaned up): its containers, networks and its instance's run and trace rules, by label and tag only.</summary>
    public static async Task RemoveAsync(ProcessRunner runner, Guid run, string instance)
    {
        ArgumentNullException.ThrowIfNull(runner);
        var containers = (await runner.RunAsync("docker", ["ps", "-aq", "--filter", $"label=netlab.run={run:N}"], Timeout)).StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (containers.Length > 0)
        {
            await runner.RunAsync("docker", ["rm", "-f", .. containers], Timeout);
        }

        foreach (var n in (await runner.RunAsync("docker", ["network", "ls", "-q", "--filter", $"label=netlab.run={run:N}"], Timeout)).StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            await runner.RunAsync("docker", ["network", "rm", n], Timeout);
        }

        var writer = new Dashboard.Host.Netfilter.IptablesRuleWriter(runner, Microsoft.Extensions.Options.Options.Create(new Dashboard.Host.DockerHostOptions()));
        await writer.DeleteTaggedWhereAsync(c => c.StartsWith($"netlab:run-{instance}-", StringComparison.Ordinal) || c.StartsWith($"netlab:trace-{instance}-", StringComparison.Ordinal));
    }
}
