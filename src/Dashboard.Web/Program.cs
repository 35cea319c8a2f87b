using System.Text.Json.Serialization;
using Dashboard.App;
using Dashboard.Data;
using Dashboard.Host;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;
using Dashboard.Web.Api;
using Dashboard.Web.Components;
using Dashboard.App.Changes;
using Dashboard.Web.Hubs;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Diagnostics;
using MudBlazor.Services;

var builder = WebApplication.CreateBuilder(args);

// `move-to-postgres`: moves this installation's SQLite database into PostgreSQL, then exits (no web server).
if (args is [Dashboard.Web.DataMoveCommand.Name, ..])
{
    Environment.ExitCode = await Dashboard.Web.DataMoveCommand.RunAsync(args[1..], builder.Configuration, Console.Out);
    return;
}

// Host names this dashboard answers to (DNS rebinding cannot reach /setup under another name): configuration
// "AllowedHosts", by default the loopback names and this machine's name.
if (string.IsNullOrWhiteSpace(builder.Configuration["AllowedHosts"]))
{
    builder.Configuration["AllowedHosts"] = string.Join(';', new[] { "localhost", "127.0.0.1", "[::1]", Environment.MachineName, Environment.MachineName.ToLowerInvariant() }.Distinct());
}

// Where it listens: --urls, Urls or ASPNETCORE_URLS (the container image's), else loopback port 5000. (A default in
// appsettings.json would override ASPNETCORE_URLS, which ranks below it.)
if (string.IsNullOrWhiteSpace(builder.Configuration[WebHostDefaults.ServerUrlsKey]))
{
    builder.WebHost.UseUrls("http://127.0.0.1:5000");
}

// Serve package and root-wwwroot assets from the build output in every environment (scripts/run.sh uses
// `dotnet run` in Production); in published output the manifest is absent and this does nothing.
builder.WebHost.UseStaticWebAssets();

// Behind a reverse proxy on this machine (deploy/nginx): the client's address and scheme from X-Forwarded-For/-Proto,
// believed only from loopback proxies (ASP.NET Core's default known networks), so the audit names the real client.
var forwarded = builder.Configuration.GetValue("Proxy:Forwarded", false);
if (forwarded)
{
    builder.Services.Configure<ForwardedHeadersOptions>(o => o.ForwardedHeaders = Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedFor | Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedProto);
}

builder.Services.AddRazorComponents().AddInteractiveServerComponents();
builder.Services.AddMudServices();
builder.Services.AddProblemDetails();
builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.Converters.Add(new JsonStringEnumConverter()));
builder.Services.AddSingleton(builder.Configuration.GetSection(ApiOptions.Section).Get<ApiOptions>() ?? new ApiOptions());
builder.Services.AddSingleton<HubSessionGuard>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<HubSessionGuard>());
var signalR = builder.Services.AddSignalR(o => Microsoft.AspNetCore.SignalR.HubOptionsExtensions.AddFilter<HubSessionGuard>(o)).AddJsonProtocol(o => o.PayloadSerializerOptions.Converters.Add(new JsonStringEnumConverter()))
    .AddHubOptions<AgentHub>(o => o.MaximumReceiveMessageSize = Dashboard.Host.Agents.AgentProtocol.MaxMessageBytes);

// The data settings, read once: the provider decides the replicas' check below and where data-protection keys live.
var dataOptions = builder.Configuration.GetSection(DataOptions.Section).Get<DataOptions>() ?? new DataOptions();
var provider = dataOptions.ResolveProvider();

// Replicas (Redis:Connection set): the SignalR backplane for every hub, and the live feed relayed across replicas.
var redisOptions = builder.Configuration.GetSection(Dashboard.Web.Replicas.RedisOptions.Section).Get<Dashboard.Web.Replicas.RedisOptions>() ?? new();
builder.Services.Configure<Dashboard.Web.Replicas.RedisOptions>(builder.Configuration.GetSection(Dashboard.Web.Replicas.RedisOptions.Section));
if (!string.IsNullOrWhiteSpace(redisOptions.Connection))
{
    if (provider != DataOptions.Postgres)
    {
        throw new InvalidOperationException("Redis:Connection is for replicas, which share one PostgreSQL database: set Data:Provider=postgres and Data:ConnectionString too");
    }

    signalR.AddStackExchangeRedis(o =>
    {
        o.Configuration = redisOptions.Client();
        o.Configuration.ChannelPrefix = StackExchange.Redis.RedisChannel.Literal(redisOptions.ChannelPrefix + ":signalr");
    });
    builder.Services.AddSingleton<Dashboard.Web.Replicas.RedisConnection>();
    builder.Services.AddSingleton<Dashboard.Web.Replicas.RedisLiveRelay>();
    builder.Services.AddHostedService(sp => sp.GetRequiredService<Dashboard.Web.Replicas.RedisLiveRelay>());
}

builder.Services.AddScoped<Microsoft.AspNetCore.Components.Server.Circuits.CircuitHandler, Dashboard.Web.Components.CircuitCounter>();
builder.Services.AddHostedService<LabHubForwarder>();
builder.Services.AddHostedService<AgentWatchNotifier>();
builder.Services.AddSingleton<Dashboard.App.Hosts.IAgentCommands, AgentCommands>();
builder.Services.AddDashboardHost(builder.Configuration);
builder.Services.AddDashboardApp(builder.Configuration);
if (!string.IsNullOrWhiteSpace(redisOptions.Connection))
{
    // The embedded collector is a duty too: its holder reads the host and relays the reads; the others apply them.
    // Registered after the app's services: this sink (the live feed plus the relay) replaces the plain live feed.
    builder.Services.AddSingleton<Dashboard.Web.Replicas.RedisCollectorRelay>();
    builder.Services.AddSingleton<Dashboard.Host.Collector.ICollectorSink>(sp => sp.GetRequiredService<Dashboard.Web.Replicas.RedisCollectorRelay>());
    builder.Services.AddSingleton<Dashboard.Host.Collector.ICollectorDuty>(sp => sp.GetRequiredService<Dashboard.Web.Replicas.RedisCollectorRelay>());
    builder.Services.AddHostedService(sp => sp.GetRequiredService<Dashboard.Web.Replicas.RedisCollectorRelay>());
}

builder.Services.AddSingleton<SharedFirewallRead>();
builder.Services.AddDashboardData(builder.Configuration);
// Data-protection keys (cookies, antiforgery) are kept so a restart keeps everyone signed in: with SQLite in the data
// folder (0700); with PostgreSQL in the database, so every replica accepts the cookies the others issued.
var dataProtection = builder.Services.AddDataProtection().SetApplicationName("netlab-dashboard");
if (provider == DataOptions.Postgres)
{
    dataProtection.PersistKeysToDbContext<DashboardDbContext>();
}
else
{
    dataProtection.PersistKeysToFileSystem(Directory.CreateDirectory(Path.Combine(dataOptions.ResolveDirectory(), "keys")));
}

builder.Services.AddDashboardIdentity(builder.Configuration);
builder.Services.AddDashboardRateLimits(builder.Configuration);
builder.Services.AddOptions<Dashboard.Web.Metrics.MetricsOptions>().Bind(builder.Configuration.GetSection(Dashboard.Web.Metrics.MetricsOptions.Section));
builder.Services.AddSingleton<Dashboard.Web.Metrics.NetlabMetrics>();
builder.Services.AddDashboardOpenApi();


var app = builder.Build();

if (forwarded)
{
    app.UseForwardedHeaders();
}

app.UseExceptionHandler(new ExceptionHandlerOptions
{
    // Refusals (role, state, validation) are answers, not faults: no error log with a stack trace for them.
    SuppressDiagnosticsCallback = c => c.Exception is LabAccessException or ChangeValidationException or ChangeStateException or Microsoft.AspNetCore.Http.BadHttpRequestException or Dashboard.App.Hosts.HostUnavailableException,
    ExceptionHandler = async context =>
    {
        // Host outages are states, not crashes: say which part of the host did not answer.
        var error = context.Features.Get<IExceptionHandlerFeature>()?.Error;
        var (status, title) = error switch
        {
            EngineUnavailableException => (StatusCodes.Status503ServiceUnavailable, "Docker engine unavailable"),
            FirewallUnavailableException => (StatusCodes.Status503ServiceUnavailable, "Firewall unreadable"),
            Dashboard.App.Hosts.HostNameException => (StatusCodes.Status400BadRequest, "Host not registered"),
            Dashboard.App.Hosts.HostUnavailableException => (StatusCodes.Status503ServiceUnavailable, "Host unavailable"),
            LabAccessException a => (a.Status, a.Status switch { 401 => "Sign in first", 404 => "Not found", _ => "Forbidden" }),
            ChangeValidationException => (StatusCodes.Status400BadRequest, "Change not accepted"),
            ChangeStateException => (StatusCodes.Status409Conflict, "Not possible in this state"),
            Microsoft.AspNetCore.Http.BadHttpRequestException b => (b.StatusCode, "Bad request"),
            _ => (StatusCodes.Status500InternalServerError, "Unexpected error"),
        };
        context.Response.StatusCode = status;
        var extensions = error is ChangeValidationException v ? new Dictionary<string, object?> { ["errors"] = v.Errors } : null;
        await Results.Problem(statusCode: status, title: title, detail: status == 500 ? null : error?.Message, extensions: extensions).ExecuteAsync(context);
    },
});
app.UseStatusCodePages();
app.UseMiddleware<SecurityHeaders>();
app.UseFirstStartSetup();
app.UseAuthentication();
app.UseMiddleware<CrossSiteGuard>();
app.UseAuthorization();
app.UseRateLimiter();
app.UseAntiforgery();

await Dashboard.Web.ReplicaStartup.RunAsync(app.Services, async () =>
{
    await app.Services.MigrateDashboardDatabaseAsync();
    await app.Services.EnsureConfiguredAdministratorAsync();
});

app.MapStaticAssets().AllowAnonymous();
app.MapReadApi();
app.MapCaptureApi();
app.MapTraceApi();
app.MapIsolationApi();
app.MapRunApi();
app.MapChangeApi();
app.MapAccountApi();
app.MapDiagnosticsApi();
app.MapHostsApi();
app.MapFirewallHistoryApi();
app.MapDashboardOpenApi();
if (builder.Configuration.GetSection(Dashboard.Web.Metrics.MetricsOptions.Section).GetValue("Enabled", true))
{
    // Prometheus text exposition, for a metrics-scoped token only (see Dashboard.Web.Metrics.NetlabMetrics), one scrape at a time.
    var metrics = app.Services.GetRequiredService<Dashboard.Web.Metrics.NetlabMetrics>();
    app.UseWhen(c => c.Request.Path.StartsWithSegments(Dashboard.Web.Identity.ApiTokenAuthenticationHandler.MetricsPath), b => b.Use(async (c, next) =>
    {
        await metrics.ScrapeGate.WaitAsync(c.RequestAborted);
        try
        {
            await next(c);
        }
        finally
        {
            metrics.ScrapeGate.Release();
        }
    }));
    Prometheus.MetricServerMiddlewareExtensions.MapMetrics(app, Dashboard.Web.Identity.ApiTokenAuthenticationHandler.MetricsPath, app.Services.GetRequiredService<Dashboard.Web.Metrics.NetlabMetrics>().Registry)
        .RequireAuthorization(Dashboard.Web.Identity.IdentitySetup.MetricsPolicy);
}

app.MapHub<LabHub>("/hubs/lab");
app.MapHub<AgentHub>(Dashboard.Host.Agents.AgentProtocol.HubPath);
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();

app.Run();

/// <summary>Entry point, visible to WebApplicationFactory in tests.</summary>
public partial class Program;
