using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using Dashboard.Host.Processes;

namespace Dashboard.Host.Tests.Oracle;

/// <summary>
/// The Linux kernel as the judge of a dump: a scratch router namespace holding the dump's rules (loaded with
/// <c>iptables-restore</c>, or <c>nft -f</c> for nftables text, there and nowhere else), one Linux bridge per bridge
/// the dump names (named as in the dump, holding the gateway address, <c>br_netfilter</c> on in that namespace as
/// Docker has it) and two endpoint namespaces on each (addresses .2 and .3 of its subnet, as containers). A probe
/// sends one real ICMP echo (or a TCP connection, to a published port too) between endpoints, to the router (the
/// host) or from it, and observes where the request should arrive whether it did (a counter rule there: the
/// endpoint's INPUT, or the router's security INPUT, which runs after filter) and, at the source, whether the reply
/// came back; the router's counters before and after say which rules the packets met. Everything lives in namespaces
/// this class makes and removes; the caller's namespace is never touched, and every namespace that carries the probes
/// has the safety blackholes.
/// </summary>
internal sealed partial class KernelOracle : IAsyncDisposable
{
    private const string Tag = "netlab:oracle";
    private const string SynTag = "netlab:oracle-syn";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly ProcessRunner _runner = new();
    private readonly string _router;
    private readonly List<string> _namespaces = [];
    private readonly List<string> _trace = [];
    private System.Diagnostics.Process? _monitor;
    private TraceRuleLocator? _locator;

    /// <summary>Marks every packet in the router for tracing, before raw (-300); a rule with no verdict, in a table of its own.</summary>
    private const string TraceTable = "table ip netlab-oracle-trace {\n\tchain pre {\n\t\ttype filter hook prerouting priority -350; policy accept;\n\t\tmeta nftrace set 1 comment \"netlab:oracle-trace\"\n\t}\n\tchain out {\n\t\ttype filter hook output priority -350; policy accept;\n\t\tmeta nftrace set 1 comment \"netlab:oracle-trace\"\n\t}\n}\n";

    private KernelOracle(string id, IReadOnlyList<OracleNetwork> networks)
    {
        _router = $"nlo{id}r";
        Networks = networks;
        Outside = OracleNetwork.Of("eth0", "172.31.254.0/24", networks.Count);
    }

    /// <summary>
    /// A client outside Docker's networks, as on the host's own NIC (the router's side is named eth0): where published
    /// ports are reached from. Its subnet is in the lab range and no dump names it.
    /// </summary>
    public OracleNetwork Outside { get; }

    /// <summary>The networks the dump implies: its bridge, subnet, gateway (the router's side) and the endpoint's address.</summary>
    public IReadOnlyList<OracleNetwork> Networks { get; }

    /// <summary>
    /// The bridges and subnets a Docker dump implies, from the masquerade rule Docker writes for each network
    /// (<c>-A POSTROUTING -s SUBNET ! -o BRIDGE -j MASQUERADE</c>).
    /// </summary>
    public static IReadOnlyList<(string Bridge, string Subnet)> NetworksOf(string dump) =>
        [.. Masquerade().Matches(dump).Concat(NftMasquerade().Matches(dump)).Concat(Internal().Matches(dump)).Select(m => (m.Groups["bridge"].Value, m.Groups["subnet"].Value)).Distinct()];

    /// <summary>An internal network has no masquerade; 18.05–28 isolate it with <c>! -s SUBNET -o BRIDGE -j DROP</c> in STAGE-1.</summary>
    [GeneratedRegex(@"^(?:\[\d+:\d+\] )?-A DOCKER-ISOLATION-STAGE-1 ! -s (?<subnet>\d+\.\d+\.\d+\.\d+/\d+) -o (?<bridge>\S+) -j DROP", RegexOptions.Multiline)]
    private static partial Regex Internal();

    [GeneratedRegex(@"^(?:\[\d+:\d+\] )?-A POSTROUTING -s (?<subnet>\d+\.\d+\.\d+\.\d+/\d+) ! -o (?<bridge>\S+) -j MASQUERADE", RegexOptions.Multiline)]
    private static partial Regex Masquerade();

    /// <summary>Docker 29's nftables form: <c>oifname != "BRIDGE" ip saddr SUBNET counter masquerade</c>.</summary>
    [GeneratedRegex(@"oifname != ""(?<bridge>[^""]+)"" ip saddr (?<subnet>\d+\.\d+\.\d+\.\d+/\d+) .*masquerade")]
    private static partial Regex NftMasquerade();

    /// <summary>What the evaluator is told about the router: its addresses (every gateway), each bridge's address, and the ipsets loaded.</summary>
    public EvaluationContext Context => new()
    {
        InterfaceAddresses = Networks.Append(Outside).ToDictionary(n => n.Bridge, n => n.Gateway),
        LocalAddresses = Networks.Append(Outside).Select(n => n.Gateway).ToHashSet(),
        IpSets = IpSets,
    };

    /// <summary>The ipsets loaded into the router (name → members), when the dump uses sets.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> IpSets { get; private init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>The router's ruleset as the kernel lists it right after loading the dump (before the oracle's own counters).</summary>
    public Ruleset? Loaded { get; private set; }

    /// <summary>Whether the dump is <c>nft list ruleset</c> text (loaded with <c>nft -f</c>) rather than iptables-save.</summary>
    public bool Nftables { get; private init; }

    /// <summary>Builds the router and endpoints for <paramref name="dump"/>; <paramref name="ipSets"/> are created (hash:net) before the dump is loaded.</summary>
    public static async Task<KernelOracle> BuildAsync(string dump, IReadOnlyDictionary<string, IReadOnlyList<string>>? ipSets = null)
    {
        var nftables = OracleVariants.IsNftables(dump);
        var networks = NetworksOf(dump).Select((n, i) => OracleNetwork.Of(n.Bridge, n.Subnet, i)).ToList();
        if (networks.Count < 2)
        {
            throw new InvalidOperationException($"the dump implies {networks.Count} network(s); a probe needs two");
        }

        if (networks.Any(n => !InLabRange(n.Subnet)))
        {
            throw new InvalidOperationException("the dump's networks must lie inside 172.16.0.0/12");
        }

        var oracle = new KernelOracle(Guid.NewGuid().ToString("N")[..5], networks) { Nftables = nftables, IpSets = ipSets ?? new Dictionary<string, IReadOnlyList<string>>() };
        try
        {
            await oracle.SetUpAsync(dump);
            return oracle;
        }
        catch
        {
            await oracle.DisposeAsync();
            throw;
        }
    }

    private static bool InLabRange(string cidr)
    {
        var bytes = IPAddress.Parse(cidr.Split('/')[0]).GetAddressBytes();
        return bytes[0] == 172 && bytes[1] >= 16 && bytes[1] <= 31 && int.Parse(cidr.Split('/')[1], CultureInfo.InvariantCulture) >= 12;
    }

    private async Task SetUpAsync(string dump)
    {
        await NamespaceAsync(_router);
        await RunAsync("ip", ["netns", "exec", _router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        if (!File.Exists("/proc/sys/net/bridge/bridge-nf-call-iptables"))
        {
            throw new InvalidOperationException("br_netfilter is not available in this kernel: bridged packets would not meet iptables");
        }

        // Docker's setting, in the router's namespace only: bridged packets (one network's endpoints) meet iptables.
        await RunAsync("ip", ["netns", "exec", _router, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"]);
        foreach (var n in Networks.Append(Outside))
        {
            await RunAsync("ip", ["-n", _router, "link", "add", n.Bridge, "type", "bridge"]);
            await RunAsync("ip", ["-n", _router, "addr", "add", $"{n.Gateway}/{n.PrefixLength}", "dev", n.Bridge]);
            await RunAsync("ip", ["-n", _router, "link", "set", n.Bridge, "up"]);
            foreach (var (endpoint, address, port) in n == Outside
                ? [(n.Namespace(_router), n.Endpoint, $"p{n.Index}a")]
                : new[] { (n.Namespace(_router), n.Endpoint, $"p{n.Index}a"), (n.PeerNamespace(_router), n.Peer, $"p{n.Index}b") })
            {
                await NamespaceAsync(endpoint);
                await RunAsync("ip", ["link", "add", port, "netns", _router, "type", "veth", "peer", "name", "eth0", "netns", endpoint]);
                await RunAsync("ip", ["-n", _router, "link", "set", port, "master", n.Bridge]);
                await RunAsync("ip", ["-n", _router, "link", "set", port, "up"]);
                await RunAsync("ip", ["-n", endpoint, "addr", "add", $"{address}/{n.PrefixLength}", "dev", "eth0"]);
                await RunAsync("ip", ["-n", endpoint, "link", "set", "eth0", "up"]);

                // The other networks through the router, more specific than the safety blackhole of 172.16.0.0/12.
                foreach (var other in Networks.Append(Outside).Where(o => o != n))
                {
                    await RunAsync("ip", ["-n", endpoint, "route", "add", other.Subnet, "via", n.Gateway]);
                }

                // Requests that arrive: counted here, in the endpoint's own table.
                await RunAsync("ip", ["netns", "exec", endpoint, "iptables", "-w", "5", "-A", "INPUT", "-p", "icmp", "--icmp-type", "echo-request", "-m", "comment", "--comment", Tag, "-j", "ACCEPT"]);
                await RunAsync("ip", ["netns", "exec", endpoint, "iptables", "-w", "5", "-A", "INPUT", "-p", "tcp", "--syn", "-m", "comment", "--comment", SynTag, "-j", "ACCEPT"]);
            }
        }

        foreach (var (name, members) in IpSets)
        {
            await RunAsync("ip", ["netns", "exec", _router, "ipset", "create", name, "hash:net", "family", "inet"]);
            foreach (var member in members)
            {
                await RunAsync("ip", ["netns", "exec", _router, "ipset", "add", name, member]);
            }
        }

        // The dump, whole, into the router's own tables.
        if (Nftables)
        {
            await RunAsync("ip", ["netns", "exec", _router, "nft", "-f", "-"], dump);
        }
        else
        {
            await RunAsync("ip", ["netns", "exec", _router, "iptables-restore", "-w", "5"], dump);
        }

        Loaded = await RouterRulesetAsync();

        // Requests that reach the router itself: counted after filter INPUT decided (security INPUT runs at
        // priority 50, an nftables chain of the oracle's own at 100). A counting rule with no verdict changes nothing.
        if (Nftables)
        {
            await RunAsync("ip", ["netns", "exec", _router, "nft", "-f", "-"],
                $"table ip netlab-oracle {{\n\tchain arrived {{\n\t\ttype filter hook input priority 100; policy accept;\n\t\ticmp type echo-request counter comment \"{Tag}\"\n\t}}\n}}\n");
        }
        else
        {
            await RunAsync("ip", ["netns", "exec", _router, "iptables", "-w", "5", "-t", "security", "-A", "INPUT", "-p", "icmp", "--icmp-type", "echo-request", "-m", "comment", "--comment", Tag]);
        }

        // The kernel's own account of each packet's path: every packet marked for tracing by a table of the oracle's
        // own, and xtables-monitor --trace (iptables-nft rules, printed as iptables-save lines) or nft -a monitor trace
        // (nftables, with handles) reading it in the router.
        _locator = Nftables ? null : new TraceRuleLocator(IptablesSaveReader.Read(dump, TableFamily.Ipv4));
        await RunAsync("ip", ["netns", "exec", _router, "nft", "-f", "-"], TraceTable);
        var monitor = new System.Diagnostics.ProcessStartInfo("ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in (string[])["netns", "exec", _router, .. Nftables ? ["nft", "-a", "monitor", "trace"] : new[] { "xtables-monitor", "--trace" }])
        {
            monitor.ArgumentList.Add(arg);
        }

        _monitor = System.Diagnostics.Process.Start(monitor)!;
        _monitor.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                lock (_trace)
                {
                    _trace.Add(line);
                }
            }
        };
        _monitor.ErrorDataReceived += (_, _) => { };
        _monitor.BeginOutputReadLine();
        _monitor.BeginErrorReadLine();
        await Task.Delay(300); // the monitor subscribes
        if (_monitor.HasExited)
        {
            throw new InvalidOperationException($"the trace monitor ended at once (exit {_monitor.ExitCode})");
        }
    }

    private int TraceMark()
    {
        lock (_trace)
        {
            return _trace.Count;
        }
    }

    /// <summary>The trace monitor's lines since <paramref name="mark"/>.</summary>
    private async Task<IReadOnlyList<string>> TracedSinceAsync(int mark)
    {
        await Task.Delay(150); // the last events reach the monitor's output
        lock (_trace)
        {
            return [.. _trace.Skip(mark)];
        }
    }

    /// <summary>
    /// What the kernel's trace says decided the first packet from <paramref name="source"/> to
    /// <paramref name="destination"/> in a probe (positions as in the dump), and its path for printing; null when the
    /// trace holds no such packet.
    /// </summary>
    public (RuleRef? Decision, string Path)? TracedDecision(KernelVerdict kernel, string source, string destination)
    {
        if (Nftables)
        {
            var steps = NftTraceReader.PathOf(kernel.TraceLines, Loaded!, source, destination);
            return steps is null ? null : (NftTraceReader.Decision(steps, Loaded!), string.Join('\n', steps.Select(s => $"    {s.Table} {s.Chain} {(s.Position is { } p ? $"#{p}" : "policy")} {s.Verdict}")));
        }

        var parser = new XtablesTraceParser(maxPackets: 1000);
        foreach (var line in kernel.TraceLines)
        {
            parser.Feed(line, DateTimeOffset.UtcNow, _locator!.PositionOf);
        }

        var packet = parser.Packets.FirstOrDefault(t => t.Source == source && t.Destination == destination);
        return packet is null ? null : (packet.Decision is { } d ? new RuleRef(d.Table, d.Chain, d.Kind == TraceStepKind.Policy ? null : d.Position, d.RuleText ?? $"policy {d.Verdict}") : null,
            string.Join('\n', packet.Steps.Select(s => $"    {s.Label}{(s.RuleText is { } t ? $" ({t})" : "")}")));
    }

    private async Task NamespaceAsync(string name)
    {
        await RunAsync("ip", ["netns", "add", name]);
        _namespaces.Add(name);
        await RunAsync("ip", ["-n", name, "link", "set", "lo", "up"]);
        await RunAsync("ip", ["-n", name, "route", "replace", "blackhole", "172.16.0.0/12"]);
        await RunAsync("ip", ["-n", name, "route", "replace", "blackhole", "192.168.0.0/16"]);
    }

    /// <summary>One echo request from <paramref name="from"/>'s endpoint (or its second endpoint) to <paramref name="to"/>'s, as the kernel handled it.</summary>
    public Task<KernelVerdict> PingAsync(OracleNetwork from, OracleNetwork to, bool fromPeer = false) =>
        PingCoreAsync(fromPeer ? from.PeerNamespace(_router) : from.Namespace(_router), to.Endpoint, _ => ArrivedAsync(to.Namespace(_router)));

    /// <summary>One echo request from <paramref name="from"/>'s endpoint to the router's address on <paramref name="gatewayOf"/> (the host's INPUT).</summary>
    public Task<KernelVerdict> PingRouterAsync(OracleNetwork from, OracleNetwork gatewayOf) =>
        PingCoreAsync(from.Namespace(_router), gatewayOf.Gateway, router => Task.FromResult(router.Rules.Single(r => r.Comment == Tag).Packets));

    /// <summary>One echo request from the router (the host's OUTPUT, from its address on that bridge) to <paramref name="to"/>'s endpoint.</summary>
    public Task<KernelVerdict> PingFromRouterAsync(OracleNetwork to) =>
        PingCoreAsync(_router, to.Endpoint, _ => ArrivedAsync(to.Namespace(_router)));

    /// <summary>One ping; <paramref name="arrivedCount"/> reads the destination's counter (given the router's ruleset, read before and after anyway, for the router's own).</summary>
    private async Task<KernelVerdict> PingCoreAsync(string fromNamespace, string address, Func<Ruleset, Task<ulong>> arrivedCount)
    {
        var before = await RouterRulesetAsync();
        var arrivedBefore = await arrivedCount(before);
        var mark = TraceMark();
        var ping = await _runner.RunAsync("ip", ["netns", "exec", fromNamespace, "busybox", "ping", "-c", "1", "-W", "1", address], Timeout);
        var after = await RouterRulesetAsync();
        var arrived = await arrivedCount(after) > arrivedBefore;
        return new KernelVerdict(arrived, ping.Succeeded, Moved(before, after)) { TraceLines = await TracedSinceAsync(mark) };
    }

    /// <summary>
    /// One TCP connection from <paramref name="from"/>'s endpoint to <paramref name="address"/>:<paramref name="port"/>
    /// (a router address, for a published port the dump DNATs), with <c>busybox nc -l</c> listening on
    /// <paramref name="listenPort"/> in <paramref name="listener"/>'s endpoint: the SYN arrived there, and the
    /// connection was established (the SYN-ACK came back).
    /// </summary>
    public async Task<KernelVerdict> ConnectAsync(OracleNetwork from, string address, int port, OracleNetwork listener, int listenPort)
    {
        var before = await RouterRulesetAsync();
        var arrivedBefore = await ArrivedAsync(listener.Namespace(_router), SynTag);
        var mark = TraceMark();
        using var server = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("ip")
        {
            ArgumentList = { "netns", "exec", listener.Namespace(_router), "busybox", "nc", "-l", "-p", listenPort.ToString(CultureInfo.InvariantCulture) },
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        })!;
        try
        {
            await Task.Delay(300); // the listener binds
            var client = await _runner.RunAsync("ip", ["netns", "exec", from.Namespace(_router), "busybox", "nc", "-w", "2", address, port.ToString(CultureInfo.InvariantCulture)], "", Timeout);
            var arrived = await ArrivedAsync(listener.Namespace(_router), SynTag) > arrivedBefore;
            return new KernelVerdict(arrived, client.Succeeded, Moved(before, await RouterRulesetAsync())) { TraceLines = await TracedSinceAsync(mark) };
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    /// <summary>The rules whose packet counters moved, in the order the dump lists them (the kernel's path, as counters tell it).</summary>
    private static IReadOnlyList<FirewallRule> Moved(Ruleset before, Ruleset after) =>
        [.. after.Rules.Where(r => r.Packets > (before.Rules.FirstOrDefault(b => b.Table == r.Table && b.Chain == r.Chain && b.Position == r.Position)?.Packets ?? 0))];

    private async Task<ulong> ArrivedAsync(string ns, string tag = Tag)
    {
        var rs = IptablesSaveReader.Read((await RunAsync("ip", ["netns", "exec", ns, "iptables-save", "-c", "-t", "filter"])).StdOut, TableFamily.Ipv4);
        return rs.Rules.Single(r => r.Comment == tag).Packets;
    }

    private async Task<Ruleset> RouterRulesetAsync() => Nftables
        ? NftJsonReader.Read((await RunAsync("ip", ["netns", "exec", _router, "nft", "-j", "list", "ruleset"])).StdOut)
        : IptablesSaveReader.Read((await RunAsync("ip", ["netns", "exec", _router, "iptables-save", "-c"])).StdOut, TableFamily.Ipv4);

    private async Task<ProcessResult> RunAsync(string program, string[] args, string? stdin = null)
    {
        var r = stdin is null ? await _runner.RunAsync(program, args, Timeout) : await _runner.RunAsync(program, args, stdin, Timeout);
        return r.Succeeded ? r : throw new InvalidOperationException($"{program} {string.Join(' ', args)}: {r.Message}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_monitor is { HasExited: false })
            {
                _monitor.Kill(entireProcessTree: true);
                await _monitor.WaitForExitAsync();
            }
        }
        finally
        {
            _monitor?.Dispose();
            await RemoveNamespacesAsync();
        }
    }

    /// <summary>Removing a namespace removes its veths, bridges, routes, sets and tables with it; its processes (a listener, the monitor) are killed first.</summary>
    private async Task RemoveNamespacesAsync()
    {
        var failed = new List<string>();
        foreach (var ns in Enumerable.Reverse(_namespaces))
        {
            var pids = await _runner.RunAsync("ip", ["netns", "pids", ns], Timeout);
            foreach (var pid in pids.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                await _runner.RunAsync("kill", ["-9", pid], Timeout);
            }

            if (!(await _runner.RunAsync("ip", ["netns", "del", ns], Timeout)).Succeeded)
            {
                failed.Add(ns);
            }
        }

        if (failed.Count > 0)
        {
            throw new InvalidOperationException($"namespaces not removed: {string.Join(", ", failed)}");
        }
    }
}

/// <summary>One network of a dump in the oracle: the router's side is named <see cref="Bridge"/> and holds <see cref="Gateway"/>.</summary>
internal sealed record OracleNetwork(string Bridge, string Subnet, int PrefixLength, string Gateway, string Endpoint, string Peer, int Index)
{
    public static OracleNetwork Of(string bridge, string subnet, int index)
    {
        var parts = subnet.Split('/');
        var b = IPAddress.Parse(parts[0]).GetAddressBytes();
        return new OracleNetwork(bridge, subnet, int.Parse(parts[1], CultureInfo.InvariantCulture), $"{b[0]}.{b[1]}.{b[2]}.1", $"{b[0]}.{b[1]}.{b[2]}.2", $"{b[0]}.{b[1]}.{b[2]}.3", index);
    }

    /// <summary>The endpoint at .2 (where the dump's first container usually is).</summary>
    public string Namespace(string router) => $"{router[..^1]}e{Index}";

    /// <summary>The second endpoint, at .3, on the same bridge.</summary>
    public string PeerNamespace(string router) => $"{router[..^1]}f{Index}";
}

/// <summary>What the kernel did with one probe: the request arrived, the reply came back, and the router's rules it met.</summary>
internal sealed record KernelVerdict(bool RequestArrived, bool ReplyArrived, IReadOnlyList<FirewallRule> RulesMet)
{
    /// <summary>What the trace monitor printed during the probe (read with <see cref="KernelOracle.TracedDecision"/>).</summary>
    public IReadOnlyList<string> TraceLines { get; init; } = [];

    public bool Met(RuleRef rule) => rule.Position is { } position && RulesMet.Any(r => r.Table == rule.Table && r.Chain == rule.Chain && r.Position == position);

    /// <summary>The rules whose counters moved, one per line, as the kernel's side of a disagreement.</summary>
    public string Path => RulesMet.Count == 0 ? "    (no counter of the router moved)" : string.Join('\n', RulesMet.Select(r => $"    {r.Table} {r.Chain} #{r.Position}: {r.Text}  (+packets)"));
}
