using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Core.Capture;

namespace Dashboard.Web.Tests.Api;

public class CaptureApiTests
{
    [SkippableTheory]
    [InlineData("{\"interface\":\"netlab-nope0\"}", "does not exist", false)]
    [InlineData("{\"interface\":\"lo; reboot\"}", "interface name", false)]
    [InlineData("{\"interface\":\"lo\",\"filter\":\"icmp and portt 80\"}", "only the bridges of Docker networks", false)]
    [InlineData("{\"interface\":\"lo\",\"filter\":\"icmp and portt 80\"}", "does not compile", true)]
    public async Task Start_BadRequest_IsProblemWithTheReasonAndNoSession(string body, string reason, bool siteAllowsLoopback)
    {
        Skip.If(body.Contains("\"lo\"", StringComparison.Ordinal) && !RealHost.Available && !RealHost.Required, "needs the engine (the topology decides what may be captured) and tcpdump");
        // The site setting Host:CaptureExtraInterfaces is the only way past the scope check to the filter check on lo.
        using var factory = new DashboardFactory(siteAllowsLoopback ? new() { ["Host:CaptureExtraInterfaces:0"] = "lo" } : null);
        using var client = factory.CreateClient();

        using var response = await client.PostAsync("/api/captures", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("Capture not started", problem.RootElement.GetProperty("title").GetString());
        Assert.Contains(reason, problem.RootElement.GetProperty("detail").GetString());
        Assert.Equal("[]", await client.GetStringAsync("/api/captures"));
    }

    [SkippableFact]
    [Trait("Category", "RealHost")]
    public async Task Capture_StartPingStopDownload_PcapHoldsTheEchoRequests()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        using var factory = new DashboardFactory();
        using var client = factory.CreateClient();

        using var started = await client.PostAsJsonAsync("/api/captures", new { @interface = seed.Bridge2, filter = $"icmp and host {seed.C1Ip}" });
        Assert.Equal(HttpStatusCode.Created, started.StatusCode);
        var id = JsonDocument.Parse(await started.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString();
        await lab.PingAsync(seed.C2, seed.C1Ip, 3);
        using var stopped = await client.DeleteAsync($"/api/captures/{id}");
        using var stoppedBody = JsonDocument.Parse(await stopped.Content.ReadAsStringAsync());
        Assert.Equal("Requested", stoppedBody.RootElement.GetProperty("endReason").GetString());

        var pcap = await client.GetByteArrayAsync($"/api/captures/{id}/pcap");
        var reader = new PcapStreamReader(new MemoryStream(pcap));
        await reader.ReadHeaderAsync();
        var requests = 0;
        while (await reader.ReadRecordAsync() is { } r)
        {
            requests += PacketDecoder.Decode(r) is { Echo.IsRequest: true } p && p.Destination == seed.C1Ip ? 1 : 0;
        }

        Assert.Equal(3, requests);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/api/captures/nope/pcap")).StatusCode);

        // A capture still running when the dashboard stops ends with it: no orphan tcpdump.
        using var left = await client.PostAsJsonAsync("/api/captures", new { @interface = seed.Bridge1 });
        Assert.Equal(HttpStatusCode.Created, left.StatusCode);
        Assert.NotEqual("", (await lab.RunAsync("pgrep", "-f", $"tcpdump -i {seed.Bridge1}")).Trim());
        factory.Dispose();
        var after = await new Dashboard.Host.Processes.ProcessRunner().RunAsync("pgrep", ["-f", $"tcpdump -i {seed.Bridge1}"], TimeSpan.FromSeconds(5));
        Assert.Equal(1, after.ExitCode);
    }
}
