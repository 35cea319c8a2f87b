using System.Text.Json;

namespace Dashboard.Web.Tests.Api;

/// <summary>The read API against the real engine says what <c>docker network inspect</c>, <c>docker inspect</c> and <c>ip -j link</c> say.</summary>
[Trait("Category", "RealHost")]
public class ReadApiRealHostTests
{
    [SkippableFact]
    public async Task ReadApi_LabNetworksAndContainers_MatchDockerInspectAndIpLink()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        using var factory = new DashboardFactory();
        using var client = factory.CreateClient();

        var plain = lab.Name("plain");
        var custom = lab.Name("custom");
        var customBridge = $"nlt{lab.Id}";
        await lab.CreateNetworkAsync("plain");
        await lab.CreateNetworkAsync("custom", "--internal", "-o", $"com.docker.network.bridge.name={customBridge}", "-o", "com.docker.network.bridge.enable_icc=false");
        var c1 = await lab.RunBusyboxAsync("c1", plain);
        var c2 = await lab.RunBusyboxAsync("c2", custom);

        using var networks = JsonDocument.Parse(await client.GetStringAsync("/api/networks"));
        foreach (var (name, bridge, isInternal, icc) in new[] { (plain, (string?)null, false, true), (custom, customBridge, true, false) })
        {
            var api = networks.RootElement.EnumerateArray().Single(n => n.GetProperty("name").GetString() == name);
            var inspect = await lab.InspectAsync("network", name);
            var id = inspect.GetProperty("Id").GetString()!;
            Assert.Equal(id, api.GetProperty("id").GetString());
            Assert.Equal("bridge", api.GetProperty("driver").GetString());
            Assert.Equal(bridge ?? "br-" + id[..12], api.GetProperty("bridgeName").GetString());
            Assert.Equal(isInternal, api.GetProperty("internal").GetBoolean());
            Assert.Equal(icc, api.GetProperty("icc").GetBoolean());
            var ipam = inspect.GetProperty("IPAM").GetProperty("Config")[0];
            var subnet = api.GetProperty("subnets")[0];
            Assert.Equal(ipam.GetProperty("Subnet").GetString(), subnet.GetProperty("subnet").GetString());
            Assert.Equal(ipam.GetProperty("Gateway").GetString(), subnet.GetProperty("gateway").GetString());
            Assert.StartsWith("172.", ipam.GetProperty("Subnet").GetString());
        }

        using var containers = JsonDocument.Parse(await client.GetStringAsync("/api/containers"));
        using var hostLinks = JsonDocument.Parse(await lab.RunAsync("ip", "-j", "link", "show"));
        foreach (var (container, network) in new[] { (c1, plain), (c2, custom) })
        {
            var api = containers.RootElement.EnumerateArray().Single(c => c.GetProperty("name").GetString() == container);
            var inspect = await lab.InspectAsync("container", container);
            Assert.Equal(inspect.GetProperty("Id").GetString(), api.GetProperty("id").GetString());
            Assert.Equal("running", api.GetProperty("state").GetString());
            var ep = api.GetProperty("endpoints").EnumerateArray().Single();
            var epInspect = inspect.GetProperty("NetworkSettings").GetProperty("Networks").GetProperty(network);
            Assert.Equal(epInspect.GetProperty("IPAddress").GetString(), ep.GetProperty("ipv4Address").GetString());
            Assert.Equal(epInspect.GetProperty("MacAddress").GetString(), ep.GetProperty("macAddress").GetString());
            Assert.Equal(epInspect.GetProperty("EndpointID").GetString(), ep.GetProperty("endpointId").GetString());

            // The kernel's own answer, read inside the container: eth0's iflink is the host veth's index.
            var iflink = int.Parse((await lab.DockerAsync(["exec", container, "cat", "/sys/class/net/eth0/iflink"])).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            var veth = ep.GetProperty("veth");
            Assert.Equal(iflink, veth.GetProperty("hostIfIndex").GetInt32());
            var hostLink = hostLinks.RootElement.EnumerateArray().Single(l => l.GetProperty("ifindex").GetInt32() == iflink);
            Assert.Equal(hostLink.GetProperty("ifname").GetString(), veth.GetProperty("hostInterface").GetString());
            Assert.Equal(hostLink.GetProperty("master").GetString(), veth.GetProperty("bridge").GetString());
            Assert.Equal($"eth0@if{iflink}", veth.GetProperty("containerDisplay").GetString());
        }

        using var bridges = JsonDocument.Parse(await client.GetStringAsync("/api/bridges"));
        var customApi = bridges.RootElement.EnumerateArray().Single(b => b.GetProperty("name").GetString() == customBridge);
        using var ports = JsonDocument.Parse(await lab.RunAsync("ip", "-j", "link", "show", "master", customBridge));
        Assert.Equal(
            ports.RootElement.EnumerateArray().Select(p => p.GetProperty("ifname").GetString()).Order(StringComparer.Ordinal),
            customApi.GetProperty("ports").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        Assert.Equal(c2, customApi.GetProperty("ports")[0].GetProperty("containerName").GetString());
        Assert.Equal(custom, customApi.GetProperty("networkName").GetString());

        // The bridge's addresses as the kernel has them (its network's gateway).
        using var addr = JsonDocument.Parse(await lab.RunAsync("ip", "-j", "addr", "show", "dev", customBridge));
        Assert.Equal(
            addr.RootElement[0].GetProperty("addr_info").EnumerateArray().Select(a => $"{a.GetProperty("local").GetString()}/{a.GetProperty("prefixlen").GetInt32()}"),
            customApi.GetProperty("addresses").EnumerateArray().Select(a => a.GetString()));
        Assert.Contains(networks.RootElement.EnumerateArray().Single(n => n.GetProperty("name").GetString() == custom).GetProperty("subnets")[0].GetProperty("gateway").GetString() + "/",
            customApi.GetProperty("addresses")[0].GetString(), StringComparison.Ordinal);

        using var firewall = JsonDocument.Parse(await client.GetStringAsync("/api/firewall"));
        var rules = firewall.RootElement.GetProperty("ruleset").GetProperty("tables").EnumerateArray()
            .SelectMany(t => t.GetProperty("chains").EnumerateArray()).SelectMany(c => c.GetProperty("rules").EnumerateArray()).ToList();
        Assert.Contains(rules, r => r.GetProperty("networks").EnumerateArray().Any(n => n.GetString() == custom) && r.GetProperty("owner").GetString() == "Docker");
        Assert.Empty(firewall.RootElement.GetProperty("warnings").EnumerateArray());
    }
}
