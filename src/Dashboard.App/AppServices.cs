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

        // The singleton duties' lease: this process's with SQLite, an advisory lock among replicas with PostgreSQL.
        services.AddOptions<Dashboard.App.Replicas.ReplicaOptions>().Bind(configuration.GetSection(Dashboard.App.Replicas.ReplicaOptions.Section))
            .Validate(o => o.Retry >= TimeSpan.FromMilliseconds(100) && o.Retry <= TimeSpan.FromSeconds(25), "Replicas:Retry is 00:00:00.1 to 00:00:25 (a takeover waits at most this long)")
            .Validate(o => o.Check >= TimeSpan.FromSeconds(1) && o.Check <= TimeSpan.FromMinutes(1), "Replicas:Check is 00:00:01 to 00:01:00")
            .Validate(o => o.Name is null || o.Name.Trim().Length is > 0 and <= 48, "Replicas:Name is 1 to 48 characters")
            .ValidateOnStart();
        if ((configuration.GetSection(DataOptions.Section).Get<DataOptions>() ?? new DataOptions()).ResolveProvider() == DataOptions.Postgres)
        {
            services.AddSingleton<Dashboard.App.Replicas.PostgresDutyLease>();
            services.AddSingleton<Dashboard.App.Replicas.IDutyLease>(sp => sp.GetRequiredService<Dashboard.App.Replicas.PostgresDutyLease>());
            services.AddHostedService(sp => sp.GetRequiredService<Dashboard.App.Replicas.PostgresDutyLease>());
            services.AddHostedService<Dashboard.App.Replicas.TraceLeftoverSweep>();
        }
        else
        {
            services.AddSingleton<Dashboard.App.Replicas.IDutyLease, Dashboard.App.Replicas.LocalDutyLease>();
        }
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
