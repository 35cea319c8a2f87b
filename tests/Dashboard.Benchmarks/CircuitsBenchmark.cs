using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using Dashboard.TestSupport;
using Microsoft.Playwright;

namespace Dashboard.Benchmarks;

/// <summary>
/// Issue 14's benchmark: N real Chromium pages (one browser, one signed-in context) open on the Firewall page, plus the
/// Overview and the isolation page, while a lab container's ping moves the isolation DROP's counter 4 times a second.
/// Prints the dashboard process's CPU share, its memory growth per open page (managed heap after a full collection,
/// and RSS), the counter's DOM latency p95 across all pages (tcpdump's kernel timestamp of each echo request → the
/// first change of each page's pkts cell after it, same clock), and, after closing every page, the circuits, live
/// subscribers and memory against the baseline. Needs root, the lab host (scripts/lab-setup.sh) and a Release build.
/// </summary>
internal static class CircuitsBenchmark
{
    private sealed record Diagnostics(int Circuits, int LiveSubscribers, long ManagedHeapBytes, long WorkingSetBytes, int Gen2Collections);

    /// <summary>One dashboard process the benchmark measures: its name, process and an administrator's client.</summary>
    private sealed record Replica(string Name, Process App, HttpClient Http)
    {
        public Diagnostics Baseline { get; set; } = null!;

        public double BaselineRss { get; set; }

        public int Open { get; set; }

        public double Cpu0 { get; set; }
    }

    /// <summary>
    /// <paramref name="replicas"/> 1: one dashboard. 2: issue 20's split, two replicas on one PostgreSQL database and one
    /// Redis behind Debian's nginx running deploy/nginx/netlab.conf, the pages alternating between two browser contexts
    /// whose stickiness cookie nginx places on replica A and on replica B; every figure is then printed per replica.
    /// </summary>
    public static async Task<int> RunAsync(int n, int replicas = 1)
    {
        if (!File.Exists(AppProcess.ReleaseDll))
        {
            Console.Error.WriteLine($"build first: dotnet build -c Release ({AppProcess.ReleaseDll} missing)");
            return 1;
        }

        if (replicas is not (1 or 2))
        {
            Console.Error.WriteLine("replicas: 1 or 2");
            return 1;
        }

        await using var lab = new LabScope();
        var (_, _, bridge1, bridge2, _, c2, c1Ip) = await lab.CreateSeedLabAsync();
        var work = Directory.CreateTempSubdirectory("netlab-circuits-").FullName;
        var apps = new List<Replica>();
        string? connection = null;
        NginxProxy? nginx = null;
        try
        {
            string origin;
            if (replicas == 1)
            {
                var port = AppProcess.FreePort();
                apps.Add(new Replica("dashboard", AppProcess.Start(port, work), AppProcess.Client(port)));
                origin = $"http://127.0.0.1:{port}";
            }
            else
            {
                var redis = RedisServer.Connection ?? throw new InvalidOperationException("no Redis: run scripts/redis.sh start (lab-setup does)");
                connection = await PostgresServer.CreateDatabaseAsync("netlab_bench_circuits");
                var instance = "b" + Guid.NewGuid().ToString("N")[..8];
                foreach (var name in new[] { "replica-a", "replica-b" })
                {
                    var port = AppProcess.FreePort();
                    var replica = new Replica(name, AppProcess.StartReplica(port, work, instance, connection, name, redis), AppProcess.Client(port));
                    apps.Add(replica);
                    if (name == "replica-a")
                    {
                        // A first, so that it holds the duties before B starts.
                        for (var i = 0; i < 120 && !(await AppProcess.ReplicaAsync(replica.Http)).GetProperty("holdsDuties").GetBoolean(); i++)
                        {
                            await Task.Delay(500);
                        }
                    }
                }

                nginx = await NginxProxy.StartAsync([.. apps.Select(r => r.Http.BaseAddress!.Port)]);
                origin = $"http://127.0.0.1:{nginx.Port}";
            }

            foreach (var r in apps)
            {
                await LiveBenchmark.WaitForAsync(new Uri(r.Http.BaseAddress!, "api/collector").ToString());
            }

            await Task.Delay(TimeSpan.FromSeconds(10));
            foreach (var r in apps)
            {
                r.Baseline = await DiagnosticsAsync(r.Http, collect: true);
                r.BaselineRss = LiveBenchmark.RssMiB(r.App.Id);
                await HeapDumpAsync(r.App.Id, $"baseline-{r.Name}");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Name} baseline: {r.Baseline.Circuits} circuits, {r.Baseline.LiveSubscribers} live subscribers, managed heap {Mib(r.Baseline.ManagedHeapBytes):0.0} MiB, RSS {r.BaselineRss:0} MiB"));
            }

            using var playwright = await Playwright.CreateAsync();
            await using var browser = await BenchmarkBrowser.LaunchAsync(playwright, work,
                "--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows");

            // One browser context per replica (one signed-in session each); with nginx, each context's stickiness cookie
            // is one nginx places on that replica.
            var contexts = new List<IBrowserContext>();
            foreach (var r in apps)
            {
                var context = await browser.NewContextAsync();
                if (nginx is not null)
                {
                    using var front = AppProcess.Client(nginx.Port);
                    await context.AddCookiesAsync([new Cookie { Name = NginxProxy.StickyCookie, Value = await NginxProxy.StickyCookieForAsync(front, r.Name), Url = origin }]);
                }

                contexts.Add(context);
            }

            var cellSelector = $".rule[data-key$='-o {bridge1} -j DROP'] .pkts";
            var firewallPages = new List<(IPage Page, Replica On)>();
            for (var i = 0; i < apps.Count && i < n; i++)
            {
                var first = await contexts[i].NewPageAsync();
                await BenchmarkBrowser.SignInAsync(first, origin, "/firewall");
                await ReadyAsync(first, cellSelector);
                firewallPages.Add((first, apps[i]));
            }

            var opening = Stopwatch.StartNew();
            while (firewallPages.Count < n)
            {
                // Ten at a time: the 2-core machine opens them all without time-outs, and each waits for its own circuit.
                var batch = await Task.WhenAll(Enumerable.Range(firewallPages.Count, Math.Min(10, n - firewallPages.Count)).Select(async k =>
                {
                    var p = await contexts[k % apps.Count].NewPageAsync();
                    await p.GotoAsync($"{origin}/firewall");
                    await ReadyAsync(p, cellSelector);
                    return (p, apps[k % apps.Count]);
                }));
                firewallPages.AddRange(batch);
                Console.Write(string.Create(CultureInfo.InvariantCulture, $"\ropened {firewallPages.Count}/{n} Firewall pages ({opening.Elapsed.TotalSeconds:0} s)"));
            }

            Console.WriteLine();
            var overview = await contexts[0].NewPageAsync();
            await overview.GotoAsync($"{origin}/");
            await overview.Locator("[data-testid='circuit'][data-interactive='true']").WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 60_000 });
            var isolation = await contexts[0].NewPageAsync();
            await isolation.GotoAsync($"{origin}/isolation");
            await isolation.Locator("[data-testid='circuit'][data-interactive='true']").WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 60_000 });
            foreach (var r in apps)
            {
                r.Open = firewallPages.Count(p => p.On == r) + (r == apps[0] ? 2 : 0);
            }

            foreach (var (p, _) in firewallPages)
            {
                // Each change: the browser's clock, and the read time of the counters it shows (the page's data-read-at,
                // updated in the same render batch): ping → screen, and the dashboard's own part, read → screen.
                // A change is the cell's new value (the chain's tbody is watched, in case a new ruleset replaces the row).
                await p.Locator(cellSelector).First.EvaluateAsync(@"(el, selector) => {
                    window.__changes = [];
                    window.__reads = [];
                    window.__values = [];
                    window.__start = Number(el.textContent);
                    let last = el.textContent;
                    // The observer shares the page's CPU with what it measures: it looks the cell up again only when the
                    // row was replaced.
                    let cell = el;
                    const source = document.querySelector('[data-testid=firewall-source]');
                    new MutationObserver(() => {
                        if (!cell.isConnected) cell = document.querySelector(selector);
                        const text = cell?.textContent;
                        if (text === undefined || text === last) return;
                        last = text;
                        window.__changes.push(Date.now());
                        window.__values.push(Number(text));
                        window.__reads.push(Number((source.isConnected ? source : document.querySelector('[data-testid=firewall-source]'))?.dataset.readAt ?? 0));
                    }).observe(el.closest('tbody'), { characterData: true, childList: true, subtree: true });
                }", cellSelector);
            }

            var visible = 0;
            foreach (var (p, _) in firewallPages)
            {
                visible += await p.EvaluateAsync<string>("() => document.visibilityState") == "visible" ? 1 : 0;
            }

            // Headless Chromium gives each page a window of its own: every page renders, as on a person's screen.
            Console.WriteLine($"pages the browser says are visible: {visible}/{n}");
            await Task.Delay(TimeSpan.FromSeconds(5));
            foreach (var r in apps)
            {
                var loaded = await DiagnosticsAsync(r.Http, collect: true);
                var loadedRss = LiveBenchmark.RssMiB(r.App.Id);
                await HeapDumpAsync(r.App.Id, $"loaded-{r.Name}");
                var perCircuitKb = (loaded.ManagedHeapBytes - r.Baseline.ManagedHeapBytes) / 1024.0 / r.Open;
                var perCircuitRssKb = (loadedRss - r.BaselineRss) * 1024 / r.Open;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Name}: {r.Open} pages open: {loaded.Circuits} circuits, {loaded.LiveSubscribers} live subscribers; managed heap {Mib(loaded.ManagedHeapBytes):0.0} MiB, RSS {loadedRss:0} MiB"));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Name}: memory per open page: managed heap {perCircuitKb:0} KB, RSS {perCircuitRssKb:0} KB (target ≤ 400 KB: {(perCircuitKb <= 400 ? "MET" : "NOT MET")} on the managed heap)"));
            }

            // 4 echo requests a second for 20 s, each one counted by the isolation DROP of c1's bridge.
            var sends = new List<double>();
            using var tcpdump = StartTcpdump(bridge2, sends);
            await Task.Delay(1000);
            // Where one Firewall page's renderer spends its time (Chromium's own counters, through the DevTools protocol).
            var cdp = await contexts[0].NewCDPSessionAsync(firewallPages[0].Page);
            await cdp.SendAsync("Performance.enable");
            var renderer0 = await RendererMetricsAsync(cdp);
            var profiling = Environment.GetEnvironmentVariable("NETLAB_CPUPROFILE") is { Length: > 0 };
            if (profiling)
            {
                await cdp.SendAsync("Profiler.enable");
                await cdp.SendAsync("Profiler.start");
            }

            foreach (var r in apps)
            {
                r.Cpu0 = LiveBenchmark.CpuSeconds(r.App.Id);
            }

            var (chromium0, wall0) = (BrowserCpuSeconds(), Stopwatch.GetTimestamp());
            await lab.DockerAsync(["exec", c2, "ping", "-c", "80", "-i", "0.25", "-W", "1", c1Ip]).ContinueWith(_ => { });
            var window = Stopwatch.GetElapsedTime(wall0).TotalSeconds;
            var cpu = apps.ToDictionary(r => r, r => (LiveBenchmark.CpuSeconds(r.App.Id) - r.Cpu0) / window);
            var chromiumCpu = (BrowserCpuSeconds() - chromium0) / window;
            if (profiling)
            {
                PrintProfile(await cdp.SendAsync("Profiler.stop"));
            }

            var renderer = (await RendererMetricsAsync(cdp)).ToDictionary(m => m.Key, m => (m.Value - renderer0.GetValueOrDefault(m.Key)) / window * 1000);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"one Firewall page's renderer, ms per second: tasks {renderer.GetValueOrDefault("TaskDuration"):0}, script {renderer.GetValueOrDefault("ScriptDuration"):0}, style {renderer.GetValueOrDefault("RecalcStyleDuration"):0}, layout {renderer.GetValueOrDefault("LayoutDuration"):0} (the rest of tasks: paint, parsing, messages); ×{n} pages"));
            await Task.Delay(2000);
            tcpdump.Kill();
            await tcpdump.WaitForExitAsync();

            var latencies = apps.ToDictionary(r => r, _ => new List<double>());
            var delivery = apps.ToDictionary(r => r, _ => new List<double>());
            var pagesSeeing = 0;
            var missed = 0;
            foreach (var (p, on) in firewallPages)
            {
                var changes = await p.EvaluateAsync<double[]>("() => window.__changes");
                var reads = await p.EvaluateAsync<double[]>("() => window.__reads");
                var values = await p.EvaluateAsync<double[]>("() => window.__values");
                var start = await p.EvaluateAsync<double>("() => window.__start");
                delivery[on].AddRange(changes.Zip(reads).Where(x => x.Second > 0).Select(x => x.First - x.Second));
                pagesSeeing += changes.Length > 0 ? 1 : 0;
                lock (sends)
                {
                    // The k-th echo request is on screen when the cell first shows at least k more packets than at the
                    // start (each request is counted once by the DROP rule): not merely at the next change of the cell,
                    // which may still show an older read when the page lags behind.
                    var ordered = sends.Order().ToList();
                    for (var k = 0; k < ordered.Count; k++)
                    {
                        var shown = Array.FindIndex(values, v => v >= start + k + 1);
                        if (shown >= 0)
                        {
                            latencies[on].Add(changes[shown] - ordered[k]);
                        }
                        else
                        {
                            missed++;
                        }
                    }
                }
            }

            foreach (var r in apps)
            {
                var collector = await r.Http.GetFromJsonAsync<System.Text.Json.JsonElement>("api/collector");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Name} collector: {collector.GetProperty("achievedRateHz").GetDouble():0.00} reads/s (target {collector.GetProperty("targetRateHz").GetDouble():0}), last read {collector.GetProperty("lastReadMilliseconds").GetDouble():0} ms ({collector.GetProperty("lastReadCpuMilliseconds").GetDouble():0.0} ms of CPU), reading cost {collector.GetProperty("dutyCycle").GetDouble() * 100:0.0} % of one core and took {collector.GetProperty("wallDutyCycle").GetDouble() * 100:0.0} % of wall time over the last 10 s"));
                var d = delivery[r];
                d.Sort();
                if (d.Count > 0)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{r.Name} read → screen (the dashboard's live path, from the collector's read to each page's DOM) over {d.Count} changes: p50 {LiveBenchmark.Pct(d, 0.5):0} ms, p95 {LiveBenchmark.Pct(d, 0.95):0} ms, max {d[^1]:0} ms"));
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Name} CPU while the counter moves: {cpu[r] * 100:0.0} % of one core (target ≤ 30 %: {(cpu[r] <= 0.30 ? "MET" : "NOT MET")})"));
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"echo requests seen by tcpdump: {sends.Count} in {Stopwatch.GetElapsedTime(wall0).TotalSeconds:0} s; pages whose counter moved: {pagesSeeing}/{n}; Chromium (all its processes): {chromiumCpu * 100:0} % of one core"));
            foreach (var (name, l) in apps.Select(r => (r.Name, latencies[r])).Append(("all pages", latencies.Values.SelectMany(x => x).ToList())).Where(x => apps.Count > 1 || x.Item1 != "all pages"))
            {
                if (l.Count == 0)
                {
                    continue;
                }

                l.Sort();
                var p95 = LiveBenchmark.Pct(l, 0.95);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name}: counter DOM latency (each request → the first time a page's cell shows its count) over {l.Count} (page, request) pairs: p50 {LiveBenchmark.Pct(l, 0.5):0} ms, p95 {p95:0} ms, max {l[^1]:0} ms (target p95 ≤ 300 ms: {(p95 <= 300 ? "MET" : "NOT MET")})"));
            }

            Console.WriteLine($"(page, request) pairs never shown: {missed}");

            // Close every page as a user closing tabs would (the unload handlers run), then the contexts.
            foreach (var p in firewallPages.Select(p => p.Page).Append(overview).Append(isolation))
            {
                await p.CloseAsync(new() { RunBeforeUnload = true });
            }

            foreach (var context in contexts)
            {
                await context.CloseAsync();
            }

            foreach (var r in apps)
            {
                var closing = Stopwatch.StartNew();
                var after = await DiagnosticsAsync(r.Http, collect: false);
                while ((after.Circuits > r.Baseline.Circuits || after.LiveSubscribers > r.Baseline.LiveSubscribers) && closing.Elapsed < TimeSpan.FromMinutes(4))
                {
                    await Task.Delay(TimeSpan.FromSeconds(2));
                    after = await DiagnosticsAsync(r.Http, collect: false);
                }

                after = await DiagnosticsAsync(r.Http, collect: true);
                var afterRss = LiveBenchmark.RssMiB(r.App.Id);
                var back = after.Circuits <= r.Baseline.Circuits && after.LiveSubscribers <= r.Baseline.LiveSubscribers;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Name} after closing all pages ({closing.Elapsed.TotalSeconds:0} s more): {after.Circuits} circuits, {after.LiveSubscribers} live subscribers (baseline {r.Baseline.LiveSubscribers}: {(back ? "BACK" : "NOT BACK")}); managed heap {Mib(after.ManagedHeapBytes):0.0} MiB (baseline {Mib(r.Baseline.ManagedHeapBytes):0.0}, {Mib(after.ManagedHeapBytes - r.Baseline.ManagedHeapBytes):+0.0;-0.0} MiB), RSS {afterRss:0} MiB"));
            }

            return 0;
        }
        finally
        {
            foreach (var r in apps)
            {
                if (!r.App.HasExited)
                {
                    r.App.Kill(entireProcessTree: true);
                    await r.App.WaitForExitAsync();
                }

                r.App.Dispose();
                r.Http.Dispose();
            }

            nginx?.Dispose();
            if (connection is not null)
            {
                await PostgresServer.DropDatabaseAsync(connection);
            }

            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>
    /// With <c>NETLAB_GCDUMP</c> set to a folder (and dotnet-gcdump on PATH or in ~/.dotnet/tools), the app's heap is
    /// dumped there at the baseline and with every page open, to see per type what a circuit holds
    /// (<c>dotnet-gcdump report</c>; with dotnet-dump in ~/.dotnet/tools also a heap dump for SOS). It pauses the app,
    /// so latency figures of such a run are not quoted.
    /// </summary>
    private static async Task HeapDumpAsync(int pid, string name)
    {
        if (Environment.GetEnvironmentVariable("NETLAB_GCDUMP") is not { Length: > 0 } folder)
        {
            return;
        }

        var tool = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", "dotnet-gcdump");
        var r = await new Dashboard.Host.Processes.ProcessRunner().RunAsync(File.Exists(tool) ? tool : "dotnet-gcdump",
            ["collect", "-p", pid.ToString(CultureInfo.InvariantCulture), "-o", Path.Combine(folder, name + ".gcdump")], TimeSpan.FromMinutes(3));
        Console.WriteLine($"heap dump {name}: {(r.Succeeded ? Path.Combine(folder, name + ".gcdump") : r.Message)}");
        var dump = Path.Combine(Path.GetDirectoryName(tool)!, "dotnet-dump");
        if (File.Exists(dump))
        {
            // A whole heap dump as well, for SOS's exact sizes per type (dotnet-dump analyze FILE -c "dumpheap -stat").
            var d = await new Dashboard.Host.Processes.ProcessRunner().RunAsync(dump, ["collect", "-p", pid.ToString(CultureInfo.InvariantCulture), "--type", "Heap", "-o", Path.Combine(folder, name + ".dmp")], TimeSpan.FromMinutes(3));
            Console.WriteLine($"process dump {name}: {(d.Succeeded ? Path.Combine(folder, name + ".dmp") : d.Message)}");
        }
    }

    /// <summary>With <c>NETLAB_CPUPROFILE</c> set: one Firewall page's main-thread time by function (self time, V8's sampling profiler).</summary>
    private static void PrintProfile(System.Text.Json.JsonElement? result)
    {
        if (result is not { } r || !r.TryGetProperty("profile", out var profile))
        {
            return;
        }

        var names = new Dictionary<int, string>();
        foreach (var node in profile.GetProperty("nodes").EnumerateArray())
        {
            var frame = node.GetProperty("callFrame");
            var url = frame.GetProperty("url").GetString() ?? "";
            names[node.GetProperty("id").GetInt32()] = $"{frame.GetProperty("functionName").GetString()} {Path.GetFileName(url)}:{frame.GetProperty("lineNumber").GetInt32()}";
        }

        var self = new Dictionary<string, double>();
        var samples = profile.GetProperty("samples").EnumerateArray().Select(e => e.GetInt32()).ToList();
        var deltas = profile.GetProperty("timeDeltas").EnumerateArray().Select(e => e.GetDouble()).ToList();
        for (var i = 0; i < samples.Count - 1; i++)
        {
            var name = names[samples[i]];
            self[name] = self.GetValueOrDefault(name) + deltas[i + 1] / 1000;
        }

        var total = self.Values.Sum();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"profile of one page: {total:0} ms sampled"));
        foreach (var (name, ms) in self.OrderByDescending(x => x.Value).Take(30))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {ms,8:0.0} ms  {name}"));
        }
    }

    private static async Task<Dictionary<string, double>> RendererMetricsAsync(ICDPSession cdp)
    {
        var result = await cdp.SendAsync("Performance.getMetrics");
        var metrics = new Dictionary<string, double>();
        if (result is { } r && r.TryGetProperty("metrics", out var list))
        {
            // The durations, in seconds of the renderer's main thread since it started.
            foreach (var m in list.EnumerateArray().Where(m => m.GetProperty("name").GetString()!.EndsWith("Duration", StringComparison.Ordinal)))
            {
                metrics[m.GetProperty("name").GetString()!] = m.GetProperty("value").GetDouble();
            }
        }

        return metrics;
    }

    private static async Task ReadyAsync(IPage page, string cellSelector)
    {
        await page.Locator("[data-testid='circuit'][data-interactive='true']").WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 120_000 });
        await page.Locator(cellSelector).First.WaitForAsync(new() { Timeout = 120_000 });
    }

    private static async Task<Diagnostics> DiagnosticsAsync(HttpClient http, bool collect) =>
        (await http.GetFromJsonAsync<Diagnostics>(collect ? "api/diagnostics?collect=true" : "api/diagnostics"))!;

    /// <summary>CPU seconds of every Chromium process (the browser, its renderers and helpers), from /proc.</summary>
    private static double BrowserCpuSeconds()
    {
        var total = 0.0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            try
            {
                if (File.ReadAllText(Path.Combine(dir, "comm")).StartsWith("chrom", StringComparison.Ordinal))
                {
                    total += LiveBenchmark.CpuSeconds(pid);
                }
            }
            catch (IOException)
            {
                // The process ended meanwhile.
            }
        }

        return total;
    }

    private static double Mib(long bytes) => bytes / 1024.0 / 1024.0;

    /// <summary>tcpdump's kernel timestamp (ms) of each echo request seen on <paramref name="bridge"/>, appended to <paramref name="sends"/> (lock it to read).</summary>
    internal static Process StartTcpdump(string bridge, List<double> sends)
    {
        var tcpdump = new Process
        {
            StartInfo = new ProcessStartInfo("tcpdump") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false },
        };
        foreach (var a in new[] { "-tt", "-n", "-l", "-i", bridge, "icmp and icmp[icmptype] == 8" })
        {
            tcpdump.StartInfo.ArgumentList.Add(a);
        }

        tcpdump.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line && double.TryParse(line.Split(' ')[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var t))
            {
                lock (sends)
                {
                    sends.Add(t * 1000);
                }
            }
        };
        tcpdump.Start();
        tcpdump.BeginOutputReadLine();
        tcpdump.BeginErrorReadLine();
        return tcpdump;
    }
}
