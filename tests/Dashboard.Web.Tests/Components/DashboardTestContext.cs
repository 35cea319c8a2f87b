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

    /// <summary>Signs the rendered components in as <paramref name="user"/> (its name and id, as the app's cookie gives them).</summary>
    protected void SignIn(TestUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        var auth = AddAuthorization();
        auth.SetAuthorized(user.Name);
        auth.SetClaims(new System.Security.Claims.Claim(System.Security.Claims.ClaimTypes.NameIdentifier, user.Id));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();
}
