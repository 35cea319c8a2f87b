using Dashboard.App.Live;
using Microsoft.AspNetCore.Components;

namespace Dashboard.Web.Components.Shared;

/// <summary>
/// A component fed by the live feed, safe by construction:
/// <list type="bullet">
/// <item>it subscribes exactly once, to <see cref="Topics"/>, before the component's own lifecycle runs (in a sealed
/// <see cref="SetParametersAsync"/>, so no override can skip or repeat it); when the topics change with the parameters or
/// after <see cref="TopicsChanged"/>, the subscription is replaced;</item>
/// <item>the feed filters by topic before anything is posted to this circuit; <see cref="Apply"/> runs on the
/// circuit's dispatcher and says whether to render; renders happen at most ten times a second however fast events arrive;</item>
/// <item>it is disposed asynchronously only (the framework calls nothing else), unsubscribing before
/// <see cref="DisposeCoreAsync"/>, the hook for a page's own timers and loops. Pages do not implement disposal interfaces.</item>
/// </list>
/// </summary>
public abstract class LiveComponentBase : ComponentBase, IAsyncDisposable
{
    private static readonly TimeSpan MinRenderInterval = TimeSpan.FromMilliseconds(100);
    private IDisposable? _subscription;
    private LiveTopic[] _topics = [];
    private int _renderPending;
    private long _lastRender; // Stopwatch timestamp: a step of the wall clock must not hold renders back
    private volatile bool _disposed;

    [Inject]
    private LiveFeed LocalFeed { get; set; } = default!;

    [Inject]
    private IServiceProvider Services { get; set; } = default!;

    private LiveFeed? _feed;

    /// <summary>
    /// Whether this page shows the host picked in the app bar (<see cref="HostSession"/>) instead of this dashboard's own.
    /// Only pages that read and never act on the host say yes: an agent host takes no command from them.
    /// </summary>
    protected virtual bool FollowsHostPicker => false;

    /// <summary>The feed this component reads: the picked host's when it follows the picker, else the local host's.</summary>
    protected LiveFeed Feed => _feed ??= ShownHost is { } shown
        ? Services.GetService<Dashboard.App.Hosts.HostDirectory>()?.FeedOf(shown) ?? LocalFeed
        : FollowsHostPicker && Services.GetService<HostSession>() is { Host: { } host }
        && Services.GetService<Dashboard.App.Hosts.HostDirectory>()?.FeedOf(host) is { } remote ? remote : LocalFeed;

    /// <summary>
    /// A host this component always shows, whatever the picker says (a change's host); null: see <see cref="FollowsHostPicker"/>.
    /// Read once, with the first parameters: a component for another host is a new component (use <c>@key</c>).
    /// </summary>
    protected virtual string? ShownHost => null;

    /// <summary>True when this component shows an agent host (its actions that act on the local host are hidden).</summary>
    protected bool ShowsAgentHost => !ReferenceEquals(Feed, LocalFeed);

    /// <summary>What this component listens to; read after every parameter change and after <see cref="TopicsChanged"/>.</summary>
    protected abstract IReadOnlyList<LiveTopic> Topics { get; }

    /// <summary>Decides whether an event concerns this component (it matched one of <see cref="Topics"/>); return true to schedule a render.</summary>
    protected abstract bool Apply(LiveEvent e);

    public sealed override Task SetParametersAsync(ParameterView parameters)
    {
        parameters.SetParameterProperties(this);
        Subscribe();
        return base.SetParametersAsync(ParameterView.Empty);
    }

    /// <summary>Call when what <see cref="Topics"/> returns has changed for another reason than parameters (a lab picked, a capture chosen).</summary>
    protected void TopicsChanged() => Subscribe();

    private void Subscribe()
    {
        if (_disposed)
        {
            return;
        }

        var topics = Topics;
        if (_subscription is not null && topics.SequenceEqual(_topics))
        {
            return;
        }

        _subscription?.Dispose();
        _topics = [.. topics];
        _subscription = _topics.Length > 0 ? Feed.Subscribe(_topics, OnFeedEvent) : null;
    }

    private void OnFeedEvent(LiveEvent e)
    {
        if (_disposed)
        {
            return;
        }

        _ = InvokeAsync(() =>
        {
            if (_disposed || !Apply(e) || Interlocked.Exchange(ref _renderPending, 1) == 1)
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

    /// <summary>A page's own clean-up (timers, loops), after the subscription is gone.</summary>
    protected virtual ValueTask DisposeCoreAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _subscription?.Dispose();
        _subscription = null;
        await DisposeCoreAsync();
        GC.SuppressFinalize(this);
    }
}
