using Dashboard.TestSupport;
using Microsoft.Playwright;

namespace Dashboard.Benchmarks;

/// <summary>Debian's Chromium for the benchmarks (never a downloaded browser), and signing in as the configured administrator.</summary>
internal static class BenchmarkBrowser
{
    public static Task<IBrowser> LaunchAsync(IPlaywright playwright, string home, params string[] extraArgs) =>
        playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Args = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", .. extraArgs],
            Env = new Dictionary<string, string> { ["HOME"] = home },
            Timeout = 60_000,
        });

    /// <summary>Signs in on <paramref name="page"/> and waits until <paramref name="path"/> (e.g. <c>/firewall</c>) is open and its circuit interactive.</summary>
    public static Task SignInAsync(IPage page, int port, string path) => SignInAsync(page, $"http://127.0.0.1:{port}", path);

    /// <summary>The same through any address (<paramref name="origin"/>: scheme, host and port, no slash at the end), e.g. nginx in front of replicas.</summary>
    public static async Task SignInAsync(IPage page, string origin, string path)
    {
        await page.GotoAsync($"{origin}/account/login?ReturnUrl={Uri.EscapeDataString(path)}");
        await page.FillAsync("[data-testid=login-user]", DashboardFactory.AdminUser);
        await page.FillAsync("[data-testid=login-password]", DashboardFactory.AdminPassword);
        await page.ClickAsync("[data-testid=login-submit]");
        await page.WaitForURLAsync($"{origin}{path}", new() { Timeout = 30_000 });
        await page.Locator("[data-testid='circuit'][data-interactive='true']").WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 30_000 });
    }
}
