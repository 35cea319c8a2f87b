using System.Text.RegularExpressions;
using Dashboard.Host.Processes;

namespace Dashboard.Web.Tests.Hosting;

/// <summary>
/// The team installation's files in deploy/: compose.yaml as Debian's docker-compose reads it (`docker-compose config`,
/// which fails on a file it cannot use), and the nginx configuration as Debian's nginx checks it (`nginx -t`, on a main
/// configuration of the test's own that includes it); the two agree on where the replicas listen.
/// </summary>
[Trait("Category", "RealHost")]
public sealed partial class DeployFilesTests
{
    private static readonly ProcessRunner Runner = new();

    private static string Deploy => Path.Combine(TestPaths.RepoRoot, "deploy");

    [SkippableFact]
    public async Task ComposeFile_IsReadByDockerCompose_WithTheReplicasPostgresRedisAndNginx()
    {
        RealHost.Require();
        var psi = new System.Diagnostics.ProcessStartInfo("docker-compose") { WorkingDirectory = Deploy, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-f", "compose.yaml", "config" })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["NETLAB_DB_PASSWORD"] = "db-secret";
        psi.Environment["NETLAB_REDIS_PASSWORD"] = "redis-secret";
        psi.Environment["NETLAB_HOSTNAME"] = "netlab.example.org";
        string output;
        using (var p = System.Diagnostics.Process.Start(psi)!)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            output = await stdout;
            Assert.True(p.ExitCode == 0, $"docker-compose config: exit {p.ExitCode}\n{await stderr}");
        }

        foreach (var service in new[] { "postgres:", "redis:", "dashboard-a:", "dashboard-b:", "nginx:" })
        {
            Assert.Contains("  " + service, output, StringComparison.Ordinal);
        }

        // Both replicas: one database, one Redis, one instance id, their own names and ports, on the host's network.
        Assert.Equal(2, Regex.Matches(output, "Data__ConnectionString: Host=127.0.0.1;Port=5432;Database=netlab;Username=netlab;Password=db-secret").Count);
        Assert.Equal(2, Regex.Matches(output, "Redis__Connection: 127.0.0.1:6379,password=redis-secret").Count);
        Assert.Equal(2, Regex.Matches(output, "Host__InstanceId: main").Count);
        Assert.Contains("Replicas__Name: dashboard-a", output, StringComparison.Ordinal);
        Assert.Contains("Replicas__Name: dashboard-b", output, StringComparison.Ordinal);
        Assert.True(Regex.Matches(output, "network_mode: host").Count >= 3, output);
        var ports = Urls().Matches(output).Select(m => m.Groups[1].Value).Order().ToList();
        Assert.Equal(["5001", "5002"], ports);

        // Without the passwords it refuses, naming them.
        psi.Environment.Remove("NETLAB_DB_PASSWORD");
        using var refused = System.Diagnostics.Process.Start(psi)!;
        var refusal = await refused.StandardError.ReadToEndAsync();
        await refused.WaitForExitAsync();
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("NETLAB_DB_PASSWORD", refusal, StringComparison.Ordinal);

        // nginx's upstream is those two replicas.
        var conf = await File.ReadAllTextAsync(Path.Combine(Deploy, "nginx", "netlab.conf"));
        Assert.Equal(ports, Upstreams().Matches(conf).Select(m => m.Groups[1].Value).Order().ToList());
    }

    [SkippableFact]
    public async Task NginxConfiguration_PassesNginxsOwnCheck()
    {
        RealHost.Require();
        if (!File.Exists(NginxProxy.Binary))
        {
            Skip.IfNot(RealHost.Required, "needs nginx: run scripts/lab-setup.sh (it unpacks Debian's package under artifacts/tools)");
            throw new InvalidOperationException($"LAB_REQUIRE_DOCKER=1 but {NginxProxy.Binary} is missing: run scripts/lab-setup.sh");
        }

        var dir = Directory.CreateTempSubdirectory("netlab-nginx-");
        try
        {
            var main = NginxProxy.WriteMainConfiguration(dir.FullName, NginxProxy.ShippedConfiguration);
            var r = await Runner.RunAsync(NginxProxy.Binary, ["-t", "-p", dir.FullName, "-c", main, "-e", Path.Combine(dir.FullName, "error.log")], TimeSpan.FromSeconds(30));
            Assert.True(r.Succeeded, r.Message + "\n" + r.StdErr);
            Assert.Contains("test is successful", r.StdErr, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [GeneratedRegex(@"ASPNETCORE_URLS: http://127\.0\.0\.1:(\d+)")]
    private static partial Regex Urls();

    [GeneratedRegex(@"server 127\.0\.0\.1:(\d+)")]
    private static partial Regex Upstreams();
}
