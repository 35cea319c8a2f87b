using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dashboard.Agent;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Collector;
using Dashboard.Host.Netfilter;
using Dashboard.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Playwright;

namespace Dashboard.Benchmarks;

/// <summary>
/// Issue 17's benchmark. N simulated agents speak the real protocol to the Release dashboard (each is the agent's own
/// <see cref="AgentConnection"/>, fed as its collector would feed it: a ruleset of 1,000+ rules as iptables-save
/// text, then 4 reads a second in which 5 rules' counters move, and a status a second), while one Chromium shows the
/// Firewall page of the first host. Prints the dashboard's CPU and memory, the latency from an agent's read to the
/// browser's DOM (the moved counter's own value ties a DOM change to its read), and the bytes each agent sends a second
/// (the kernel's <c>bytes_sent</c> of this process's sockets to the dashboard, from <c>ss -ti</c>). The dashboard's own
/// collector is off, so the figures are the agents' load alone.
/// </summary>
internal static partial class AgentsBenchmark
{
    private const int MovedPerRead = 5;
    private static readonly TimeSpan ReadPeriod = TimeSpan.FromMilliseconds(250);

    public static async Task<int> RunAsync(int agents)
    {
        if (!File.Exists(AppProcess.ReleaseDll))
        {
            Console.Error.WriteLine($"build first: dotnet build -c Release ({AppProcess.ReleaseDll} missing)");
            return 1;
        }

        var work = Directory.CreateTempSubdirectory("netlab-bench-agents-").FullName;
        var port = AppProcess.FreePort();
        using var app = AppProcess.Start(port, work, "--Collector:Enabled", "false");
        var simulated = new List<SimulatedAgent>();
        using var stop = new CancellationTokenSource();
        try
        {
            await LiveBenchmark.WaitForAsync($"http://127.0.0.1:{port}/api/hosts");
            using var http = AppProcess.Client(port);
            var dump = Generated.IptablesSave(1_000);
            Console.WriteLine($"== {agents} simulated agents, {IptablesSaveReader.Read(dump).RuleCount:N0} rules each, {1 / ReadPeriod.TotalSeconds:0} reads/s with {MovedPerRead} counters moving per read ==");
            for (var i = 0; i < agents; i++)
            {
                var name = $"sim-{i + 1:000}";
                var registered = await (await http.PostAsJsonAsync("/api/hosts", new { name })).Content.ReadFromJsonAsync<JsonElement>();
                simulated.Add(new SimulatedAgent(name, registered.GetProperty("token").GetString()!, port, dump));
            }

            var connectWatch = Stopwatch.StartNew();
            await Task.WhenAll(simulated.Select(a => a.StartAsync()));
            while (true)
            {
                var list = await http.GetFromJsonAsync<JsonElement>("/api/hosts");
                var connected = list.EnumerateArray().Count(h => h.GetProperty("agent").ValueKind == JsonValueKind.String && h.GetProperty("agent").GetString() == "Connected" && h.GetProperty("rules").GetInt32() > 0);
                if (connected == agents)
                {
                    break;
                }

                if (connectWatch.Elapsed > TimeSpan.FromMinutes(2))
                {
                    Console.WriteLine($"only {connected}/{agents} connected with their rules after 2 min");
                    return 1;
                }

                await Task.Delay(250);
            }

            Console.WriteLine($"all {agents} connected and holding their rules after {connectWatch.Elapsed.TotalSeconds:0.0} s");
            var reads = Task.WhenAll(simulated.Select(a => a.ReadLoopAsync(stop.Token)));

            using var playwright = await Playwright.CreateAsync();
            await using var browser = await BenchmarkBrowser.LaunchAsync(playwright, work);
            var page = await browser.NewPageAsync();
            var first = simulated[0];
            await BenchmarkBrowser.SignInAsync(page, port, $"/firewall?host={first.Name}");
            await page.Locator("[data-testid='host-shown']").WaitForAsync(new() { Timeout = 30_000 });
            var cell = page.Locator("[data-testid='rule-filter-SCRATCH-1'] .pkts").First;
            await cell.WaitForAsync(new() { Timeout = 30_000 });
            await cell.EvaluateAsync(@"el => {
                window.__changes = [];
                new MutationObserver(() => window.__changes.push([Date.now(), el.textContent])).observe(el, { characterData: true, childList: true, subtree: true });
            }");

            Console.WriteLine("warming up 15 s, then measuring 30 s");
            await Task.Delay(TimeSpan.FromSeconds(15));
            var (cpu0, wall0, sent0) = (LiveBenchmark.CpuSeconds(app.Id), Stopwatch.GetTimestamp(), await BytesSentAsync(port));
            var watchFrom = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            await Task.Delay(TimeSpan.FromSeconds(30));
            var seconds = Stopwatch.GetElapsedTime(wall0).TotalSeconds;
            var cpu = (LiveBenchmark.CpuSeconds(app.Id) - cpu0) / seconds;
            var sent = await BytesSentAsync(port) - sent0;
            var rss = LiveBenchmark.RssMiB(app.Id);
            var changes = await page.EvaluateAsync<JsonElement>("() => window.__changes");

            var latencies = new List<double>();
            foreach (var c in changes.EnumerateArray())
            {
                var at = c[0].GetDouble();
                var value = Digits().Replace(c[1].GetString() ?? "", "");
                if (at >= watchFrom && ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var packets) && first.ReadAtOf(packets) is { } read)
                {
                    latencies.Add(at - read);
                }
            }

            latencies.Sort();
            var perAgent = sent / seconds / agents;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"dashboard process: CPU {cpu * 100:0.0} % of one core over {seconds:0} s (target ≤ 100 %: {(cpu <= 1 ? "MET" : "NOT MET")}), RSS {rss:0} MiB"));
            if (latencies.Count > 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"counter on screen ({first.Name}, rule SCRATCH #1 moving every read): {latencies.Count} DOM changes matched to their read, p50 {LiveBenchmark.Pct(latencies, 0.5):0} ms, p95 {LiveBenchmark.Pct(latencies, 0.95):0} ms, max {latencies[^1]:0} ms (target p95 ≤ 300 ms: {(LiveBenchmark.Pct(latencies, 0.95) <= 300 ? "MET" : "NOT MET")})"));
            }
            else
            {
                Console.WriteLine("counter on screen: no DOM change matched a read");
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"agents → dashboard: {sent / seconds / 1024:0.0} KiB/s in all, {perAgent / 1024:0.00} KiB/s per agent (target ≤ 5 KB/s: {(perAgent <= 5_000 ? "MET" : "NOT MET")}); {simulated.Sum(a => a.Reads):N0} reads sent"));
            await stop.CancelAsync();
            await reads;
            return 0;
        }
        finally
        {
            await stop.CancelAsync();
            foreach (var a in simulated)
            {
                await a.DisposeAsync();
            }

            if (!app.HasExited)
            {
                app.Kill(entireProcessTree: true);
                await app.WaitForExitAsync();
            }

            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>bytes_sent of this process's TCP connections to the dashboard's port (the kernel's own count, from <c>ss -tinp</c>).</summary>
    private static async Task<long> BytesSentAsync(int port)
    {
        var r = await new Dashboard.Host.Processes.ProcessRunner().RunAsync("ss", ["-tinpH", "state", "established", "dport", "= :" + port.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));
        var pid = "pid=" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + ",";
        long total = 0;
        var lines = r.StdOut.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            // ss prints each socket's line, then its tcp_info on the next (indented) line.
            if (lines[i].Contains(pid, StringComparison.Ordinal) && i + 1 < lines.Length && BytesSent().Match(lines[i + 1]) is { Success: true } m)
            {
                total += long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            }
        }

        return total;
    }

    [GeneratedRegex(@"bytes_sent:(\d+)")]
    private static partial Regex BytesSent();

    [GeneratedRegex(@"[^0-9]")]
    private static partial Regex Digits();

    private sealed class SimulatedAgent(string name, string token, int port, string dump) : IAsyncDisposable
    {
        private readonly AgentConnection _agent = new(
            Options.Create(new AgentOptions { Server = $"http://127.0.0.1:{port}/", Token = token }),
            NullLogger<AgentConnection>.Instance);

        private readonly Ruleset _ruleset = IptablesSaveReader.Read(dump);
        private readonly Dictionary<ulong, long> _readAt = [];
        private int _reads;

        public string Name { get; } = name;

        public int Reads => Volatile.Read(ref _reads);

        /// <summary>When the read that gave rule SCRATCH #1 this packet count was made (Unix ms).</summary>
        public double? ReadAtOf(ulong packets)
        {
            lock (_readAt)
            {
                return _readAt.TryGetValue(packets, out var at) ? at : null;
            }
        }

        public async Task StartAsync()
        {
            ICollectorSink sink = _agent;
            var now = DateTimeOffset.UtcNow;
            sink.StatusChanged(CollectorStatus.Starting(Name, 4) with { EngineAvailable = true, FirewallAvailable = true, Backend = FirewallBackend.IptablesNft, LastReadAt = now, AchievedRateHz = 4, RuleCount = _ruleset.RuleCount });
            sink.TopologyChanged(new HostTopology(new EngineInfo("28.5.2", "1.51", null, "linux", null, null, FirewallBackend.IptablesNft, "simulated", "1.8.9", true),
                [], [], [], [], now, []));
            sink.FirewallChanged(_ruleset, new FirewallSnapshot(_ruleset, now, TimeSpan.FromMilliseconds(5), ["iptables-save -c"], []) { RawText = dump });
            await _agent.StartAsync(CancellationToken.None);
        }

        /// <summary>Four reads a second: rule #1 and four others move; a status once a second.</summary>
        public async Task ReadLoopAsync(CancellationToken ct)
        {
            ICollectorSink sink = _agent;
            var rules = _ruleset.Rules.ToArray();
            var counters = rules.Select(r => (r.Packets, r.Bytes)).ToArray();
            using var timer = new PeriodicTimer(ReadPeriod);
            var n = 0;
            try
            {
                while (await timer.WaitForNextTickAsync(ct))
                {
                    n++;
                    var changes = new List<RuleCounterChange>(MovedPerRead);
                    foreach (var i in new[] { 0 }.Concat(Enumerable.Range(0, MovedPerRead - 1).Select(k => 1 + ((n * (MovedPerRead - 1)) + k) % (rules.Length - 1))))
                    {
                        counters[i] = (counters[i].Packets + 1, counters[i].Bytes + 84);
                        changes.Add(new RuleCounterChange(RuleId.Of(rules[i]), rules[i].Position, counters[i].Packets, counters[i].Bytes, 1, 84, false));
                    }

                    var now = DateTimeOffset.UtcNow;
                    lock (_readAt)
                    {
                        _readAt[counters[0].Packets] = now.ToUnixTimeMilliseconds();
                    }

                    sink.CountersChanged(new CountersUpdate(Name, now, changes, []));
                    if (n % 4 == 0)
                    {
                        sink.StatusChanged(CollectorStatus.Starting(Name, 4) with { EngineAvailable = true, FirewallAvailable = true, Backend = FirewallBackend.IptablesNft, LastReadAt = now, AchievedRateHz = 4, Reads = n, RuleCount = rules.Length });
                    }

                    Interlocked.Increment(ref _reads);
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _agent.StopAsync(CancellationToken.None);
            _agent.Dispose();
        }
    }
}
