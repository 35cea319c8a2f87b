using Dashboard.Host;
using Dashboard.Host.Collector;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Dashboard.Agent;

/// <summary>
/// A Docker host's agent: the dashboard's host layer (collector, topology, firewall reads) as its own process,
/// reporting to a dashboard over SignalR and carrying out its probes, runs, captures and traces. Configuration: Agent:Server, Agent:Token (see scripts/agent.sh), and the
/// same Host:* and Collector:* settings as the dashboard's embedded collector.
/// </summary>
public static class AgentProgram
{
    public static async Task Main(string[] args)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(args);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            // Its own tag for trace rules: an agent beside a dashboard on one host never removes the dashboard's.
            [$"{DockerHostOptions.Section}:{nameof(DockerHostOptions.InstanceId)}"] = builder.Configuration[$"{DockerHostOptions.Section}:{nameof(DockerHostOptions.InstanceId)}"] ?? "agent",
        });
        builder.Services.AddOptions<AgentOptions>().Bind(builder.Configuration.GetSection(AgentOptions.Section));
        builder.Services.AddDashboardHost(builder.Configuration);
        builder.Services.AddSingleton<AgentSteps>();
        builder.Services.AddSingleton<AgentSessions>();
        builder.Services.AddSingleton(sp => new AgentConnection(
            sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<AgentOptions>>(),
            sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<AgentConnection>>(),
            sp.GetRequiredService<Dashboard.Host.Docker.ContainerProbe>(),
            sp.GetRequiredService<AgentSteps>(),
            sp.GetRequiredService<AgentSessions>()));
        builder.Services.AddSingleton<ICollectorSink>(sp => sp.GetRequiredService<AgentConnection>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AgentConnection>());
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        var app = builder.Build();

        // The token was read into configuration: the tools the collector starts (iptables-save, nsenter, tcpdump) need not inherit it.
        Environment.SetEnvironmentVariable("Agent__Token", null);
        await app.RunAsync();
    }
}
