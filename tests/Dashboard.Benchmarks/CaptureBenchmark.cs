using System.Diagnostics;
using System.Globalization;
using Dashboard.Host;
using Dashboard.Host.Capture;
using Dashboard.Host.Processes;
using Dashboard.TestSupport;
using Dashboard.App.Live;
using Microsoft.Extensions.Options;

namespace Dashboard.Benchmarks;

/// <summary>
/// Issues 4 and 15: packets per second through the whole capture pipeline (tcpdump → pcap reader → tally (a batch's first
/// 200 decoded, the rest counted per flow from header bytes) → the live feed the pages and the hub read), next to
/// <c>tcpdump -w /dev/null</c> alone and to libpcap read in this process, all on the same bridge at the same time and
/// with the same kernel ring size. With <c>parallel</c> above 1, that many pipeline captures run at once: each one's
/// accounting and their shares are printed. The dashboard's part of the CPU (this process, without the libpcap
/// reader's thread) and each tcpdump's are measured over the traffic. Traffic: lab containers ping one with
/// <c>ping -A</c> (as fast as the replies come), bounded by count and by seconds. Needs root and the lab host.
/// </summary>
internal static class CaptureBenchmark
{
    public static async Task<int> RunAsync(int senders, int parallel = 1, int bufferKiB = 2048, int seconds = 10)
    {
        await using var lab = new LabScope();
        var net = await lab.CreateNetworkAsync("bench");
        var bridge = "br-" + net[..12];
        var target = await lab.RunBusyboxAsync("target", lab.Name("bench"));
        var targetIp = await lab.IpOfAsync(target, lab.Name("bench"));
        var from = new List<string>();
        for (var i = 0; i < senders; i++)
        {
            from.Add(await lab.RunBusyboxAsync($"s{i}", lab.Name("bench")));
        }

        var feed = new LiveFeed(Options.Create(new DockerHostOptions()));
        long batches = 0;
        using var subscription = feed.Subscribe([LiveTopic.Captures()], e => Interlocked.Increment(ref batches));
        var relays = new List<Task>();
        var options = Options.Create(new DockerHostOptions { CaptureBufferKiB = bufferKiB });
        await using var captures = new CaptureService(new ProcessRunner(), Dashboard.TestSupport.RealTopology.Reader(), options);
        captures.SessionStarted += s =>
        {
            lock (relays)
            {
                relays.Add(Task.Run(() => CapturePump.RunAsync(s, (batch, final) =>
                {
                    feed.PacketsCaptured(s, batch, final);
                    return ValueTask.CompletedTask;
                })));
            }
        };

        var ring = bufferKiB.ToString(CultureInfo.InvariantCulture);
        Console.WriteLine($"== Capture on {bridge}: {parallel} pipeline capture(s), tcpdump -w /dev/null alone and libpcap in this process, each with a {bufferKiB} KiB kernel ring; {senders} containers ping one with ping -A for up to {seconds} s ==");
        using var reference = Process.Start(new ProcessStartInfo("tcpdump") { ArgumentList = { "-i", bridge, "--immediate-mode", "-w", "/dev/null", "-n", "-s", "262144", "-B", ring, "--", "icmp" }, RedirectStandardError = true, UseShellExecute = false })!;
        var referenceErr = reference.StandardError.ReadToEndAsync();
        var sessions = new List<CaptureSession>();
        for (var i = 0; i < parallel; i++)
        {
            sessions.Add(await captures.StartAsync(new CaptureRequest(bridge, "icmp")));
        }

        // The alternative reader, at the same time on the same bridge: libpcap in this process (SharpPcap).
        var inProcessPcap = Path.Combine(Path.GetTempPath(), $"netlab-bench-{lab.Id}-libpcap.pcap");
        using var inProcess = new LibpcapCapture(bridge, "icmp", inProcessPcap, bufferKiB * 1024);
        using var pumpStop = new CancellationTokenSource();
        var inProcessPump = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(CapturePump.DefaultInterval);
            while (await timer.WaitForNextTickAsync(pumpStop.Token).AsTask().ContinueWith(t => t.IsCompletedSuccessfully && t.Result))
            {
                inProcess.TakeBatch();
            }
        });
        await Task.Delay(1000);

        string[] outputs;
        double trafficSeconds;
        TimeSpan dashboardCpu, libpcapCpu;
        double[] tcpdumpCpu;
        double referenceCpu;
        var self = Process.GetCurrentProcess();
        try
        {
            var cpuBefore = self.TotalProcessorTime;
            var libpcapBefore = inProcess.ThreadCpu;
            var tcpdumpBefore = sessions.Select(s => LiveBenchmark.CpuSeconds(s.ProcessId)).ToArray();
            var referenceBefore = LiveBenchmark.CpuSeconds(reference.Id);

            // ping exits 1 when its -w deadline ends the run before -c is reached: the summary is what counts.
            var runner = new ProcessRunner();
            var sw = Stopwatch.StartNew();
            var pings = from.Select(s => runner.RunAsync("docker", ["exec", s, "ping", "-A", "-q", "-c", "1000000", "-W", "1", "-w", seconds.ToString(CultureInfo.InvariantCulture), targetIp], TimeSpan.FromSeconds(seconds + 30))).ToList();
            outputs = (await Task.WhenAll(pings)).Select(r => r.StdOut).ToArray();
            trafficSeconds = sw.Elapsed.TotalSeconds;
            await Task.Delay(500);
            self.Refresh();
            libpcapCpu = inProcess.ThreadCpu - libpcapBefore;
            dashboardCpu = self.TotalProcessorTime - cpuBefore - libpcapCpu;
            tcpdumpCpu = sessions.Select((s, i) => LiveBenchmark.CpuSeconds(s.ProcessId) - tcpdumpBefore[i]).ToArray();
            referenceCpu = LiveBenchmark.CpuSeconds(reference.Id) - referenceBefore;
        }
        finally
        {
            _ = Kill(reference.Id, 2);
            await reference.WaitForExitAsync();
            foreach (var s in sessions)
            {
                await s.StopAsync();
            }

            Task[] pending;
            lock (relays)
            {
                pending = [.. relays];
            }

            await Task.WhenAll(pending);
            await pumpStop.CancelAsync();
            await inProcessPump;
            inProcess.Stop();
        }

        var summaries = outputs.Select(o => LabScope.PingSummaryOf(o) ?? (0, 0)).ToList();
        var (sent, received) = (summaries.Sum(x => (long)x.Sent), summaries.Sum(x => (long)x.Received));
        var (refCapturedCount, refReceivedCount, refKernelDropCount) = CaptureSession.ParseCounts(await referenceErr);
        var refCaptured = refCapturedCount ?? 0;
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"traffic: {sent} echo requests sent, {received} replies, over {trafficSeconds:0.0} s → {sent + received} packets on the bridge"));
        Console.WriteLine(string.Create(inv, $"tcpdump -w /dev/null alone: {refCaptured} captured, {refReceivedCount} received by filter, {refKernelDropCount} dropped by kernel → {refCaptured / trafficSeconds:0} pkt/s; its CPU {referenceCpu / trafficSeconds:P1} of one core"));

        var delivered = new List<long>();
        var unaccountedTotal = 0L;
        for (var i = 0; i < sessions.Count; i++)
        {
            var stats = sessions[i].Stats;
            var view = feed.FindCapture(sessions[i].Id)!;
            var d = view.Shown + view.NotShown;
            delivered.Add(d);
            var unaccounted = stats.Read - d;
            var kernelGap = (stats.ReceivedByFilter ?? 0) - (stats.CapturedByTcpdump ?? 0) - (stats.DroppedByKernel ?? 0);
            unaccountedTotal += Math.Abs(unaccounted) + Math.Abs(kernelGap) + Math.Abs((stats.CapturedByTcpdump ?? 0) - stats.Read - stats.NotWritten);
            Console.WriteLine(string.Create(inv,
                $"pipeline #{i + 1}: received by filter {stats.ReceivedByFilter} = captured {stats.CapturedByTcpdump} + dropped by kernel {stats.DroppedByKernel} (gap {kernelGap}); read {stats.Read} (tcpdump lost {stats.NotWritten} as its stop interrupted a write); delivered to the feed {d} ({view.Shown} shown one by one, {view.NotShown} counted per flow, {stats.DecodedForFlow} of those decoded whole to find their flow); unaccounted {unaccounted} → {d / trafficSeconds:0} pkt/s, ratio to tcpdump alone {(refCaptured > 0 ? d / (double)refCaptured : 0):0.000}; its tcpdump's CPU {tcpdumpCpu[i] / trafficSeconds:P1}"));
        }

        Console.WriteLine(string.Create(inv, $"{batches} batches reached the feed; the dashboard's part (this process without the libpcap reader's thread: pcap reading, tally, pump, feed) used {dashboardCpu.TotalSeconds / trafficSeconds:P1} of one core (target ≤ 100 %)"));
        var total = delivered.Sum();
        var ratio = refCaptured > 0 ? delivered.Average() / refCaptured : 0;
        if (sessions.Count > 1)
        {
            var sumSquares = delivered.Sum(x => (double)x * x);
            var jain = sumSquares > 0 ? (double)total * total / (delivered.Count * sumSquares) : 0;
            Console.WriteLine(string.Create(inv, $"{sessions.Count} captures at once: delivered {string.Join(" / ", delivered)}; smallest/largest {(delivered.Max() > 0 ? delivered.Min() / (double)delivered.Max() : 0):0.000}, Jain's fairness index {jain:0.000} (1 = equal shares)"));
        }

        Console.WriteLine(string.Create(inv, $"pipeline: mean ratio to tcpdump alone {ratio:0.000} (target ≥ 0.9: {(ratio >= 0.9 && unaccountedTotal == 0 ? "MET" : "NOT MET")}); unaccounted {unaccountedTotal}"));
        var inProcessPps = inProcess.Delivered / trafficSeconds;
        var gap = inProcess.Kernel.Received - inProcess.Read - inProcess.Kernel.Dropped;
        Console.WriteLine(string.Create(inv,
            $"libpcap in process (SharpPcap, same ring, same tally, own pcap file of {new FileInfo(inProcessPcap).Length / 1024 / 1024} MiB): received {inProcess.Kernel.Received} = read {inProcess.Read} + dropped {inProcess.Kernel.Dropped} (gap {gap}), delivered {inProcess.Delivered} → {inProcessPps:0} pkt/s; ratio to tcpdump alone {(refCaptured > 0 ? inProcess.Delivered / (double)refCaptured : 0):0.000}, to the first pipeline {(delivered[0] > 0 ? inProcess.Delivered / (double)delivered[0] : 0):0.000}; its thread's CPU {libpcapCpu.TotalSeconds / trafficSeconds:P1}"));
        File.Delete(inProcessPcap);
        return 0;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);
}
