using Bunit;
using Dashboard.Core.Firewall;
using Dashboard.Data.Entities;
using Dashboard.Host.Collector;
using Dashboard.Web.Components.Pages.Captures;
using Dashboard.Web.Components.Pages.Changes;
using Dashboard.Web.Components.Pages.Containers;
using Dashboard.Web.Components.Pages.Experiments;
using Dashboard.Web.Components.Pages.Firewall;
using Dashboard.Web.Components.Pages.Isolation;
using Dashboard.Web.Components.Pages.Networks;
using Dashboard.Web.Components.Pages.Overview;
using Dashboard.Web.Components.Pages.Topology;
using Dashboard.Web.Components.Shared;
using Dashboard.App.Labs;
using Dashboard.App.Live;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Components;

/// <summary>
/// The live path's contract: events reach only the subscribers whose topics match, and every live page subscribes
/// exactly once and unsubscribes when the renderer disposes it (the framework's path: a navigation swaps the page in a
/// <see cref="DynamicComponent"/>, as the router's RouteView does), rendered with the app's real services.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class LiveSubscriptionTests : DashboardTestContext
{
    private readonly DashboardFactory _app = new();

    public LiveSubscriptionTests()
    {
        Services.AddScoped(sp => new LabSession(sp.GetRequiredService<Microsoft.AspNetCore.Components.Authorization.AuthenticationStateProvider>(), _app.Services.GetRequiredService<LabAccess>()));
        Services.AddFallbackServiceProvider(_app.Services);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _app.Dispose();
        }
    }

    /// <summary>Every component that inherits <see cref="LiveComponentBase"/>, with the parameters a route would give it.</summary>
    /// <summary>The capture page holds the trace panel: two live components, two subscriptions.</summary>
    private static int SubscriptionsOf(Type page) => page == typeof(CapturePage) ? 2 : 1;

    private static IEnumerable<(Type Page, Dictionary<string, object> Parameters)> LivePages() =>
    [
        (typeof(OverviewPage), []),
        (typeof(FirewallPage), []),
        (typeof(NetworksPage), []),
        (typeof(NetworkDetailPage), new() { ["Name"] = "bridge" }),
        (typeof(ContainersPage), []),
        (typeof(TopologyPage), []),
        (typeof(IsolationPage), []),
        (typeof(CapturePage), []),
        (typeof(TracePanel), []),
        (typeof(ChangesPage), []),
        (typeof(RunPage), new() { ["Id"] = Guid.NewGuid() }),
        (typeof(StagedRulePanel), new() { ["Change"] = StagedChange() }),
        (typeof(FirewallHistoryPage), []),
        (typeof(OutsideChangeBanner), new() { ["Host"] = "local" }),
    ];

    /// <summary>A change whose staged rule counts (the panel the change page shows beside the what-if).</summary>
    private static ChangeDto StagedChange()
    {
        var rule = new Dashboard.Core.Changes.ChangeRule { Chain = "DOCKER-USER", Source = "172.31.9.0/24", Target = "ACCEPT" };
        var at = DateTimeOffset.UtcNow;
        return new ChangeDto(1, 1, rule, rule.Describe(), "why", null, ChangeState.Proposed, "alice", at, at, null, null, null, false, "netlab:change-main-1", "iptables", null, null, null, null, null, null, null, null,
            new ChangeStageDto(true, "netlab:change-main-1-staged", at, "alice", at.AddHours(1), null, null, null));
    }

    [Fact]
    public void EveryLiveComponent_IsListed_AndNoneImplementsItsOwnDisposal()
    {
        var live = typeof(LiveComponentBase).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(LiveComponentBase)) && !t.IsAbstract).ToHashSet();
        Assert.Equal(live.OrderBy(t => t.Name).Select(t => t.Name), LivePages().Select(p => p.Page).OrderBy(t => t.Name).Select(t => t.Name));

        // A page's own IDisposable or DisposeAsync would hide the base's (the framework then calls only one of them).
        Assert.All(live, t =>
        {
            Assert.False(typeof(IDisposable).IsAssignableFrom(t), $"{t.Name} implements IDisposable: override DisposeCoreAsync instead");
            Assert.Null(t.GetMethod("DisposeAsync", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.DeclaredOnly));
        });
    }

    [SkippableFact]
    public async Task HundredNavigations_AcrossEveryLivePage_LeaveTheFeedAsItWas()
    {
        RealHost.Require();
        var otto = await _app.CreateUserAsync("otto", 1, LabRole.Operator);
        SignIn(otto);

        var baseline = Feed.SubscriberCount;
        var pages = LivePages().ToList();
        var host = Render<DynamicComponent>(p => p.Add(x => x.Type, pages[0].Page).Add(x => x.Parameters, pages[0].Parameters));
        for (var i = 0; i < 100; i++)
        {
            var (page, parameters) = pages[i % pages.Count];
            host.Render(p => p.Add(x => x.Type, page).Add(x => x.Parameters, parameters));

            // Exactly one subscription per live component on screen, whatever its initialisation does (some subscribe
            // once their lab is known, after an await).
            host.WaitForAssertion(() => Assert.True(baseline + SubscriptionsOf(page) == Feed.SubscriberCount, $"{page.Name} (navigation {i}): {Feed.SubscriberCount - baseline} subscriptions"), TimeSpan.FromSeconds(10));
        }

        await DisposeComponentsAsync();
        Assert.Equal(baseline, Feed.SubscriberCount);
    }

    [Fact]
    public void Publish_ReachesOnlyTheSubscribersWhoseTopicMatches()
    {
        var topology = new List<LiveEvent>();
        var anyCounters = new List<LiveEvent>();
        var userChain = new List<LiveEvent>();
        var otherChain = new List<LiveEvent>();
        using var s1 = Feed.Subscribe([LiveTopic.Topology], topology.Add);
        using var s2 = Feed.Subscribe([LiveTopic.Counters()], anyCounters.Add);
        using var s3 = Feed.Subscribe([LiveTopic.Counters("filter", "DOCKER-USER")], userChain.Add);
        using var s4 = Feed.Subscribe([LiveTopic.Counters("filter", "FORWARD")], otherChain.Add);

        var id = new RuleId(TableFamily.Ipv4, "filter", "DOCKER-USER", "-j RETURN");
        ((ICollectorSink)Feed).CountersChanged(new CountersUpdate("test-host", DateTimeOffset.UtcNow, [new RuleCounterChange(id, 1, 5, 420, 5, 420, false)], []));

        Assert.Empty(topology);
        Assert.Single(anyCounters);
        Assert.Single(userChain);
        Assert.Empty(otherChain);
    }

    [Fact]
    public void DisposedSubscription_HearsNothingMore_AndLeavesTheCount()
    {
        var before = Feed.SubscriberCount;
        var heard = 0;
        var s = Feed.Subscribe([LiveTopic.Status], _ => heard++);
        Assert.Equal(before + 1, Feed.SubscriberCount);
        ((ICollectorSink)Feed).StatusChanged(CollectorStatus.Starting("test-host", 0));
        s.Dispose();
        s.Dispose();
        ((ICollectorSink)Feed).StatusChanged(CollectorStatus.Starting("test-host", 0));
        Assert.Equal(1, heard);
        Assert.Equal(before, Feed.SubscriberCount);
    }
}
