using Dashboard.Host.Capture;
using Dashboard.Host.Collector;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;
using Dashboard.Host.Processes;
using Docker.DotNet;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Dashboard.Host;

public static class ServiceCollectionExtensions
{
    /// <summary>Registers the host collector's adapters: the Docker client, the process runner, the firewall and topology readers.</summary>
    public static IServiceCollection AddDashboardHost(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<DockerHostOptions>().Bind(configuration.GetSection(DockerHostOptions.Section));
        services.AddSingleton<IProcessRunner, ProcessRunner>();
        services.AddSingleton<IDockerClient>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<DockerHostOptions>>().Value;
            return new DockerClientBuilder()
                .WithEndpoint(new Uri(o.DockerEndpoint))
                .WithApiVersion(Version.Parse(o.DockerApiVersion))
                .WithTimeout(TimeSpan.FromSeconds(30))
                .Build();
        });
        services.AddSingleton<DockerTopologyReader>();
        services.AddSingleton<ITopologySource>(sp => sp.GetRequiredService<DockerTopologyReader>());
        services.AddSingleton<HostFirewallReader>();
        services.AddSingleton<IptablesRuleWriter>();
        services.AddSingleton<HostInspector>();
        services.AddSingleton<ContainerProbe>();
        services.AddSingleton<LabProvisioner>();

        // A singleton disposed with the host: stopping the dashboard ends every tcpdump it started.
        services.AddSingleton<CaptureService>();
        services.AddHostedService(sp => sp.GetRequiredService<CaptureService>());
        // Also hosted: removes TRACE rules a crashed run left behind, and its own when the dashboard stops.
        services.AddSingleton<TraceService>();
        services.AddHostedService(sp => sp.GetRequiredService<TraceService>());
        services.AddOptions<CollectorOptions>().Bind(configuration.GetSection(CollectorOptions.Section));
        services.AddSingleton<CollectorReadObserver>();
        services.AddSingleton<HostCollector>();
        if (configuration.GetSection(CollectorOptions.Section).GetValue("Enabled", true))
        {
            services.AddHostedService(sp => sp.GetRequiredService<HostCollector>());
        }

        return services;
    }
}
