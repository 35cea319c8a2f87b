using System.Security.Claims;
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
        var auth = AddAuthorization();
        auth.SetAuthorized(otto.Name);
        auth.SetClaims(new Claim(ClaimTypes.NameIdentifier, otto.Id));

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
}
