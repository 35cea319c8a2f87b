using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dashboard.Core.Changes;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;
using Dashboard.Host.Processes;
using Microsoft.Extensions.Options;

namespace Dashboard.TestSupport;

/// <summary>
/// Uniquely named lab networks and busybox containers for one test, and the iptables rules it tagged. Disposing removes
/// all of them, also when the test failed. Networks come from Docker's default pools (inside 172.16.0.0/12).
/// </summary>
public sealed partial class LabScope : IAsyncDisposable
{
    private readonly ProcessRunner _runner = new();
    private readonly IProcessRunner _hostRunner;
    private readonly string[] _docker;
    private readonly List<string> _containers = [];
    private readonly List<string> _networks = [];
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <param name="engine">Another engine (<see cref="LabEngine"/>): its socket for docker, its namespace for ip and iptables. Null: the system's.</param>
    public LabScope(LabEngine? engine = null)
    {
        Id = Guid.NewGuid().ToString("N")[..8];
        Tag = RuleTag.For("test-" + Id);
        Engine = engine;
        _hostRunner = engine is null ? _runner : new NetnsProcessRunner(engine.Namespace);
        _docker = engine is null ? [] : ["-H", engine.DockerHost];
        Writer = new IptablesRuleWriter(_hostRunner, Options.Create(new DockerHostOptions()));
    }

    public LabEngine? Engine { get; }

    /// <summary>Short random id in every name this scope creates.</summary>
    public string Id { get; }

    /// <summary>The comment on every rule this scope adds.</summary>
    public string Tag { get; }

    public IptablesRuleWriter Writer { get; }

    public string Name(string suffix) => $"nltest-{Id}-{suffix}";

    /// <summary>Creates a bridge network with an explicit /24 inside 172.16.0.0/12 (never Docker's rolling default pools).</summary>
    public async Task<string> CreateNetworkAsync(string suffix, params string[] extra)
    {
        var name = Name(suffix);
        for (var attempt = 0; ; attempt++)
        {
            var subnet = LabSubnetAllocator.Pick(await TakenSubnetsAsync())
                ?? throw new InvalidOperationException("no free /24 left inside 172.16.0.0/12");
            var args = new List<string> { "network", "create", "--driver", "bridge", "--label", $"{LabProvisioner.TestLabel}={Id}",
                "--subnet", subnet.ToString(), "--gateway", LabSubnetAllocator.Gateway(subnet).ToString() };
            args.AddRange(extra);
            args.Add(name);
            var r = await _runner.RunAsync("docker", [.. _docker, .. args], Timeout);
            if (r.Succeeded)
            {
                _networks.Add(name);
                return r.StdOut.Trim();
            }

            // Another test may have taken the same /24 a moment ago.
            if (attempt >= 5 || !r.StdErr.Contains("overlap", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException($"docker {string.Join(' ', args)}: {r.Message}");
            }
        }
    }

    private async Task<List<IPNetwork>> TakenSubnetsAsync()
    {
        var taken = new List<IPNetwork>();
        var ids = (await DockerAsync(["network", "ls", "-q"])).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (ids.Length > 0)
        {
            using var doc = JsonDocument.Parse(await DockerAsync(["network", "inspect", .. ids]));
            foreach (var n in doc.RootElement.EnumerateArray())
            {
                if (n.GetProperty("IPAM").GetProperty("Config") is { ValueKind: JsonValueKind.Array } configs)
                {
                    foreach (var c in configs.EnumerateArray())
                    {
                        if (c.TryGetProperty("Subnet", out var s) && IPNetwork.TryParse(s.GetString(), out var net))
                        {
                            taken.Add(net);
                        }
                    }
                }
            }
        }

        using var routes = JsonDocument.Parse(await RunAsync("ip", "-j", "route", "show"));
        foreach (var r in routes.RootElement.EnumerateArray())
        {
            var dst = r.GetProperty("dst").GetString();
            var isBlackhole = r.TryGetProperty("type", out var t) && t.GetString() == "blackhole";
            if (!isBlackhole && dst is not null && dst != "default" && IPNetwork.TryParse(dst.Contains('/', StringComparison.Ordinal) ? dst : dst + "/32", out var net))
            {
                taken.Add(net);
            }
        }

        return taken;
    }

    public async Task<string> RunBusyboxAsync(string suffix, string network)
    {
        var name = Name(suffix);
        _containers.Add(name);
        await DockerAsync(["run", "-d", "--name", name, "--label", $"{LabProvisioner.TestLabel}={Id}", "--network", network, "busybox:latest", "sleep", "3600"]);
        return name;
    }

    /// <summary>The seed experiment's lab: networks net1 and net2, busybox c1 on net1 and c2 on net2.</summary>
    public async Task<SeedLab> CreateSeedLabAsync()
    {
        var (net1, net2) = (Name("net1"), Name("net2"));
        var id1 = await CreateNetworkAsync("net1");
        var id2 = await CreateNetworkAsync("net2");
        var c1 = await RunBusyboxAsync("c1", net1);
        var c2 = await RunBusyboxAsync("c2", net2);
        return new SeedLab(net1, net2, "br-" + id1[..12], "br-" + id2[..12], c1, c2, await IpOfAsync(c1, net1));
    }

    public async Task<string> IpOfAsync(string container, string network) =>
        (await DockerAsync(["inspect", "-f", $"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}", container])).Trim();

    /// <summary>Bounded ping from inside a lab container: <c>ping -c N -W 1</c> to a lab address. Returns (transmitted, received).</summary>
    public async Task<(int Sent, int Received)> PingAsync(string fromContainer, string toAddress, int count = 3, int? payloadBytes = null)
    {
        if (!toAddress.StartsWith("172.", StringComparison.Ordinal) || !System.Net.IPAddress.TryParse(toAddress, out _))
        {
            throw new ArgumentException($"lab pings go only to lab addresses in 172.16.0.0/12, not '{toAddress}'");
        }

        string[] size = payloadBytes is { } b ? ["-s", b.ToString(System.Globalization.CultureInfo.InvariantCulture)] : [];
        var r = await _runner.RunAsync("docker", [.. _docker, "exec", fromContainer, "ping", "-c", count.ToString(System.Globalization.CultureInfo.InvariantCulture), "-W", "1", .. size, toAddress], Timeout);
        return PingSummaryOf(r.StdOut) ?? throw new InvalidOperationException($"ping printed no summary: {r.StdOut} {r.StdErr}");
    }

    /// <summary>ping's own summary: requests transmitted and replies received; null when it printed none.</summary>
    public static (int Sent, int Received)? PingSummaryOf(string stdout) =>
        PingSummary().Match(stdout) is { Success: true } m
            ? (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture))
            : null;

    /// <summary>Inserts a rule carrying this scope's tag.</summary>
    public async Task InsertAsync(RuleSpec spec)
    {
        var r = await Writer.InsertAsync(spec with { Tag = Tag });
        if (!r.Succeeded)
        {
            throw new InvalidOperationException($"{r.CommandLine}: {r.Message}");
        }
    }

    public async Task<JsonElement> InspectAsync(string kind, string name)
    {
        using var doc = JsonDocument.Parse(await DockerAsync([kind, "inspect", name]));
        return doc.RootElement[0].Clone();
    }

    public async Task<string> DockerAsync(IReadOnlyList<string> args)
    {
        var r = await _runner.RunAsync("docker", [.. _docker, .. args], Timeout);
        return r.Succeeded ? r.StdOut : throw new InvalidOperationException($"docker {string.Join(' ', args)}: {r.Message}");
    }

    /// <summary>Runs a program on the lab's host (inside the engine's namespace for another engine).</summary>
    public async Task<string> RunAsync(string program, params string[] args)
    {
        var r = await _hostRunner.RunAsync(program, args, Timeout);
        return r.Succeeded ? r.StdOut : throw new InvalidOperationException($"{program} {string.Join(' ', args)}: {r.Message}");
    }

    /// <summary>Rules on the host that still carry this scope's tag (read with iptables-save directly).</summary>
    public async Task<int> CountTaggedRulesAsync()
    {
        var text = await RunAsync("iptables-save");
        return text.Split('\n').Count(l => l.Contains(Tag, StringComparison.Ordinal));
    }

    public async ValueTask DisposeAsync()
    {
        var problems = new List<string>();
        try
        {
            foreach (var r in await Writer.DeleteTaggedAsync(Tag))
            {
                if (!r.Succeeded)
                {
                    problems.Add($"{r.CommandLine}: {r.Message}");
                }
            }
        }
        catch (Exception ex)
        {
            problems.Add("removing tagged rules: " + ex.Message);
        }

        if (_containers.Count > 0)
        {
            var r = await _runner.RunAsync("docker", [.. _docker, "rm", "-f", .. _containers], Timeout);
            if (!r.Succeeded)
            {
                problems.Add(r.Message);
            }
        }

        foreach (var n in _networks)
        {
            var r = await _runner.RunAsync("docker", [.. _docker, "network", "rm", n], Timeout);
            if (!r.Succeeded && !r.StdErr.Contains("not found", StringComparison.Ordinal))
            {
                problems.Add(r.Message);
            }
        }

        if (problems.Count > 0)
        {
            throw new InvalidOperationException("lab cleanup left something behind: " + string.Join("; ", problems));
        }
    }

    [GeneratedRegex(@"(\d+) packets transmitted, (\d+) (?:packets )?received")]
    private static partial Regex PingSummary();
}

/// <summary>Names and addresses of the seed lab (Docker names the bridges br- and the first 12 hex of the network id).</summary>
public sealed record SeedLab(string Net1, string Net2, string Bridge1, string Bridge2, string C1, string C2, string C1Ip);
