using System.Diagnostics;
using Dashboard.Core.Capture;
using Dashboard.TestSupport;

namespace Dashboard.Host.Tests.Capture;

/// <summary>Decoding against pcaps real tcpdump writes during the test: our summaries must read as tcpdump's own.</summary>
[Trait("Category", "RealHost")]
public class PacketDecoderRealPcapTests
{
    [SkippableFact]
    public async Task Decode_RealTcpdumpPcap_ArpIcmpTcpUdp_MatchTcpdumpsOwnLines()
    {
        Dashboard.TestSupport.RealHost.Require();
        await using var lab = new LabScope();
        var net = lab.Name("cap");
        var id = await lab.CreateNetworkAsync("cap");
        var c1 = await lab.RunBusyboxAsync("c1", net);
        var c2 = await lab.RunBusyboxAsync("c2", net);
        var c1Ip = await lab.IpOfAsync(c1, net);
        var c2Ip = await lab.IpOfAsync(c2, net);
        var bridge = "br-" + id[..12];
        var pcap = Path.Combine(Path.GetTempPath(), $"netlab-{lab.Id}.pcap");
        try
        {
            var tcpdump = Process.Start(new ProcessStartInfo("tcpdump") { ArgumentList = { "-i", bridge, "-w", pcap, "-U", "-n", $"arp or (host {c1Ip} and host {c2Ip})" }, RedirectStandardError = true })!;

            // Only the test's own flows (a new bridge also sends IGMP and MLD reports from its gateway, seen on fresh hosts).
            // Traffic starts only once tcpdump says it is listening, so nothing is missed.
            using var listening = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            while (await tcpdump.StandardError.ReadLineAsync(listening.Token) is { } line && !line.Contains("listening on", StringComparison.Ordinal))
            {
            }

            await lab.DockerAsync(["exec", c2, "arping", "-c", "1", "-w", "1", "-I", "eth0", c1Ip]).ContinueWith(_ => { });
            await lab.DockerAsync(["exec", c2, "ping", "-c", "2", "-W", "1", c1Ip]);
            await lab.DockerAsync(["exec", c2, "nc", "-w", "1", c1Ip, "80"]).ContinueWith(_ => { });
            await lab.DockerAsync(["exec", c2, "nslookup", "-type=a", "lab.test", c1Ip]).ContinueWith(_ => { });
            await Task.Delay(1000);
            tcpdump.Kill();
            await tcpdump.WaitForExitAsync();

            // tcpdump's own reading of the same file, absolute sequence numbers, timestamps cut off.
            var theirs = (await lab.RunAsync("tcpdump", "-n", "-S", "-r", pcap)).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l[(l.IndexOf(' ', StringComparison.Ordinal) + 1)..])
                .ToList();
            var ours = new List<DecodedPacket>();
            await using (var file = File.OpenRead(pcap))
            {
                var reader = new PcapStreamReader(file);
                var header = await reader.ReadHeaderAsync();
                Assert.Equal(PacketDecoder.LinkTypeEthernet, header!.Value.LinkType);
                while (await reader.ReadRecordAsync() is { } record)
                {
                    ours.Add(PacketDecoder.Decode(record));
                }
            }

            Assert.Equal(theirs.Count, ours.Count);
            for (var i = 0; i < ours.Count; i++)
            {
                var expected = ours[i].Protocol == "TCP"
                    ? System.Text.RegularExpressions.Regex.Replace(theirs[i], @", options \[[^\]]*\]", "")
                    : ours[i].Protocol == "UDP" ? theirs[i][..(theirs[i].IndexOf(':', StringComparison.Ordinal) + 1)] + " UDP, length " + (ours[i].Length - 42)
                    : theirs[i];
                Assert.Equal(expected, ours[i].Summary);
            }

            Assert.Contains(ours, p => p.Summary.StartsWith("ARP, Request who-has " + c1Ip, StringComparison.Ordinal));
            Assert.Contains(ours, p => p.Summary.StartsWith("ARP, Reply " + c1Ip + " is-at ", StringComparison.Ordinal));
            Assert.Contains(ours, p => p.Echo is { IsRequest: true, Sequence: 1 } && p.Destination == c1Ip);
            Assert.Contains(ours, p => p.Echo is { IsRequest: false, Sequence: 1 } && p.Source == c1Ip);
            Assert.Contains(ours, p => p.Protocol == "TCP" && p.DestinationPort == 80 && p.Summary.Contains("Flags [S]", StringComparison.Ordinal));
            Assert.Contains(ours, p => p.Protocol == "UDP" && p.DestinationPort == 53 && p.Destination == c1Ip);
        }
        finally
        {
            File.Delete(pcap);
        }
    }
}
