using Bunit;
using Dashboard.Host;
using Dashboard.App.Live;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MudBlazor.Services;

namespace Dashboard.Web.Tests.Components;

/// <summary>
/// bUnit context with MudBlazor (no transitions), loose JS interop and a live feed the test drives by calling the
/// collector's sink methods. MudBlazor's services are async-disposable only: xUnit 2 disposes through IAsyncLifetime.
/// </summary>
public abstract class DashboardTestContext : BunitContext, IAsyncLifetime
{
    protected DashboardTestContext()
    {
        JSInterop.Mode = JSRuntimeMode.Loose;
        Services.AddMudServices(o =>
        {
            o.SnackbarConfiguration.ShowTransitionDuration = 0;
            o.SnackbarConfiguration.HideTransitionDuration = 0;
            o.PopoverOptions.CheckForPopoverProvider = false;
        });
        Feed = new LiveFeed(Options.Create(new DockerHostOptions { Name = "test-host" }));
        Services.AddSingleton(Feed);
    }

    protected LiveFeed Feed { get; }

    public Task InitializeAsync() => Task.CompletedTask;

    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();
}
