using Dashboard.Core.Capture;
using Dashboard.Core.Changes;
using Dashboard.Host.Capture;
using Dashboard.Host.Processes;
using Dashboard.TestSupport;
using Microsoft.Extensions.Options;

namespace Dashboard.Host.Tests.Capture;

[Trait("Category", "RealHost")]
public class CaptureServiceTests
{
    private static CaptureService NewService(DockerHostOptions? options = null) => new(new ProcessRunner(), RealTopology.Reader(), Options.Create(options ?? new DockerHostOptions()));

    /// <summary>Every packet of an ended session, decoded (the tests' captures are small: all are within one batch's budget).</summary>
    private static async Task<List<DecodedPacket>> DrainAsync(CaptureSession s)
    {
        await s.Completion;
        var batch = s.TakeBatch();
        Assert.Equal(0, batch.NotShown);
        return [.. batch.Shown];
    }

    private static async Task<int> TcpdumpProcessesAsync(string marker)
    {
        var r = await new ProcessRunner().RunAsync("pgrep", ["-f", $"tcpdump.*{marker}"], TimeSpan.FromSeconds(5));
        return r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
    }

    /// <summary>A lab network with a target and two senders to flood it: its bridge, the target's address, the senders and theirs.</summary>
    private static async Task<(string Bridge, string TargetIp, string[] Senders, string[] SenderIps)> FloodLabAsync(LabScope lab, string suffix)
    {
        var net = await lab.CreateNetworkAsync(suffix);
        var target = await lab.RunBusyboxAsync("target", lab.Name(suffix));
        string[] senders = [await lab.RunBusyboxAsync("s1", lab.Name(suffix)), await lab.RunBusyboxAsync("s2", lab.Name(suffix))];
        return ("br-" + net[..12], await lab.IpOfAsync(target, lab.Name(suffix)), senders, [await lab.IpOfAsync(senders[0], lab.Name(suffix)), await lab.IpOfAsync(senders[1], lab.Name(suffix))]);
    }

    /// <summary>
    /// The accounting holds however fast packets come: nobody takes the session's packets while two containers flood the
    /// bridge; every packet tcpdump wrote is read, and each one is either shown or counted under its own flow, counted
    /// from its header bytes. (Before, a bounded channel of decoded packets sat in between, and its DropWrite mode threw
    /// packets away while saying they were written: they were neither delivered nor counted.)
    /// </summary>
    [SkippableFact]
    public async Task Capture_NobodyReadsDuringAFlood_EveryPacketIsReadAndShownOrCountedUnderItsFlow()
    {
        Dashboard.TestSupport.RealHost.Require();
        await using var lab = new LabScope();
        var (bridge, targetIp, senders, senderIps) = await FloodLabAsync(lab, "flood");
        await using var service = NewService();
        var session = await service.StartAsync(new CaptureRequest(bridge, $"icmp and host {targetIp}"));
        await session.Listening;

        // Bounded: at most 10,000 requests each, for at most 5 s; ping -A sends the next request as soon as the reply comes.
        var runner = new ProcessRunner();
        await Task.WhenAll(senders.Select(s => runner.RunAsync("docker", ["exec", s, "ping", "-A", "-q", "-c", "10000", "-W", "1", "-w", "5", targetIp], TimeSpan.FromSeconds(30))));
        await session.StopAsync();
        var batch = session.TakeBatch();
        var stats = session.Stats;

        // How many tcpdump gets of a flood depends on the machine (the kernel drops the rest, counted by tcpdump: a fresh
        // CI machine's busy run read 592 and dropped 39,408); more than one batch's budget, with room for every flow
        // beyond it, is what matters here.
        Assert.True(stats.Read > 2 * PacketTally.DefaultMaxShown, $"the flood should be a flood ({stats.Read} packets read, {stats.DroppedByKernel} dropped by the kernel)");
        // tcpdump blocked writing to the full pipe loses the record its stop signal interrupts (one at most).
        Assert.InRange(stats.NotWritten, 0, 1);
        Assert.Equal(stats.CapturedByTcpdump, stats.Read + stats.NotWritten);
        Assert.Equal(stats.Read, batch.Total);
        Assert.Equal(PacketTally.DefaultMaxShown, batch.Shown.Count);
        Assert.All(batch.Shown, p => Assert.Equal("ICMP", p.Protocol));
        Assert.Equal(batch.NotShown, batch.NotShownFlows.Sum(f => f.Packets));
        Assert.Equal(
            senderIps.SelectMany(ip => new[] { $"ICMP {ip} > {targetIp}", $"ICMP {targetIp} > {ip}" }).Order(),
            batch.NotShownFlows.Select(f => f.Flow).Order());
        Assert.Equal(4, stats.DecodedForFlow); // the first counted packet of each flow, to name it
    }

    /// <summary>What tcpdump counted but never wrote (its write interrupted by the stop) is the difference, never negative, and nothing before tcpdump reports.</summary>
    [Theory]
    [InlineData(560L, 561L, 1L)]
    [InlineData(561L, 561L, 0L)]
    [InlineData(562L, 561L, 0L)]
    [InlineData(12L, null, 0L)]
    public void NotWritten_IsWhatTcpdumpCapturedBeyondWhatWasRead(long read, long? captured, long expected) =>
        Assert.Equal(expected, new CaptureStats(read, 0, captured, captured, 0).NotWritten);

    /// <summary>
    /// Several captures at once each keep their own accounting, checked against the traffic itself: three captures on one
    /// bridge during a flood (two with the same filter, one selecting one sender's flows); for each, the kernel's count
    /// of packets that passed its filter equals the packets ping says crossed the bridge, and splits exactly into what
    /// its tcpdump captured (all of it read and shown or counted under its flows) and what the kernel dropped for it.
    /// </summary>
    [SkippableFact]
    public async Task Capture_ThreeAtOnceDuringAFlood_EachAccountsForEveryPacketThatPassedItsFilter()
    {
        Dashboard.TestSupport.RealHost.Require();
        await using var lab = new LabScope();
        var (bridge, targetIp, senders, senderIps) = await FloodLabAsync(lab, "flood3");
        await using var service = NewService();
        var all1 = await service.StartAsync(new CaptureRequest(bridge, $"icmp and host {targetIp}"));
        var all2 = await service.StartAsync(new CaptureRequest(bridge, $"icmp and host {targetIp}"));
        var first = await service.StartAsync(new CaptureRequest(bridge, $"icmp and host {senderIps[0]}"));

        var runner = new ProcessRunner();
        var pings = await Task.WhenAll(senders.Select(s => runner.RunAsync("docker", ["exec", s, "ping", "-A", "-q", "-c", "10000", "-W", "1", "-w", "5", targetIp], TimeSpan.FromSeconds(30))));
        await Task.Delay(200);
        foreach (var s in new[] { all1, all2, first })
        {
            await s.StopAsync();
        }

        // ping's own summary: requests it sent and replies it got back. A reply still on its way when ping's deadline
        // ended it is on the bridge but not in the summary: at most one per sender with -A.
        var onWire = pings.Select(r => LabScope.PingSummaryOf(r.StdOut) is { } w ? (Sent: (long)w.Sent, Replies: (long)w.Received) : throw new InvalidOperationException("no ping summary: " + r.StdOut)).ToArray();
        void Check(CaptureSession s, long minimum, long inFlight, string[] flows)
        {
            var batch = s.TakeBatch();
            var stats = s.Stats;
            Assert.InRange(stats.ReceivedByFilter!.Value, minimum, minimum + inFlight);
            Assert.Equal(stats.ReceivedByFilter, stats.CapturedByTcpdump + stats.DroppedByKernel);
            Assert.InRange(stats.NotWritten, 0, 1);
            Assert.Equal(stats.CapturedByTcpdump, stats.Read + stats.NotWritten);
            Assert.Equal(stats.Read, batch.Total);
            Assert.Equal(batch.Shown.Count + batch.NotShown, batch.Total);
            Assert.Equal(flows.Order(), batch.NotShownFlows.Select(f => f.Flow).Order());
        }

        var flowsOf = senderIps.Select(ip => new[] { $"ICMP {ip} > {targetIp}", $"ICMP {targetIp} > {ip}" }).ToArray();
        Assert.True(onWire.All(w => w.Sent > 5 * PacketTally.DefaultMaxShown), $"the flood should be a flood ({string.Join(", ", onWire)})");
        Check(all1, onWire.Sum(w => w.Sent + w.Replies), senders.Length, [.. flowsOf[0], .. flowsOf[1]]);
        Check(all2, onWire.Sum(w => w.Sent + w.Replies), senders.Length, [.. flowsOf[0], .. flowsOf[1]]);
        Check(first, onWire[0].Sent + onWire[0].Replies, 1, flowsOf[0]);
        Assert.Equal(all1.Stats.ReceivedByFilter, all2.Stats.ReceivedByFilter);
    }

    [SkippableFact]
    public async Task Capture_BothBridges_IsolatedThenAccepted_RequestsOnlyThenRepliesWithMasqueradedSource()
    {
        Dashboard.TestSupport.RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        await using var service = NewService();
        var net1 = await lab.InspectAsync("network", seed.Net1);
        var net2 = await lab.InspectAsync("network", seed.Net2);
        var (sub1, gw1) = (net1.GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Subnet").GetString()!, net1.GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Gateway").GetString()!);
        var sub2 = net2.GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Subnet").GetString()!;

        // Isolated: the requests enter the source bridge and never leave on the destination bridge. Each capture is
        // filtered to the probe's flow (ICMP to or from c1), so a bridge's own chatter cannot make "no packets" fail.
        var on2 = await service.StartAsync(new CaptureRequest(seed.Bridge2, $"icmp and host {seed.C1Ip}"));
        var on1 = await service.StartAsync(new CaptureRequest(seed.Bridge1, $"icmp and host {seed.C1Ip}"));
        Assert.Equal((3, 0), await lab.PingAsync(seed.C2, seed.C1Ip, 3));
        await on2.StopAsync();
        await on1.StopAsync();
        var src = await DrainAsync(on2);
        var dst = await DrainAsync(on1);
        Assert.Equal(3, src.Count(p => p.Echo is { IsRequest: true } && p.Destination == seed.C1Ip));
        Assert.DoesNotContain(src, p => p.Echo is { IsRequest: false });
        Assert.Empty(dst);
        Assert.Equal(CaptureEndReason.Requested, on2.EndReason);
        Assert.Equal(0, on2.Stats.DroppedByKernel);
        Assert.Equal(0, on2.Stats.DecodedForFlow);
        Assert.True(new FileInfo(on2.PcapPath).Length > 24);

        // With the ACCEPT pair: on the destination bridge the request arrives from net1's gateway (MASQUERADE) and the reply goes back.
        await lab.InsertAsync(new RuleSpec { Chain = "DOCKER-USER", Position = 1, Source = sub1, Destination = sub2, Target = "ACCEPT", Tag = lab.Tag });
        await lab.InsertAsync(new RuleSpec { Chain = "DOCKER-USER", Position = 1, Source = sub2, Destination = sub1, Target = "ACCEPT", Tag = lab.Tag });
        on2 = await service.StartAsync(new CaptureRequest(seed.Bridge2, $"icmp and host {seed.C1Ip}"));
        on1 = await service.StartAsync(new CaptureRequest(seed.Bridge1, $"icmp and host {seed.C1Ip}"));
        Assert.Equal((3, 3), await lab.PingAsync(seed.C2, seed.C1Ip, 3));
        await on2.StopAsync();
        await on1.StopAsync();
        src = await DrainAsync(on2);
        dst = await DrainAsync(on1);
        Assert.Equal(3, src.Count(p => p.Echo is { IsRequest: true }));
        Assert.Equal(on2.Stats.ReceivedByFilter, on2.Stats.CapturedByTcpdump);
        Assert.Equal(3, src.Count(p => p.Echo is { IsRequest: false } && p.Source == seed.C1Ip));
        Assert.Equal(3, dst.Count(p => p.Echo is { IsRequest: true } && p.Source == gw1 && p.Destination == seed.C1Ip));

        // The reply is de-NATed by br_netfilter's PREROUTING hook before the frame reaches the bridge device tcpdump
        // listens on, so on c1's bridge it already reads c1 > c2 (measured; the request reads gw1 > c1 after POSTROUTING).
        var c2Ip = await lab.IpOfAsync(seed.C2, seed.Net2);
        Assert.Equal(3, dst.Count(p => p.Echo is { IsRequest: false } && p.Source == seed.C1Ip && p.Destination == c2Ip));
    }

    [SkippableFact]
    public async Task Start_BadFilter_ExplainsAndStartsNoProcess()
    {
        Dashboard.TestSupport.RealHost.Require();
        // The loopback is allowed here only by the site setting, to reach the filter check without a lab network.
        await using var service = NewService(new DockerHostOptions { CaptureExtraInterfaces = ["lo"] });
        var marker = "portt" + Guid.NewGuid().ToString("N")[..6];

        var ex = await Assert.ThrowsAsync<CaptureRejectedException>(() => service.StartAsync(new CaptureRequest("lo", $"icmp and {marker} 80")));

        Assert.StartsWith("the filter does not compile", ex.Message);
        Assert.Equal(0, await TcpdumpProcessesAsync(marker));
        Assert.Empty(service.Sessions);
    }

    [SkippableTheory]
    [InlineData("lo")]
    [InlineData("eth0")]
    [InlineData("docker0-not-a-bridge")]
    public async Task Start_LoopbackOrTheHostsNic_IsRefused_StartsNoProcess(string name)
    {
        Dashboard.TestSupport.RealHost.Require();
        if (name == "eth0" && !Directory.Exists("/sys/class/net/eth0"))
        {
            name = Directory.GetDirectories("/sys/class/net").Select(Path.GetFileName).First(n => n is not null && n != "lo" && File.Exists($"/sys/class/net/{n}/device/uevent"))!;
        }

        await using var service = NewService();

        var ex = await Assert.ThrowsAsync<CaptureRejectedException>(() => service.StartAsync(new CaptureRequest(name)));

        Assert.Contains(name == "docker0-not-a-bridge" ? "interface name" : "only the bridges of Docker networks", ex.Message);
        Assert.Equal(0, await TcpdumpProcessesAsync($"-i {name} "));
        Assert.Empty(service.Sessions);
    }

    [SkippableFact]
    public async Task Start_ParallelRequests_NeverMoreThanTheCap()
    {
        Dashboard.TestSupport.RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        await using var service = NewService();

        var attempts = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Task.Run(async () =>
        {
            try
            {
                return await service.StartAsync(new CaptureRequest(i % 2 == 0 ? seed.Bridge1 : seed.Bridge2, "icmp"));
            }
            catch (CaptureRejectedException)
            {
                return null;
            }
        })));

        Assert.Equal(CaptureService.MaxRunningSessions, attempts.Count(a => a is not null));
        Assert.Equal(CaptureService.MaxRunningSessions, service.Sessions.Count(s => s.EndReason == CaptureEndReason.Running));
    }

    [SkippableFact]
    public async Task Capture_ByteLimit_EndsByItself_PcapStaysNearTheLimit()
    {
        Dashboard.TestSupport.RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        var folder = Directory.CreateTempSubdirectory("netlab-capture-dir-").FullName;
        await using var service = NewService(new DockerHostOptions { CaptureDirectory = folder });
        var session = await service.StartAsync(new CaptureRequest(seed.Bridge2, $"icmp and host {seed.C1Ip}", ByteLimit: 2048));

        await lab.PingAsync(seed.C2, seed.C1Ip, 6, payloadBytes: 1000);
        await session.Completion.WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(CaptureEndReason.ByteLimit, session.EndReason);
        Assert.StartsWith(folder, session.PcapPath, StringComparison.Ordinal);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(folder));
        }

        Assert.True(new FileInfo(session.PcapPath).Length < 2048 + 4096, $"pcap of {new FileInfo(session.PcapPath).Length} bytes");
    }

    [SkippableFact]
    public async Task EndedSessions_ArePurgedWithTheirPcaps_AfterTheRetention()
    {
        Dashboard.TestSupport.RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        await using var service = NewService(new DockerHostOptions { CaptureRetention = TimeSpan.FromSeconds(1) });
        var session = await service.StartAsync(new CaptureRequest(seed.Bridge2, $"icmp and host {seed.C1Ip}"));
        await session.StopAsync();
        Assert.Single(service.Sessions);
        Assert.True(File.Exists(session.PcapPath));

        await Task.Delay(1500);

        Assert.Empty(service.Sessions);
        Assert.False(File.Exists(session.PcapPath));
        Assert.Null(service.Find(session.Id));
    }

    [Theory]
    [InlineData("netlab-nope0", "does not exist")]
    [InlineData("eth0; reboot", "interface name")]
    [InlineData("-w", "interface name")]
    public async Task Start_BadInterface_IsRefused(string name, string message)
    {
        await using var service = NewService();

        var ex = await Assert.ThrowsAsync<CaptureRejectedException>(() => service.StartAsync(new CaptureRequest(name)));

        Assert.Contains(message, ex.Message);
    }

    [SkippableFact]
    public async Task Capture_InterfaceRemovedMidCapture_EndsWithReasonAndNoOrphan()
    {
        Dashboard.TestSupport.RealHost.Require();
        await using var lab = new LabScope();
        var id = await lab.CreateNetworkAsync("gone");
        var bridge = "br-" + id[..12];
        await using var service = NewService();
        var session = await service.StartAsync(new CaptureRequest(bridge));

        await lab.DockerAsync(["network", "rm", lab.Name("gone")]);
        await session.Completion.WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(CaptureEndReason.InterfaceGone, session.EndReason);
        Assert.Contains(bridge, session.EndMessage);
        Assert.Equal(0, await TcpdumpProcessesAsync(bridge));
    }

    [SkippableFact]
    public async Task Capture_PacketLimit_EndsByItself_AndDisposeLeavesNoTcpdump()
    {
        Dashboard.TestSupport.RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        var service = NewService();
        var limited = await service.StartAsync(new CaptureRequest(seed.Bridge2, $"icmp and host {seed.C1Ip}", PacketLimit: 2));
        var open = await service.StartAsync(new CaptureRequest(seed.Bridge1));

        await lab.PingAsync(seed.C2, seed.C1Ip, 3);
        await limited.Completion.WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(CaptureEndReason.PacketLimit, limited.EndReason);
        Assert.Equal(2, limited.Stats.Read);
        await service.DisposeAsync();
        Assert.Equal(CaptureEndReason.ShuttingDown, open.EndReason);
        Assert.Equal(0, await TcpdumpProcessesAsync(seed.Bridge1));
        Assert.Equal(0, await TcpdumpProcessesAsync(seed.Bridge2));
    }
}
