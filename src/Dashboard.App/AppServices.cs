using Dashboard.App.Audit;
using Dashboard.App.Captures;
using Dashboard.App.Changes;
using Dashboard.App.Isolation;
using Dashboard.App.Labs;
using Dashboard.App.Live;
using Dashboard.App.Runs;
using Dashboard.Data;
using Dashboard.Host;
using Dashboard.Host.Collector;
using Microsoft.Extensions.Options;

namespace Dashboard.App;

/// <summary>Registers the application layer: every use case's service, the live feed and the hosted loops, in one place.</summary>
public static class AppServices
{
    public static IServiceCollection AddDashboardApp(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<AuditLog>();
        services.AddSingleton<LabAccess>();

        services.AddSingleton<LiveFeed>();
        services.AddSingleton<Dashboard.App.Hosts.HostRegistry>();
        services.AddSingleton<Dashboard.App.Hosts.HostDirectory>();
        services.AddSingleton<ICollectorSink>(sp => sp.GetRequiredService<LiveFeed>());
        services.AddHostedService<CaptureRelay>();

        // Captures keep their pcaps under the data folder (0700), not in /tmp.
        services.AddOptions<DockerHostOptions>().PostConfigure<IOptions<DataOptions>>((h, d) => h.CaptureDirectory ??= Path.Combine(d.Value.ResolveDirectory(), "captures"));
        services.AddOptions<CaptureLimitsOptions>().Bind(configuration.GetSection(CaptureLimitsOptions.Section));
        services.AddSingleton<HostSessions>();

        services.AddSingleton<IsolationService>();
        services.AddSingleton<RunService>();
        services.AddSingleton<RunHistory>();
        services.AddSingleton<Dashboard.App.Experiments.ExperimentService>();
        services.AddHostedService(sp => sp.GetRequiredService<RunService>());
        services.AddOptions<ChangeOptions>().Bind(configuration.GetSection(ChangeOptions.Section));
        services.AddSingleton<ChangeHostApplier>();
        services.AddSingleton<ChangeRequestService>();
        services.AddSingleton<ChangeReconciler>();
        services.AddHostedService(sp => sp.GetRequiredService<ChangeReconciler>());

        services.AddOptions<Dashboard.App.Firewall.FirewallHistoryOptions>().Bind(configuration.GetSection(Dashboard.App.Firewall.FirewallHistoryOptions.Section))
            .Validate(o => o.DockerWindow > TimeSpan.Zero && o.DockerWindow <= TimeSpan.FromMinutes(1), "FirewallHistory:DockerWindow is more than 0 and at most 00:01:00")
            .Validate(o => o.Retention >= TimeSpan.FromHours(1) && o.Retention <= TimeSpan.FromDays(3650), "FirewallHistory:Retention is 01:00:00 to 3650.00:00:00")
            .Validate(o => o.CheckpointEvery is >= 100 and <= 1_000_000, "FirewallHistory:CheckpointEvery is 100 to 1000000")
            .Validate(o => o.AlertShownFor >= TimeSpan.Zero && o.AlertShownFor <= TimeSpan.FromDays(7), "FirewallHistory:AlertShownFor is 00:00:00 to 7.00:00:00")
            .ValidateOnStart();
        services.AddSingleton<Dashboard.App.Firewall.FirewallHistoryQueries>();
        services.AddSingleton<Dashboard.App.Firewall.FirewallHistoryRecorder>();
        services.AddHostedService(sp => sp.GetRequiredService<Dashboard.App.Firewall.FirewallHistoryRecorder>());
        return services;
    }
}
