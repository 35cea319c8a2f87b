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

    public static async Task<int> RunAsync(int n)
    {
        if (!File.Exists(AppProcess.ReleaseDll))
        {
            Console.Error.WriteLine($"build first: dotnet build -c Release ({AppProcess.ReleaseDll} missing)");
            return 1;
        }

        await using var lab = new LabScope();
        var (_, _, bridge1, bridge2, _, c2, c1Ip) = await lab.CreateSeedLabAsync();
        var work = Directory.CreateTempSubdirectory("netlab-circuits-").FullName;
        var port = AppProcess.FreePort();
        using var app = AppProcess.Start(port, work);
        using var http = AppProcess.Client(port);
        try
        {
            await LiveBenchmark.WaitForAsync($"http://127.0.0.1:{port}/api/collector");
            await Task.Delay(TimeSpan.FromSeconds(10));
            var baseline = await DiagnosticsAsync(http, collect: true);
            var baselineRss = LiveBenchmark.RssMiB(app.Id);
            await HeapDumpAsync(app.Id, "baseline");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"baseline: {baseline.Circuits} circuits, {baseline.LiveSubscribers} live subscribers, managed heap {Mib(baseline.ManagedHeapBytes):0.0} MiB, RSS {baselineRss:0} MiB"));

            using var playwright = await Playwright.CreateAsync();
            await using var browser = await BenchmarkBrowser.LaunchAsync(playwright, work,
                "--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows");
            var context = await browser.NewContextAsync();
            var first = await context.NewPageAsync();
            await BenchmarkBrowser.SignInAsync(first, port, "/firewall");

            var cellSelector = $".rule[data-key$='-o {bridge1} -j DROP'] .pkts";
            var firewallPages = new List<IPage> { first };
            var opening = Stopwatch.StartNew();
            await ReadyAsync(first, cellSelector);
            while (firewallPages.Count < n)
            {
                // Ten at a time: the 2-core machine opens them all without time-outs, and each waits for its own circuit.
                var batch = await Task.WhenAll(Enumerable.Range(0, Math.Min(10, n - firewallPages.Count)).Select(async _ =>
                {
                    var p = await context.NewPageAsync();
                    await p.GotoAsync($"http://127.0.0.1:{port}/firewall");
                    await ReadyAsync(p, cellSelector);
                    return p;
                }));
                firewallPages.AddRange(batch);
                Console.Write(string.Create(CultureInfo.InvariantCulture, $"\ropened {firewallPages.Count}/{n} Firewall pages ({opening.Elapsed.TotalSeconds:0} s)"));
            }

            Console.WriteLine();
            var overview = await context.NewPageAsync();
            await overview.GotoAsync($"http://127.0.0.1:{port}/");
            await overview.Locator("[data-testid='circuit'][data-interactive='true']").WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 60_000 });
            var isolation = await context.NewPageAsync();
            await isolation.GotoAsync($"http://127.0.0.1:{port}/isolation");
            await isolation.Locator("[data-testid='circuit'][data-interactive='true']").WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 60_000 });
            var open = n + 2;

            foreach (var p in firewallPages)
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
            foreach (var p in firewallPages)
            {
                visible += await p.EvaluateAsync<string>("() => document.visibilityState") == "visible" ? 1 : 0;
            }

            // Headless Chromium gives each page a window of its own: every page renders, as on a person's screen.
            Console.WriteLine($"pages the browser says are visible: {visible}/{n}");
            await Task.Delay(TimeSpan.FromSeconds(5));
            var loaded = await DiagnosticsAsync(http, collect: true);
            var loadedRss = LiveBenchmark.RssMiB(app.Id);
            await HeapDumpAsync(app.Id, "loaded");
            var perCircuitKb = (loaded.ManagedHeapBytes - baseline.ManagedHeapBytes) / 1024.0 / open;
            var perCircuitRssKb = (loadedRss - baselineRss) * 1024 / open;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{open} pages open ({n} Firewall, Overview, isolation): {loaded.Circuits} circuits, {loaded.LiveSubscribers} live subscribers; managed heap {Mib(loaded.ManagedHeapBytes):0.0} MiB, RSS {loadedRss:0} MiB"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"memory per open page: managed heap {perCircuitKb:0} KB, RSS {perCircuitRssKb:0} KB (target ≤ 400 KB: {(perCircuitKb <= 400 ? "MET" : "NOT MET")} on the managed heap)"));

            // 4 echo requests a second for 20 s, each one counted by the isolation DROP of c1's bridge.
            var sends = new List<double>();
            using var tcpdump = StartTcpdump(bridge2, sends);
            await Task.Delay(1000);
            // Where one Firewall page's renderer spends its time (Chromium's own counters, through the DevTools protocol).
            var cdp = await context.NewCDPSessionAsync(first);
            await cdp.SendAsync("Performance.enable");
            var renderer0 = await RendererMetricsAsync(cdp);
            var profiling = Environment.GetEnvironmentVariable("NETLAB_CPUPROFILE") is { Length: > 0 };
            if (profiling)
            {
                await cdp.SendAsync("Profiler.enable");
                await cdp.SendAsync("Profiler.start");
            }
            var (cpu0, chromium0, wall0) = (LiveBenchmark.CpuSeconds(app.Id), BrowserCpuSeconds(), Stopwatch.GetTimestamp());
            await lab.DockerAsync(["exec", c2, "ping", "-c", "80", "-i", "0.25", "-W", "1", c1Ip]).ContinueWith(_ => { });
            var window = Stopwatch.GetElapsedTime(wall0).TotalSeconds;
            var cpu = (LiveBenchmark.CpuSeconds(app.Id) - cpu0) / window;
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

            var latencies = new List<double>();
            var delivery = new List<double>();
            var pagesSeeing = 0;
            var missed = 0;
            foreach (var p in firewallPages)
            {
                var changes = await p.EvaluateAsync<double[]>("() => window.__changes");
                var reads = await p.EvaluateAsync<double[]>("() => window.__reads");
                var values = await p.EvaluateAsync<double[]>("() => window.__values");
                var start = await p.EvaluateAsync<double>("() => window.__start");
                delivery.AddRange(changes.Zip(reads).Where(x => x.Second > 0).Select(x => x.First - x.Second));
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
                            latencies.Add(changes[shown] - ordered[k]);
                        }
                        else
                        {
                            missed++;
                        }
                    }
                }
            }

            latencies.Sort();
            delivery.Sort();
            var collector = await http.GetFromJsonAsync<System.Text.Json.JsonElement>("api/collector");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"collector: {collector.GetProperty("achievedRateHz").GetDouble():0.00} reads/s (target {collector.GetProperty("targetRateHz").GetDouble():0}), last read {collector.GetProperty("lastReadMilliseconds").GetDouble():0} ms ({collector.GetProperty("lastReadCpuMilliseconds").GetDouble():0.0} ms of CPU), reading cost {collector.GetProperty("dutyCycle").GetDouble() * 100:0.0} % of one core and took {collector.GetProperty("wallDutyCycle").GetDouble() * 100:0.0} % of wall time over the last 10 s"));
            if (delivery.Count > 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"read → screen (the dashboard's live path, from the collector's read to each page's DOM) over {delivery.Count} changes: p50 {LiveBenchmark.Pct(delivery, 0.5):0} ms, p95 {LiveBenchmark.Pct(delivery, 0.95):0} ms, max {delivery[^1]:0} ms"));
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"echo requests seen by tcpdump: {sends.Count} in {Stopwatch.GetElapsedTime(wall0).TotalSeconds:0} s; pages whose counter moved: {pagesSeeing}/{n}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"dashboard CPU while the counter moves: {cpu * 100:0.0} % of one core (target ≤ 30 %: {(cpu <= 0.30 ? "MET" : "NOT MET")}); Chromium (all its processes): {chromiumCpu * 100:0} % of one core"));
            if (latencies.Count > 0)
            {
                var p95 = LiveBenchmark.Pct(latencies, 0.95);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"counter DOM latency (each request → the first time a page's cell shows its count) over {latencies.Count} (page, request) pairs, {missed} never shown: p50 {LiveBenchmark.Pct(latencies, 0.5):0} ms, p95 {p95:0} ms, max {latencies[^1]:0} ms (target p95 ≤ 300 ms: {(p95 <= 300 ? "MET" : "NOT MET")})"));
            }

            // Close every page as a user closing tabs would (the unload handlers run), then the context.
            foreach (var p in firewallPages.Append(overview).Append(isolation))
            {
                await p.CloseAsync(new() { RunBeforeUnload = true });
            }

            await context.CloseAsync();
            var closing = Stopwatch.StartNew();
            var after = await DiagnosticsAsync(http, collect: false);
            while ((after.Circuits > baseline.Circuits || after.LiveSubscribers > baseline.LiveSubscribers) && closing.Elapsed < TimeSpan.FromMinutes(4))
            {
                await Task.Delay(TimeSpan.FromSeconds(2));
                after = await DiagnosticsAsync(http, collect: false);
            }

            after = await DiagnosticsAsync(http, collect: true);
            var afterRss = LiveBenchmark.RssMiB(app.Id);
            var back = after.Circuits <= baseline.Circuits && after.LiveSubscribers <= baseline.LiveSubscribers;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"after closing all pages ({closing.Elapsed.TotalSeconds:0} s): {after.Circuits} circuits, {after.LiveSubscribers} live subscribers (baseline {baseline.LiveSubscribers}: {(back ? "BACK" : "NOT BACK")}); managed heap {Mib(after.ManagedHeapBytes):0.0} MiB (baseline {Mib(baseline.ManagedHeapBytes):0.0}, {Mib(after.ManagedHeapBytes - baseline.ManagedHeapBytes):+0.0;-0.0} MiB), RSS {afterRss:0} MiB"));
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
