using Bunit;
using Dashboard.App.Hosts;
using Dashboard.App.Labs;
using Dashboard.Core.Capture;
using Dashboard.Core.Topology;
using Dashboard.Data.Entities;
using Dashboard.Host;
using Dashboard.Host.Agents;
using Dashboard.Host.Capture;
using Dashboard.Host.Collector;
using Dashboard.Web.Components.Pages.Captures;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Components;

/// <summary>The Captures page with an agent's host picked: that host's captures, live, with their pcaps through the host.</summary>
public sealed class CapturePageAgentHostTests : DashboardTestContext
{
    private readonly DashboardFactory _app = new();

    public CapturePageAgentHostTests()
    {
        Services.AddScoped(sp => new LabSession(sp.GetRequiredService<Microsoft.AspNetCore.Components.Authorization.AuthenticationStateProvider>(), _app.Services.GetRequiredService<LabAccess>()));
        Services.AddSingleton(_ => _app.Services.GetRequiredService<HostDirectory>());
        Services.AddScoped<HostSession>();
        Services.AddFallbackServiceProvider(_app.Services);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _app.Dispose();
        }
    }

    [Fact]
    public async Task OnAnAgentsHost_ItsCapturesComeLive_AndTheirPcapIsFetchedThroughThatHost()
    {
        var otto = await _app.CreateUserAsync("otto", 1, LabRole.Operator);
        SignIn(otto);

        var directory = _app.Services.GetRequiredService<HostDirectory>();
        var remote = directory.Connect("engine-285", "c1", new AgentHello(AgentProtocol.Version, "1", null), () => { });
        var veth = new VethPair("eth0", 9, 10, "veth7a1b2c3", 10, "br-7080e7f0b518", null, "UP");
        var topology = new HostTopology(new EngineInfo("28.5.2", "1.51", null, null, null, null, FirewallBackend.IptablesNft, "test", null, null),
            [new DockerNetwork("n1", "net1", "bridge", "local", "br-7080e7f0b518", [new("172.28.1.0/24", "172.28.1.1")], false, true, false, null, new Dictionary<string, string>(), new Dictionary<string, string>())],
            [new DockerContainer("c2id", "c2", "busybox", "running", "Up", 100, null, [new ContainerEndpoint("n1", "net1", "ep", "172.28.1.3", 24, null, "02:42:ac:1c:01:03", null, veth)], new Dictionary<string, string>())],
            [new BridgeInfo("br-7080e7f0b518", 5, null, "UP", 1500, "net1", [])], [], DateTimeOffset.UtcNow, []);
        remote.Apply("c1", new AgentSnapshot(0, CollectorStatus.Starting("x", 4) with { EngineAvailable = true, FirewallAvailable = true }, topology, null));

        // A capture otto started on that host, and one of somebody else's there.
        var mine = new RemoteCaptureSession("0123456789ab", remote.Name, new CaptureRequest("veth7a1b2c3", "icmp", Owner: new SessionOwner(otto.Id, otto.Name)));
        var theirs = new RemoteCaptureSession("ba9876543210", remote.Name, new CaptureRequest("br-7080e7f0b518", Owner: new SessionOwner("someone-else", "eve")));
        remote.Track(mine);
        remote.Track(theirs);
        Services.GetRequiredService<HostSession>().Select("engine-285");

        var cut = Render<CapturePage>();

        Assert.Contains("On host engine-285", cut.Find("[data-testid='capture-host']").TextContent, StringComparison.Ordinal);
        await using var pcap = File.OpenRead(TestPaths.CoreFixture("pcap/seed-docker-user-net2.pcap"));
        var reader = new PcapStreamReader(pcap);
        await reader.ReadHeaderAsync();
        var frame = (await reader.ReadFrameAsync())!.Value;
        foreach (var id in new[] { mine.Id, theirs.Id })
        {
            remote.Apply("c1", new AgentCaptureBatch(id, 0, PacketDecoder.LinkTypeEthernet, [new AgentFrame(frame.Timestamp, frame.OriginalLength, frame.Data.ToArray())], 0, [],
                new CaptureStats(1, 0, null, null, null), CaptureEndReason.Running, null, null, false));
        }

        var summary = PacketDecoder.Decode(new PcapRecord(frame.Timestamp, frame.OriginalLength, frame.Data.ToArray())).Summary;
        cut.WaitForAssertion(() =>
        {
            var row = Assert.Single(cut.FindAll("[data-testid='capture-row']"));
            Assert.Equal("0123456789ab", row.GetAttribute("data-id"));
            Assert.Equal("api/hosts/engine-285/captures/0123456789ab/pcap", row.QuerySelector("[data-testid='capture-pcap']")!.GetAttribute("href"));
            Assert.Equal(summary, Assert.Single(cut.FindAll("[data-testid='packet-row']")).QuerySelectorAll("td")[2].TextContent);
        });
    }

    [Fact]
    public async Task Sessions_AreGroupedByWhose_EndedOnesFolded_AndCleared_APacketOpensItsHeadersAndBytes()
    {
        var otto = await _app.CreateUserAsync("otto", 1, LabRole.Operator);
        SignIn(otto);

        var remote = _app.Services.GetRequiredService<HostDirectory>().Connect("engine-285", "c1", new AgentHello(AgentProtocol.Version, "1", null), () => { });
        var topology = new HostTopology(new EngineInfo("28.5.2", "1.51", null, null, null, null, FirewallBackend.IptablesNft, "test", null, null),
            [new DockerNetwork("n1", "net1", "bridge", "local", "br-7080e7f0b518", [new("172.28.1.0/24", "172.28.1.1")], false, true, false, null, new Dictionary<string, string>(), new Dictionary<string, string>())],
            [], [new BridgeInfo("br-7080e7f0b518", 5, null, "UP", 1500, "net1", [])], [], DateTimeOffset.UtcNow, []);
        remote.Apply("c1", new AgentSnapshot(0, CollectorStatus.Starting("x", 4) with { EngineAvailable = true, FirewallAvailable = true }, topology, null));
        var running = new RemoteCaptureSession("aaaaaaaaaaa1", remote.Name, new CaptureRequest("br-7080e7f0b518", "icmp", Owner: new SessionOwner(otto.Id, otto.Name)));
        var ended = new RemoteCaptureSession("aaaaaaaaaaa2", remote.Name, new CaptureRequest("br-7080e7f0b518", Owner: new SessionOwner(otto.Id, otto.Name)));
        var run = new RemoteCaptureSession("aaaaaaaaaaa3", remote.Name, new CaptureRequest("br-7080e7f0b518", Owner: new SessionOwner(null, "run", 1, Guid.NewGuid())));
        foreach (var c in new[] { running, ended, run })
        {
            remote.Track(c);
        }

        await using var pcap = File.OpenRead(TestPaths.CoreFixture("pcap/seed-docker-user-net2.pcap"));
        var reader = new PcapStreamReader(pcap);
        await reader.ReadHeaderAsync();
        var frame = (await reader.ReadFrameAsync())!.Value;
        while (PacketDecoder.Decode(new PcapRecord(frame.Timestamp, frame.OriginalLength, frame.Data.ToArray())).Echo is null)
        {
            frame = (await reader.ReadFrameAsync())!.Value; // the first echo request of the seed's ping
        }

        AgentCaptureBatch Batch(string id, CaptureEndReason state, bool final) => new(id, 0, PacketDecoder.LinkTypeEthernet, [new AgentFrame(frame.Timestamp, frame.OriginalLength, frame.Data.ToArray())], 0, [],
            new CaptureStats(1, 0, null, null, null), state, null, null, final);
        remote.Apply("c1", Batch(running.Id, CaptureEndReason.Running, false));
        remote.Apply("c1", Batch(ended.Id, CaptureEndReason.Requested, true));
        remote.Apply("c1", Batch(run.Id, CaptureEndReason.Running, false));
        Services.GetRequiredService<HostSession>().Select("engine-285");

        var cut = Render<CapturePage>();
        cut.WaitForAssertion(() => Assert.Equal(["Yours", "Runs'"], cut.FindAll("[data-testid='capture-group']").Select(g => g.GetAttribute("data-group"))));
        var yours = cut.Find("[data-testid='capture-group'][data-group='Yours']");
        Assert.Contains("1 running, 1 ended", yours.TextContent, StringComparison.Ordinal);
        var folded = yours.QuerySelector("[data-testid='capture-ended']")!;
        Assert.False(folded.HasAttribute("open"));
        Assert.Equal(ended.Id, folded.QuerySelector("[data-testid='capture-row']")!.GetAttribute("data-id"));
        Assert.NotNull(yours.QuerySelector($"[data-testid='capture-row'][data-id='{running.Id}'] [data-testid='capture-stop']"));

        // Clear ended: off the list (and kept so in this browser), back on asking.
        cut.Find("[data-testid='captures-clear-ended']").Click();
        Assert.Empty(cut.FindAll($"[data-testid='capture-row'][data-id='{ended.Id}']"));
        Assert.Equal(2, cut.FindAll("[data-testid='capture-row']").Count);
        Assert.Contains(JSInterop.Invocations, i => i.Identifier == "netlab.save" && i.Arguments[0] as string == "captures-cleared.engine-285" && i.Arguments[1] as string == ended.Id);
        cut.Find("[data-testid='captures-show-cleared']").Click();
        Assert.Single(cut.FindAll($"[data-testid='capture-row'][data-id='{ended.Id}']"));

        // A packet's headers, each field with its bytes.
        cut.FindAll("[data-testid='packet-row']")[0].Click();
        var detail = cut.Find("[data-testid='packet-detail']");
        Assert.Equal(["Ethernet II", "IPv4", "ICMP"], detail.QuerySelectorAll("[data-testid='packet-layer']").Select(l => l.GetAttribute("data-layer")));
        var decoded = PacketDecoder.Decode(new PcapRecord(frame.Timestamp, frame.OriginalLength, frame.Data.ToArray()));
        var ipSource = detail.QuerySelector("[data-layer='IPv4'] [data-testid='packet-field'][data-name='Source']")!;
        Assert.Equal(decoded.Source, ipSource.QuerySelector("td")!.TextContent);
        Assert.Contains("correct", detail.QuerySelector("[data-layer='IPv4'] [data-name='Header checksum'] td")!.TextContent, StringComparison.Ordinal);
        ipSource.Click();
        Assert.Equal(["26", "27", "28", "29"], cut.FindAll("[data-testid='packet-hex'] .hex-picked").Select(b => b.GetAttribute("data-offset")));
        Assert.Equal(decoded.Source, string.Join('.', cut.FindAll("[data-testid='packet-hex'] .hex-picked").Select(b => Convert.ToInt32(b.TextContent, 16))));
        Assert.Contains($"echo request, id {decoded.Echo!.Id}, seq {decoded.Echo.Sequence}", detail.QuerySelector("[data-layer='ICMP'] summary")!.TextContent, StringComparison.Ordinal);
    }
}
