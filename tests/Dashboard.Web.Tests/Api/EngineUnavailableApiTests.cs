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
        using var factory = new DashboardFactory(new() { ["Host:DockerEndpoint"] = "unix:///tmp/netlab-no-such-docker.sock" });
        using var client = factory.CreateClient();

        var html = await client.GetStringAsync("/");

        Assert.Contains("Docker engine unavailable", html);
        Assert.Contains("engine-error", html);
    }
}
