using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Dashboard.Host;
using Dashboard.Host.Capture;
using Dashboard.Host.Processes;
using Dashboard.TestSupport;
using Dashboard.App.Live;
using Microsoft.Extensions.Options;

namespace Dashboard.Benchmarks;

/// <summary>
/// Issue 4's benchmark: packets per second through the whole capture pipeline (tcpdump → pcap reader → PacketDotNet
/// tally (a batch's first 200 decoded, the rest counted per flow from header bytes) → the live feed the pages and the hub read), next to <c>tcpdump -w /dev/null</c>
/// alone on the same bridge at the same time. Traffic: several lab containers ping one with <c>ping -A</c> (as fast as the
/// replies come), bounded by count and by seconds. Needs root and the lab host (scripts/lab-setup.sh).
/// </summary>
internal static partial class CaptureBenchmark
{
    public static async Task<int> RunAsync(int senders, int seconds = 10)
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
        var relay = new TaskCompletionSource();
        await using var captures = new CaptureService(new ProcessRunner(), Dashboard.TestSupport.RealTopology.Reader(), Options.Create(new DockerHostOptions()));
        captures.SessionStarted += s => _ = Task.Run(async () =>
        {
            await CapturePump.RunAsync(s, (batch, final) =>
            {
                feed.PacketsCaptured(s, batch, final);
                return ValueTask.CompletedTask;
            });
            relay.TrySetResult();
        });

        Console.WriteLine($"== Capture pipeline vs tcpdump -w /dev/null on {bridge}: {senders} containers ping one with ping -A for up to {seconds} s ==");
        using var reference = Process.Start(new ProcessStartInfo("tcpdump") { ArgumentList = { "-i", bridge, "--immediate-mode", "-w", "/dev/null", "-n", "-s", "262144", "--", "icmp" }, RedirectStandardError = true, UseShellExecute = false })!;
        var referenceErr = reference.StandardError.ReadToEndAsync();
        var session = await captures.StartAsync(new CaptureRequest(bridge, "icmp"));

        // The alternative reader, at the same time on the same bridge: libpcap in this process (SharpPcap).
        var inProcessPcap = Path.Combine(Path.GetTempPath(), $"netlab-bench-{lab.Id}-libpcap.pcap");
        using var inProcess = new LibpcapCapture(bridge, "icmp", inProcessPcap);
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
        try
        {
            // ping exits 1 when its -w deadline ends the run before -c is reached: the summary is what counts.
            var runner = new ProcessRunner();
            var sw = Stopwatch.StartNew();
            var pings = from.Select(s => runner.RunAsync("docker", ["exec", s, "ping", "-A", "-q", "-c", "1000000", "-W", "1", "-w", seconds.ToString(CultureInfo.InvariantCulture), targetIp], TimeSpan.FromSeconds(seconds + 30))).ToList();
            outputs = (await Task.WhenAll(pings)).Select(r => r.StdOut).ToArray();
            trafficSeconds = sw.Elapsed.TotalSeconds;
            await Task.Delay(500);
        }
        finally
        {
            _ = Kill(reference.Id, 2);
            await reference.WaitForExitAsync();
            await session.StopAsync();
            await relay.Task;
            await pumpStop.CancelAsync();
            await inProcessPump;
            inProcess.Stop();
        }

        var sent = outputs.Sum(o => Count(PingSent(), o));
        var received = outputs.Sum(o => Count(PingReceived(), o));
        var refText = await referenceErr;
        var (refCapturedCount, _, refKernelDropCount) = CaptureSession.ParseCounts(refText);
        var (refCaptured, refKernelDrops) = (refCapturedCount ?? 0, refKernelDropCount ?? 0);
        var stats = session.Stats;
        var view = feed.FindCapture(session.Id)!;
        var delivered = view.Shown + view.NotShown;
        var unaccounted = stats.Read - delivered;

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"traffic: {sent} echo requests sent, {received} replies, over {trafficSeconds:0.0} s → {sent + received} packets expected on the bridge"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"tcpdump -w /dev/null alone: {refCaptured} captured, {refKernelDrops} dropped by kernel → {refCaptured / trafficSeconds:0} pkt/s"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"pipeline: tcpdump captured {stats.CapturedByTcpdump}, kernel dropped {stats.DroppedByKernel}; read {stats.Read}; delivered to the feed {delivered} ({view.Shown} shown one by one and decoded, {view.NotShown} counted per flow, {stats.DecodedForFlow} of those decoded whole to find their flow) in {batches} batches; unaccounted {unaccounted}"));
        var pps = delivered / trafficSeconds;
        var ratio = refCaptured > 0 ? delivered / (double)refCaptured : 0;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"pipeline sustained {pps:0} pkt/s; ratio to tcpdump alone {ratio:0.000} (target ≥ 0.9: {(ratio >= 0.9 && unaccounted == 0 ? "MET" : "NOT MET")}); unaccounted loss {unaccounted}"));
        var inProcessPps = inProcess.Delivered / trafficSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"libpcap in process (SharpPcap, 8 MiB ring, same tally, own pcap file of {new FileInfo(inProcessPcap).Length / 1024 / 1024} MiB): read {inProcess.Read}, delivered {inProcess.Delivered}, libpcap received {inProcess.Kernel.Received} and dropped {inProcess.Kernel.Dropped} → {inProcessPps:0} pkt/s; ratio to tcpdump alone {(refCaptured > 0 ? inProcess.Delivered / (double)refCaptured : 0):0.000}; to the tcpdump pipe {(delivered > 0 ? inProcess.Delivered / (double)delivered : 0):0.000}"));
        File.Delete(inProcessPcap);
        return 0;
    }

    private static long Count(Regex r, string text) => r.Match(text) is { Success: true } m ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;

    [GeneratedRegex(@"(\d+) packets transmitted")]
    private static partial Regex PingSent();

    [GeneratedRegex(@"(\d+) packets received")]
    private static partial Regex PingReceived();

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);
}
