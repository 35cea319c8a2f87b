using Dashboard.TestSupport;
using Microsoft.Playwright;

namespace Dashboard.Benchmarks;

/// <summary>
/// Screenshots and HTML of pages of the Release build, signed in as the administrator, at one viewport size:
/// <c>snap FOLDER WIDTH HEIGHT /path...</c>; <c>NETLAB_SNAP_DARK=1</c> takes them in the dark theme (the browser's
/// colour scheme, which the dashboard follows), named <c>-dark</c>.
/// </summary>
internal static class Snapshots
{
    public static async Task<int> RunAsync(string folder, int width, int height, string[] paths)
    {
        Directory.CreateDirectory(folder);
        var work = Directory.CreateTempSubdirectory("netlab-snap-").FullName;
        var port = AppProcess.FreePort();
        using var app = AppProcess.Start(port, work);
        try
        {
            await LiveBenchmark.WaitForAsync($"http://127.0.0.1:{port}/api/collector");
            using var playwright = await Playwright.CreateAsync();
            await using var browser = await BenchmarkBrowser.LaunchAsync(playwright, work);
            var dark = Environment.GetEnvironmentVariable("NETLAB_SNAP_DARK") == "1";
            var context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = width, Height = height }, ColorScheme = dark ? ColorScheme.Dark : ColorScheme.Light });
            var page = await context.NewPageAsync();
            await BenchmarkBrowser.SignInAsync(page, port, "/");
            foreach (var path in paths)
            {
                await page.GotoAsync($"http://127.0.0.1:{port}{path}");
                await page.Locator("[data-testid='circuit'][data-interactive='true']").WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 30_000 });
                await Task.Delay(1500);
                var name = path.Trim('/').Replace('/', '_').Replace('?', '_');
                name = name.Length == 0 ? "overview" : name;
                await File.WriteAllTextAsync(Path.Combine(folder, name + ".html"), await page.ContentAsync());
                await page.ScreenshotAsync(new() { Path = Path.Combine(folder, $"{name}-{width}{(dark ? "-dark" : "")}.png"), FullPage = false });
                Console.WriteLine($"{path} → {name}");
            }

            return 0;
        }
        finally
        {
            app.Kill(entireProcessTree: true);
            await app.WaitForExitAsync();
            Directory.Delete(work, recursive: true);
        }
    }
}
