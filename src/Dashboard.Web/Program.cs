using System.Text.Json.Serialization;
using Dashboard.Data;
using Dashboard.Host;
using Dashboard.Host.Collector;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;
using Dashboard.Web.Api;
using Dashboard.Web.Components;
using Dashboard.Web.Hubs;
using Dashboard.Web.Live;
using Microsoft.AspNetCore.Diagnostics;
using MudBlazor.Services;

var builder = WebApplication.CreateBuilder(args);

// Serve package and root-wwwroot assets from the build output in every environment (scripts/run.sh uses
// `dotnet run` in Production); in published output the manifest is absent and this does nothing.
builder.WebHost.UseStaticWebAssets();

builder.Services.AddRazorComponents().AddInteractiveServerComponents();
builder.Services.AddMudServices();
builder.Services.AddProblemDetails();
builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.Converters.Add(new JsonStringEnumConverter()));
builder.Services.AddSingleton(builder.Configuration.GetSection(ApiOptions.Section).Get<ApiOptions>() ?? new ApiOptions());
builder.Services.AddSignalR().AddJsonProtocol(o => o.PayloadSerializerOptions.Converters.Add(new JsonStringEnumConverter()));
builder.Services.AddSingleton<LiveFeed>();
builder.Services.AddSingleton<ICollectorSink>(sp => sp.GetRequiredService<LiveFeed>());
builder.Services.AddHostedService<LabHubForwarder>();
builder.Services.AddHostedService<CaptureRelay>();
builder.Services.AddSingleton<Dashboard.Web.Isolation.IsolationService>();
builder.Services.AddSingleton<Dashboard.Web.Experiments.RunService>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<Dashboard.Web.Experiments.RunService>());
builder.Services.AddDashboardHost(builder.Configuration);
builder.Services.AddDashboardData(builder.Configuration);

var app = builder.Build();

app.UseExceptionHandler(errors => errors.Run(async context =>
{
    // Host outages are states, not crashes: say which part of the host did not answer.
    var error = context.Features.Get<IExceptionHandlerFeature>()?.Error;
    var (status, title) = error switch
    {
        EngineUnavailableException => (StatusCodes.Status503ServiceUnavailable, "Docker engine unavailable"),
        FirewallUnavailableException => (StatusCodes.Status503ServiceUnavailable, "Firewall unreadable"),
        _ => (StatusCodes.Status500InternalServerError, "Unexpected error"),
    };
    context.Response.StatusCode = status;
    await Results.Problem(statusCode: status, title: title, detail: status == 500 ? null : error?.Message).ExecuteAsync(context);
}));
app.UseStatusCodePages();
app.UseAntiforgery();

await app.Services.MigrateDashboardDatabaseAsync();

app.MapStaticAssets();
app.MapReadApi();
app.MapCaptureApi();
app.MapTraceApi();
app.MapIsolationApi();
app.MapRunApi();
app.MapHub<LabHub>("/hubs/lab");
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();

app.Run();

/// <summary>Entry point, visible to WebApplicationFactory in tests.</summary>
public partial class Program;
