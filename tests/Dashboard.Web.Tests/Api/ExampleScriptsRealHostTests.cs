using System.Diagnostics;
using Dashboard.Data.Entities;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Api;

/// <summary>
/// The scripts in examples/ against the real dashboard on the real host: the curl script proposes, approves with a second
/// person's token and reverts a change between the seed's bridges; the Node script (@microsoft/signalr) prints the
/// isolation chain's counters as the seed's dropped pings move them.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class ExampleScriptsRealHostTests
{
    private static string Examples => Path.Combine(TestPaths.RepoRoot, "examples");

    private static async Task<(int Exit, string Out, string Err)> RunAsync(Process process, TimeSpan within)
    {
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(within);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{process.StartInfo.FileName} did not end within {within}: {await stdout}{await stderr}");
        }

        return (process.ExitCode, await stdout, await stderr);
    }

    private static Process Start(string program, IEnumerable<string> args, Dictionary<string, string> env, string workingDirectory)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env)
        {
            start.Environment[k] = v;
        }

        return Process.Start(start)!;
    }

    [SkippableFact]
    public async Task TheCurlScript_ProposesApprovesAndReverts_AsTwoPeople()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        var instance = "x" + Guid.NewGuid().ToString("N")[..8];
        using var app = new DashboardFactory(new() { ["Host:InstanceId"] = instance }, kestrel: true);
        var alice = await app.CreateUserAsync("alice", 1, LabRole.Operator);
        var bob = await app.CreateUserAsync("bob", 1, LabRole.Approver);
        try
        {
            using var script = Start("bash", [Path.Combine(Examples, "change-workflow.sh"), seed.Bridge2, seed.Bridge1],
                new() { ["NETLAB_URL"] = app.BaseUri.ToString().TrimEnd('/'), ["OPERATOR_TOKEN"] = alice.Token, ["APPROVER_TOKEN"] = bob.Token }, Examples);
            var (exit, output, error) = await RunAsync(script, TimeSpan.FromSeconds(120));
            Assert.True(exit == 0, $"exit {exit}: {output}{error}");
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal("proposed change 1", lines[0]);
            Assert.StartsWith("change 1: Applied (verified: present once in filter DOCKER-USER", lines[1], StringComparison.Ordinal);
            Assert.Equal("change 1: Reverted (rule removed and verified gone)", lines[2]);

            // A refusal stops the script with the problem: the operator cannot approve.
            using var refused = Start("bash", [Path.Combine(Examples, "change-workflow.sh"), seed.Bridge2, seed.Bridge1],
                new() { ["NETLAB_URL"] = app.BaseUri.ToString().TrimEnd('/'), ["OPERATOR_TOKEN"] = alice.Token, ["APPROVER_TOKEN"] = alice.Token }, Examples);
            var (exit2, output2, error2) = await RunAsync(refused, TimeSpan.FromSeconds(120));
            Assert.NotEqual(0, exit2);
            Assert.Equal("proposed change 2", output2.Trim());
            Assert.Contains("refused: ", error2, StringComparison.Ordinal);
            Assert.Contains("Approver", error2, StringComparison.Ordinal);
        }
        finally
        {
            await app.Services.GetRequiredService<Dashboard.Host.Netfilter.IptablesRuleWriter>().DeleteTaggedWhereAsync(c => c.StartsWith($"netlab:change-{instance}-", StringComparison.Ordinal));
        }
    }

    [SkippableFact]
    public async Task TheNodeScript_PrintsTheIsolationChainsCounters_AsThePingsMoveThem()
    {
        RealHost.Require();
        var signalr = Path.Combine(Examples, "signalr");
        if (!Directory.Exists(Path.Combine(signalr, "node_modules", "@microsoft", "signalr")))
        {
            Skip.IfNot(RealHost.Required, "needs examples/signalr's packages: scripts/lab-setup.sh installs them with npm ci");
            throw new InvalidOperationException("LAB_REQUIRE_DOCKER=1 but examples/signalr/node_modules is missing: run scripts/lab-setup.sh");
        }

        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        using var app = new DashboardFactory(new() { ["Collector:Enabled"] = "true" }, kestrel: true);
        var viewer = await app.CreateUserAsync("vera", 1, LabRole.Viewer);

        using var node = Start("node", ["counters.mjs", "DOCKER-ISOLATION-STAGE-2", "--count", "1", "--timeout", "60"],
            new() { ["NETLAB_URL"] = app.BaseUri.ToString(), ["NETLAB_TOKEN"] = viewer.Token }, signalr);
        var first = await node.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("connected to the dashboard's own host", first);

        var (sent, received) = await lab.PingAsync(seed.C2, seed.C1Ip);
        Assert.Equal((3, 0), (sent, received));
        var (exit, output, error) = await RunAsync(node, TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, $"exit {exit}: {output}{error}");
        var line = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Single();
        Assert.Matches($@"^\S+ \S+ filter DOCKER-ISOLATION-STAGE-2 #\d+ \+[1-3] packets \(total \d+\) .*-o {seed.Bridge1}\b.*DROP", line);
    }
}
