using System.Net;
using System.Text.Json;

namespace Dashboard.Web.Tests.Api;

public class EngineUnavailableApiTests
{
    [Fact]
    public async Task GetHost_EngineSocketMissing_Is503ProblemNamingTheEndpoint()
    {
        using var factory = new DashboardFactory(new() { ["Host:DockerEndpoint"] = "unix:///tmp/netlab-no-such-docker.sock" });
        using var client = factory.CreateClient();

        using var response = await client.GetAsync("/api/networks");
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("Docker engine unavailable", body.RootElement.GetProperty("title").GetString());
        Assert.Contains("netlab-no-such-docker.sock", body.RootElement.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Overview_EngineSocketMissing_RendersTheOutageNotACrash()
    {
        using var factory = new DashboardFactory(new() { ["Host:DockerEndpoint"] = "unix:///tmp/netlab-no-such-docker.sock", ["Collector:Enabled"] = "true" });
        using var client = factory.CreateClient();

        // The collector reports the outage once it has tried; the page renders that state, it does not fail.
        var html = "";
        for (var i = 0; i < 50 && !html.Contains("engine-error", StringComparison.Ordinal); i++)
        {
            await Task.Delay(100);
            html = await client.GetStringAsync("/");
        }

        Assert.Contains("Docker engine unavailable", html);
        Assert.Contains("netlab-no-such-docker.sock", html);
    }
}
