using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Host.Processes;

namespace Dashboard.Web.Tests.Hosting;

/// <summary>
/// The shipped Dockerfile, built and run for real: scripts/image.sh makes stand-ins for its base images (a Debian 12
/// root filesystem by debootstrap plus this machine's .NET folder, tagged with the FROM lines' names) and runs
/// <c>docker build</c> on the Dockerfile unchanged; the image then runs as the README documents (host network and PID
/// namespace, NET_ADMIN, NET_RAW, SYS_ADMIN, the Docker socket, a data volume). The containerised dashboard answers
/// /api/host for the real engine and /api/firewall for the real ruleset, and the isolation chain's DROP counter it
/// reports moves after a dropped ping. It runs under an instance id and port of its own; container and volume are removed.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class ContainerImageRealHostTests
{
    private const string Image = "netlab-dashboard:test";
    private static readonly ProcessRunner Runner = new();

    [SkippableFact]
    public async Task Dockerfile_BuildsUnchanged_AndTheImageRunAsDocumented_AnswersForTheRealHost()
    {
        RealHost.Require();
        var build = await Runner.RunAsync("bash", [Path.Combine(TestPaths.RepoRoot, "scripts", "image.sh"), "build", Image], TimeSpan.FromMinutes(20));
        Assert.True(build.Succeeded, "scripts/image.sh build: " + build.Message + "\n" + build.StdErr);
        var dockerfile = await File.ReadAllTextAsync(Path.Combine(TestPaths.RepoRoot, "Dockerfile"));
        var built = await DockerAsync("image", "inspect", "--format", "{{json .Config}}", Image);
        using (var config = JsonDocument.Parse(built))
        {
            // The image is the Dockerfile's: its entry point and environment, on the stand-in for the runtime image.
            Assert.Equal(["dotnet", "Dashboard.Web.dll"], config.RootElement.GetProperty("Entrypoint").EnumerateArray().Select(e => e.GetString()!));
            Assert.Contains("Data__Directory=/data", config.RootElement.GetProperty("Env").EnumerateArray().Select(e => e.GetString()));
            Assert.Contains("ENTRYPOINT [\"dotnet\", \"Dashboard.Web.dll\"]", dockerfile, StringComparison.Ordinal);
        }

        var id = Guid.NewGuid().ToString("N")[..8];
        var name = $"netlab-imgtest-{id}";
        var volume = $"netlab-imgtest-{id}";
        var port = LoopbackPort.Free();
        var token = "nlt_" + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(20)).ToLowerInvariant();
        await using var lab = new LabScope();
        try
        {
            // The README's docker run line, with a port, an instance id and an unattended administrator of the test's own.
            await DockerAsync(
                "run", "-d", "--name", name, "--network", "host", "--pid", "host",
                "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", "--cap-add", "SYS_ADMIN",
                "-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", "/var/run/docker/netns:/var/run/docker/netns:ro",
                "-v", $"{volume}:/data",
                "-e", $"ASPNETCORE_URLS=http://127.0.0.1:{port}", "-e", $"Host__InstanceId=img{id}",
                "-e", "Auth__AdminPassword=" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(18)), "-e", "Auth__AdminToken=" + token,
                Image);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
            http.DefaultRequestHeaders.Authorization = new("Bearer", token);
            JsonElement host = default;
            await Eventually.UntilAsync(
                async () =>
                {
                    try
                    {
                        var r = await http.GetAsync("api/host");
                        if (r.StatusCode != HttpStatusCode.OK)
                        {
                            return false;
                        }

                        host = await r.Content.ReadFromJsonAsync<JsonElement>();
                        return true;
                    }
                    catch (HttpRequestException)
                    {
                        return false;
                    }
                },
                () => "the containerised dashboard to answer /api/host:\n" + Logs(name),
                120);

            // The engine it reports is this machine's.
            var engine = (await DockerAsync("version", "--format", "{{.Server.Version}}")).Trim();
            Assert.Equal(engine, host.GetProperty("engine").GetProperty("engineVersion").GetString());

            var seed = await lab.CreateSeedLabAsync();
            var before = await IsolationDropsAsync(http);
            Assert.True(before.Rules > 0, "the isolation chain's DROP rules in /api/firewall");
            var (sent, received) = await lab.PingAsync(seed.C2, seed.C1Ip);
            Assert.Equal((3, 0), (sent, received));
            var after = before;
            await Eventually.UntilAsync(async () => (after = await IsolationDropsAsync(http)).Packets >= before.Packets + (ulong)sent,
                () => $"the DROP counters of DOCKER-ISOLATION-STAGE-2 to grow by {sent}: {before.Packets} then {after.Packets}\n" + Logs(name), 30);
        }
        finally
        {
            await Runner.RunAsync("docker", ["rm", "-f", name], TimeSpan.FromSeconds(60));
            await Runner.RunAsync("docker", ["volume", "rm", volume], TimeSpan.FromSeconds(60));
        }
    }

    /// <summary>The sum of the packet counters of the DROP rules in the filter table's DOCKER-ISOLATION-STAGE-2, as the dashboard reads them now.</summary>
    private static async Task<(int Rules, ulong Packets)> IsolationDropsAsync(HttpClient http)
    {
        var fw = await http.GetFromJsonAsync<JsonElement>("api/firewall?fresh=true");
        var rules = fw.GetProperty("ruleset").GetProperty("tables").EnumerateArray()
            .Where(t => t.GetProperty("name").GetString() == "filter" && t.GetProperty("family").GetString() == "Ipv4")
            .SelectMany(t => t.GetProperty("chains").EnumerateArray())
            .Where(c => c.GetProperty("name").GetString() == "DOCKER-ISOLATION-STAGE-2")
            .SelectMany(c => c.GetProperty("rules").EnumerateArray())
            .Where(r => r.GetProperty("target").GetString() == "DROP")
            .ToList();
        return (rules.Count, rules.Aggregate(0UL, (sum, r) => sum + r.GetProperty("packets").GetUInt64()));
    }

    private static async Task<string> DockerAsync(params string[] args)
    {
        var r = await Runner.RunAsync("docker", args, TimeSpan.FromMinutes(2));
        return r.Succeeded ? r.StdOut : throw new InvalidOperationException($"docker {string.Join(' ', args)}: {r.Message}");
    }

    private static string Logs(string container)
    {
        var r = Runner.RunAsync("docker", ["logs", "--tail", "40", container], TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        return r.StdOut + r.StdErr;
    }
}
