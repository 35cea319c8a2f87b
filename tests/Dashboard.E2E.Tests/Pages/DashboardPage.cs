using Microsoft.Playwright;

namespace Dashboard.E2E.Tests.Pages;

/// <summary>Any page of the dashboard: navigation and the wait for the interactive circuit.</summary>
public class DashboardPage(IPage page)
{
    public IPage Page { get; } = page;

    public async Task OpenAsync(string path)
    {
        await Page.GotoAsync(path);
        await Page.Locator("[data-testid='circuit'][data-interactive='true']").WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 20_000 });
    }
}

public sealed class FirewallPage(IPage page) : DashboardPage(page)
{
    /// <summary>The row of the Docker rule that drops traffic going out to <paramref name="bridge"/> (the isolation DROP).</summary>
    public ILocator IsolationDropRow(string bridge) =>
        Page.Locator($".rule[data-key$='-o {bridge} -j DROP']").First;

    public async Task<ulong> PacketsAsync(ILocator row) => ulong.Parse(await row.Locator(".pkts").InnerTextAsync(), System.Globalization.CultureInfo.InvariantCulture);
}

public sealed class TopologyPage(IPage page) : DashboardPage(page)
{
    public ILocator Bridge(string name) => Page.Locator($"[data-testid='bridge-node'][data-name='{name}']");

    public ILocator Veth(string name) => Page.Locator($"[data-testid='veth-node'][data-name='{name}']");

    public ILocator DropPoint(string bridge) => Page.Locator($"[data-testid='drop-point'][data-bridge='{bridge}']");
}

public sealed class OverviewPage(IPage page) : DashboardPage(page)
{
    public ILocator EngineError => Page.Locator("[data-testid='engine-error']");

    public ILocator EngineVersion => Page.Locator("[data-testid='engine-version']");

    public ILocator StaleTopology => Page.Locator("[data-testid='stale-topology']");
}

public sealed class CapturesPage(IPage page) : DashboardPage(page)
{
    public ILocator Start => Page.Locator("[data-testid='capture-start']");

    public ILocator FilterInput => Page.Locator("[data-testid='capture-filter'] input, input[data-testid='capture-filter']").First;

    public ILocator Error => Page.Locator("[data-testid='capture-error']");

    public ILocator Session(string iface) => Page.Locator($"[data-testid='capture-row'][data-interface='{iface}']");

    public ILocator Rows(string iface) => Page.Locator($"[data-testid='packet-row'][data-interface='{iface}']");

    public ILocator TraceStart => Page.Locator("[data-testid='trace-start']");

    public ILocator TracedPackets(string source, string verdict) => Page.Locator($"[data-testid='traced-packet'][data-source='{source}'][data-verdict='{verdict}']");
}

public sealed class ChangesPage(IPage page) : DashboardPage(page)
{
    public ILocator Field(string testId) => Page.Locator($"[data-testid='{testId}'] input, input[data-testid='{testId}'], [data-testid='{testId}'] textarea, textarea[data-testid='{testId}']").First;

    public ILocator Row(int id) => Page.Locator($"[data-testid='changes-table'] tr:has([data-testid='change-id']:text-is('{id}'))");

    public ILocator State(int id) => Row(id).Locator("[data-testid='change-state']");

    public ILocator Review => Page.Locator("[data-testid='change-review']");

    /// <summary>Fills the propose form for an ACCEPT from one bridge to another at the head of DOCKER-USER and submits it.</summary>
    public async Task ProposeAsync(string inInterface, string outInterface, string rationale)
    {
        // The form clears the rationale when the previous proposal is saved: wait for that before typing the next one.
        await Assertions.Expect(Field("cr-rationale")).ToHaveValueAsync("", new() { Timeout = 15_000 });
        await Field("cr-in").FillAsync(inInterface);
        await Field("cr-out").FillAsync(outInterface);
        await Field("cr-rationale").FillAsync(rationale);
        await Page.Locator("[data-testid='cr-propose']").ClickAsync();
    }
}

public sealed class FirewallHistoryPage(IPage page) : DashboardPage(page)
{
    public ILocator OutsideBanner(string text) => Page.Locator("[data-testid='outside-change-banner']").Filter(new() { HasText = text });

    public ILocator Rows(string cause, string text) => Page.Locator($"[data-testid='history-row'][data-cause='{cause}']").Filter(new() { HasText = text });

    public ILocator Picture => Page.Locator("[data-testid='history-picture']");

    public ILocator DiffTable => Page.Locator("[data-testid='diff-table']");
}
