using Dashboard.App.Live;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Dashboard.Web.Tests.Hubs;

/// <summary>Who counts as watching the counters (the collector reads faster while anyone does), and who does not.</summary>
public class CounterWatchersTests
{
    [Fact]
    public void Feed_CounterSubscriptionsCount_OtherTopicsAndRelaysDoNot()
    {
        var feed = new LiveFeed(Options.Create(new Dashboard.Host.DockerHostOptions()));
        using var topology = feed.Subscribe([LiveTopic.Topology, LiveTopic.Status], _ => { });
        using var relay = feed.Subscribe(LiveTopic.Everything, _ => { }, relay: true);
        Assert.Equal(0, feed.CounterWatchers);

        var page = feed.Subscribe([LiveTopic.Firewall, LiveTopic.Counters("filter", "FORWARD")], _ => { });
        var outside = feed.WatchCounters();
        Assert.Equal(2, feed.CounterWatchers);

        page.Dispose();
        page.Dispose();
        outside.Dispose();
        outside.Dispose();
        Assert.Equal(0, feed.CounterWatchers);
    }

    [Fact]
    public async Task Hub_ConnectionInTheHostGroup_WatchesUntilItLeavesOrCloses()
    {
        using var factory = new DashboardFactory();
        var feed = factory.Services.GetRequiredService<LiveFeed>();
        var baseline = feed.CounterWatchers;
        var hub = TestHub.Connect(factory, factory.AdminToken);
        await using (hub)
        {
            await hub.StartAsync();
            Assert.Equal(baseline + 1, feed.CounterWatchers);

            await hub.InvokeAsync("LeaveHost", feed.Host);
            Assert.Equal(baseline, feed.CounterWatchers);

            await hub.InvokeAsync("JoinHost", feed.Host);
            await hub.InvokeAsync("JoinHost", feed.Host);
            Assert.Equal(baseline + 1, feed.CounterWatchers);

            await hub.StopAsync();
        }

        for (var i = 0; i < 50 && feed.CounterWatchers != baseline; i++)
        {
            await Task.Delay(100);
        }

        Assert.Equal(baseline, feed.CounterWatchers);
    }
}
