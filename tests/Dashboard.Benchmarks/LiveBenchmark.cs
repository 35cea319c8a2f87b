using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Dashboard.Host.Processes;
using Dashboard.TestSupport;
using Microsoft.Playwright;

namespace Dashboard.Benchmarks;

/// <summary>
/// Issue 3's benchmark. (1) Latency from an echo request leaving c2 (tcpdump's kernel timestamp on c2's bridge) to the
/// DROP rule's pkts cell changing in the browser (a MutationObserver's Date.now()), over 20 pings at the default rate.
/// (2) The dashboard process's CPU share and RSS at steady state with 20 containers and 1,000 extra rules in a scratch chain.
/// Needs root, the lab host (scripts/lab-setup.sh) and a Release build of Dashboard.Web.
/// </summary>
internal static partial class LiveBenchmark
{
    public static async Task<int> RunAsync(int pings)
    {
        var dll = Path.Combine(TestPaths.RepoRoot, "src", "Dashboard.Web", "bin", "Release", "net10.0", "Dashboard.Web.dll");
        if (!File.Exists(dll))
        {
            Console.Error.WriteLine($"build first: dotnet build -c Release ({dll} missing)");
            return 1;
        }

        await using var lab = new LabScope();
        var (net1, net2, bridge1, bridge2, _, c2, c1Ip) = await lab.CreateSeedLabAsync();
        var work = Directory.CreateTempSubdirectory("netlab-bench-").FullName;
        var port = LoopbackPort.Free();
        using var app = StartApp(dll, port, work);
        try
        {
            await WaitForAsync($"http://127.0.0.1:{port}/api/collector");
            Console.WriteLine($"== Latency: echo request on {bridge2} → pkts cell of the isolation DROP for {bridge1}, {pings} pings, default rate ==");
            var latencies = await MeasureLatencyAsync(lab, port, c2, c1Ip, bridge1, bridge2, pings, work);
            if (latencies.Count > 0)
            {
                latencies.Sort();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"matched {latencies.Count}/{pings}: p50 {Pct(latencies, 0.50):0} ms, p95 {Pct(latencies, 0.95):0} ms, min {latencies[0]:0} ms, max {latencies[^1]:0} ms (target p95 ≤ 150 ms: {(Pct(latencies, 0.95) <= 150 ? "MET" : "NOT MET")})"));
            }

            // The collector while the page watched: how fast it read and what share of the time it spent reading.
            using (var http = AppProcess.Client(port))
            {
                var s = await CollectorStatusAsync(http, port);
                var duty = s.GetProperty("dutyCycle").GetDouble();
                var cap = s.GetProperty("maxDutyCycle").GetDouble();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"collector while watched ({s.GetProperty("counterWatchers").GetInt32()} watching): {s.GetProperty("achievedRateHz").GetDouble():0.0} reads/s (target {s.GetProperty("targetRateHz").GetDouble():0.#}, up to {s.GetProperty("watchedRateHz").GetDouble():0.#} watched), last read {s.GetProperty("lastReadMilliseconds").GetDouble():0.0} ms ({s.GetProperty("lastReadCpuMilliseconds").GetDouble():0.0} ms of CPU), reading cost {duty:P1} of one core and took {s.GetProperty("wallDutyCycle").GetDouble():P1} of wall time over the last 10 s (cap {cap:P0}: {(duty <= cap * 1.05 ? "kept, within a twentieth" : "EXCEEDED")})"));
            }

            Console.WriteLine("\n== Steady state: 20 containers, 1,000 extra rules in a scratch chain, no browser open ==");
            await MeasureSteadyStateAsync(lab, app, port, net1, net2);
            return 0;
        }
        finally
        {
            if (!app.HasExited)
            {
                app.Kill(entireProcessTree: true);
                await app.WaitForExitAsync();
            }

            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<List<double>> MeasureLatencyAsync(LabScope lab, int port, string c2, string c1Ip, string bridge1, string bridge2, int pings, string work)
    {
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await BenchmarkBrowser.LaunchAsync(playwright, work);
        var page = await browser.NewPageAsync();
        await BenchmarkBrowser.SignInAsync(page, port, "/firewall");
        var cell = page.Locator($".rule[data-key$='-o {bridge1} -j DROP'] .pkts").First;
        await cell.WaitForAsync(new() { Timeout = 30_000 });

        // Record every change of the cell's text with the browser's wall clock (same machine clock as tcpdump).
        await cell.EvaluateAsync(@"el => {
            window.__changes = [];
            new MutationObserver(() => window.__changes.push(Date.now())).observe(el, { characterData: true, childList: true, subtree: true });
        }");

        // Steady state, not start-up: the first reads of a new process are slow (JIT), and the collector paces itself by
        // what reads cost; pings start once it has made 40 reads since start (or after 30 s).
        using (var http = AppProcess.Client(port))
        {
            var warm = Stopwatch.StartNew();
            long reads = 0;
            while (warm.Elapsed < TimeSpan.FromSeconds(30))
            {
                if ((reads = (await CollectorStatusAsync(http, port)).GetProperty("reads").GetInt64()) >= 40)
                {
                    break;
                }

                await Task.Delay(250);
            }

            Console.WriteLine($"collector warmed up: {reads} reads since start before the first ping");
        }

        var sends = new List<double>();
        using var tcpdump = CircuitsBenchmark.StartTcpdump(bridge2, sends);
        await Task.Delay(1000);

        // Pings 2 s apart, so each one's counter change is seen on its own.
        await lab.DockerAsync(["exec", c2, "ping", "-c", pings.ToString(CultureInfo.InvariantCulture), "-i", "2", "-W", "1", c1Ip]).ContinueWith(_ => { });
        await Task.Delay(2000);
        tcpdump.Kill();
        await tcpdump.WaitForExitAsync();
        var changes = (await page.EvaluateAsync<double[]>("() => window.__changes")).ToList();
        var latencies = new List<double>();
        foreach (var s in sends)
        {
            var change = changes.FirstOrDefault(c => c >= s);
            if (change > 0 && change - s < 5000)
            {
                latencies.Add(change - s);
            }
        }

        Console.WriteLine($"echo requests seen by tcpdump: {sends.Count}; DOM changes seen: {changes.Count}");
        return latencies;
    }

    private static async Task MeasureSteadyStateAsync(LabScope lab, Process app, int port, string net1, string net2)
    {
        for (var i = 3; i <= 20; i++)
        {
            await lab.RunBusyboxAsync($"c{i}", i % 2 == 0 ? net1 : net2);
        }

        var runner = new ProcessRunner();
        var chain = $"NETLAB-BENCH-{lab.Id}";
        var bodies = Enumerable.Range(0, 1000).Select(i => Generated.RuleBody(i, lab.Tag)).ToList();
        var load = new StringBuilder($"*filter\n:{chain} - [0:0]\n");
        bodies.ForEach(b => load.Append("-A ").Append(chain).Append(' ').Append(b).Append('\n'));
        load.Append("COMMIT\n");
        var loaded = await runner.RunAsync("iptables-restore", ["-w", "5", "--noflush"], load.ToString(), TimeSpan.FromMinutes(2));
        if (!loaded.Succeeded)
        {
            Console.WriteLine($"could not load the scratch chain: {loaded.Message}");
            return;
        }

        try
        {
            await Task.Delay(TimeSpan.FromSeconds(15));
            var (cpu0, wall0) = (CpuSeconds(app.Id), Stopwatch.GetTimestamp());
            await Task.Delay(TimeSpan.FromSeconds(30));
            var cpu = (CpuSeconds(app.Id) - cpu0) / Stopwatch.GetElapsedTime(wall0).TotalSeconds;
            using var http = AppProcess.Client(port);
            var status = await http.GetStringAsync($"http://127.0.0.1:{port}/api/collector");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"dashboard process (collector + web server): CPU {cpu * 100:0.0} % of one core over 30 s, RSS {RssMiB(app.Id):0} MiB"));
            Console.WriteLine($"collector status: {status}");
            Console.WriteLine(cpu <= 0.05 ? "target ≤ 5 % of one core: MET" : "target ≤ 5 % of one core: NOT MET");
        }
        finally
        {
            var remove = new StringBuilder("*filter\n");
            bodies.ForEach(b => remove.Append("-D ").Append(chain).Append(' ').Append(b).Append('\n'));
            remove.Append("COMMIT\n");
            var r1 = await runner.RunAsync("iptables-restore", ["-w", "5", "--noflush"], remove.ToString(), TimeSpan.FromMinutes(2));
            var r2 = await runner.RunAsync("iptables", ["-w", "5", "-t", "filter", "-X", chain], TimeSpan.FromMinutes(1));
            Console.WriteLine(r1.Succeeded && r2.Succeeded ? $"scratch chain {chain} removed" : $"CLEANUP PROBLEM: {r1.Message} {r2.Message}");
        }
    }

    /// <summary>utime + stime of a process, from /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s).</summary>
    internal static double CpuSeconds(int pid) => StatCpuSeconds($"/proc/{pid}/stat");

    /// <summary>utime + stime from a procfs <c>stat</c> file: a process's, or a thread's (<c>/proc/self/task/TID/stat</c>).</summary>
    internal static double StatCpuSeconds(string statPath)
    {
        var stat = File.ReadAllText(statPath);
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    internal static double RssMiB(int pid)
    {
        var m = RssLine().Match(File.ReadAllText($"/proc/{pid}/status"));
        return m.Success ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) / 1024.0 : double.NaN;
    }

    [GeneratedRegex(@"VmRSS:\s+(\d+) kB")]
    private static partial Regex RssLine();

    internal static double Pct(List<double> sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];

    /// <summary>The app's <c>GET /api/collector</c>, as JSON.</summary>
    private static async Task<System.Text.Json.JsonElement> CollectorStatusAsync(HttpClient http, int port) =>
        System.Text.Json.JsonSerializer.Deserialize<System.Text.Json.JsonElement>(await http.GetStringAsync($"http://127.0.0.1:{port}/api/collector"));

    private static Process StartApp(string dll, int port, string work) => dll == AppProcess.ReleaseDll
        ? AppProcess.Start(port, work)
        : throw new ArgumentException("the benchmark measures the Release build", nameof(dll));

    internal static async Task WaitForAsync(string url)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AppProcess.AdminToken);
        for (var i = 0; i < 60; i++)
        {
            try
            {
                await http.GetStringAsync(url);
                return;
            }
            catch (Exception) when (i < 59)
            {
                await Task.Delay(500);
            }
        }
    }
}
