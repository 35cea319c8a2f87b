using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Host.Tests;

/// <summary>The host adapters as the app wires them, against the local engine.</summary>
internal static class HostServices
{
    public static ServiceProvider Build(Dictionary<string, string?>? settings = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddDashboardHost(new ConfigurationBuilder().AddInMemoryCollection(settings ?? []).Build());
        return services.BuildServiceProvider();
    }

    public static (DockerTopologyReader Topology, HostFirewallReader Firewall, HostInspector Inspector) Resolve(ServiceProvider sp) =>
        (sp.GetRequiredService<DockerTopologyReader>(), sp.GetRequiredService<HostFirewallReader>(), sp.GetRequiredService<HostInspector>());
}
