using Dashboard.Web.Live;
using Microsoft.AspNetCore.Components;

namespace Dashboard.Web.Components.Shared;

/// <summary>
/// A component fed by the live feed: subscribes on init, re-renders at most ten times a second however fast events
/// arrive, and disposes its subscription with the component.
/// </summary>
public abstract class LiveComponentBase : ComponentBase, IDisposable
{
    private static readonly TimeSpan MinRenderInterval = TimeSpan.FromMilliseconds(100);
    private IDisposable? _subscription;
    private int _renderPending;
    private long _lastRender; // Stopwatch timestamp: a step of the wall clock must not hold renders back
    private bool _disposed;

    [Inject]
    protected LiveFeed Feed { get; set; } = default!;

    protected override void OnInitialized()
    {
        _subscription = Feed.Subscribe(OnFeedEvent);
        base.OnInitialized();
    }

    /// <summary>Decides whether an event concerns this component; return true to schedule a render.</summary>
    protected abstract bool Apply(LiveEvent e);

    private void OnFeedEvent(LiveEvent e)
    {
        if (_disposed)
        {
            return;
        }

        _ = InvokeAsync(() =>
        {
            if (!Apply(e) || Interlocked.Exchange(ref _renderPending, 1) == 1)
            {
                return Task.CompletedTask;
            }

            var wait = MinRenderInterval - System.Diagnostics.Stopwatch.GetElapsedTime(_lastRender);
            return wait > TimeSpan.Zero ? RenderLaterAsync(wait) : RenderNow();
        });
    }

    private async Task RenderLaterAsync(TimeSpan wait)
    {
        await Task.Delay(wait);
        await RenderNow();
    }

    private Task RenderNow()
    {
        Interlocked.Exchange(ref _renderPending, 0);
        _lastRender = System.Diagnostics.Stopwatch.GetTimestamp();
        if (!_disposed)
        {
            StateHasChanged();
        }

        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _disposed = true;
        _subscription?.Dispose();
        GC.SuppressFinalize(this);
    }
}
