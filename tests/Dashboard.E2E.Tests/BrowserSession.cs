using Dashboard.TestSupport;
using Microsoft.Playwright;

namespace Dashboard.E2E.Tests;

/// <summary>Debian's Chromium driven by Playwright (never a downloaded browser), with a throwaway profile and HOME.</summary>
public sealed class BrowserSession : IAsyncDisposable
{
    private readonly IPlaywright _playwright;
    private readonly string _home;

    private BrowserSession(IPlaywright playwright, IBrowser browser, string home)
    {
        _playwright = playwright;
        Browser = browser;
        _home = home;
    }

    public IBrowser Browser { get; }

    public static string ScreenshotDirectory { get; } = Directory.CreateDirectory(Path.Combine(TestPaths.RepoRoot, "artifacts", "screenshots")).FullName;

    public static async Task<BrowserSession> StartAsync()
    {
        const string chromium = "/usr/bin/chromium";
        if (!File.Exists(chromium))
        {
            if (RealHost.Required)
            {
                throw new InvalidOperationException("Chromium is not installed at /usr/bin/chromium (scripts/lab-setup.sh installs it)");
            }

            throw new SkipException("needs Debian's chromium at /usr/bin/chromium (scripts/lab-setup.sh installs it)");
        }

        var home = Directory.CreateTempSubdirectory("netlab-chromium-").FullName;
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
            Env = new Dictionary<string, string> { ["HOME"] = home },
        });
        return new BrowserSession(playwright, browser, home);
    }

    /// <summary>
    /// A page in a browser context of its own (its own cookies, plus <paramref name="cookies"/> for <paramref name="baseUri"/>),
    /// signed in as <paramref name="user"/> (the administrator by default; null: not signed in).
    /// </summary>
    public async Task<IPage> NewPageAsync(Uri baseUri, string? user = DashboardFactory.AdminUser, string password = DashboardFactory.AdminPassword, int width = 1366, int height = 900, IReadOnlyDictionary<string, string>? cookies = null)
    {
        ArgumentNullException.ThrowIfNull(baseUri);
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = baseUri.ToString(), ViewportSize = new ViewportSize { Width = width, Height = height } });
        if (cookies is { Count: > 0 })
        {
            await context.AddCookiesAsync(cookies.Select(c => new Cookie { Name = c.Key, Value = c.Value, Url = baseUri.ToString() }));
        }

        var page = await context.NewPageAsync();
        if (user is not null)
        {
            await SignInAsync(page, user, password);
        }

        return page;
    }

    /// <summary>Signs in through the sign-in page and waits until the dashboard shows who is signed in.</summary>
    public static async Task SignInAsync(IPage page, string user, string password)
    {
        await page.GotoAsync("account/login");
        await SubmitFormAsync(page, "login", ("user", user), ("password", password));
        await page.WaitForURLAsync(u => !u.Contains("/account/login", StringComparison.Ordinal), new PageWaitForURLOptions { Timeout = 15_000 });
    }

    /// <summary>Fills a server-rendered account form (fields <c>data-testid="{form}-{field}"</c>) and presses its <c>{form}-submit</c> button.</summary>
    public static async Task SubmitFormAsync(IPage page, string form, params (string Field, string Value)[] fields)
    {
        foreach (var (field, value) in fields)
        {
            await page.FillAsync($"[data-testid={form}-{field}]", value);
        }

        await page.ClickAsync($"[data-testid={form}-submit]");
    }

    public static Task ScreenshotAsync(IPage page, string name) =>
        page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ScreenshotDirectory, name + ".png"), FullPage = true });

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
