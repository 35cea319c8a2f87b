using System.Diagnostics;
using System.Globalization;
using Dashboard.App.Live;
using Dashboard.Core.Firewall;
using Dashboard.Web.Identity;
using Dashboard.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Benchmarks;

/// <summary>
/// Issue 19's benchmark: GET /metrics over HTTP (Kestrel, a metrics-scoped token) for a host of <c>rules</c> rules, the
/// first scrape (every series made) and then scrapes while every rule's counters move between them, as on a busy host.
/// </summary>
internal static class MetricsBenchmark
{
    public static async Task<int> RunAsync(int rules)
    {
        using var app = new DashboardFactory(new() { ["Metrics:MaxRulesPerHost"] = rules.ToString(CultureInfo.InvariantCulture) }, kestrel: true);
        var feed = app.Services.GetRequiredService<LiveFeed>();
        var token = (await app.Services.GetRequiredService<ApiTokenService>().CreateAsync(await app.AdminAsync(), "bench", null, scope: TokenScopes.Metrics)).Token;
        using var http = new HttpClient { BaseAddress = app.BaseUri };
        http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        const int Sets = 33;
        var rulesets = Enumerable.Range(0, Sets).Select(s => IptablesSaveReader.Read(Generated.IptablesSave(rules, s))).ToList();
        Console.WriteLine($"== /metrics: {rules} rules on one host, {Environment.ProcessorCount} cores ==");

        feed.FirewallChanged(rulesets[0], DateTimeOffset.UtcNow);
        var sw = Stopwatch.StartNew();
        var first = await http.GetByteArrayAsync("/metrics");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"first scrape (every series made): {sw.Elapsed.TotalMilliseconds:0.0} ms, {first.Length / 1024.0:0} KiB, {first.Count(b => b == '\n')} lines"));

        async Task<List<double>> ScrapesAsync(bool moving)
        {
            var samples = new List<double>();
            for (var i = 1; i < Sets; i++)
            {
                if (moving)
                {
                    feed.FirewallChanged(rulesets[i], DateTimeOffset.UtcNow); // every rule's counters higher than at the last scrape
                }

                var t = Stopwatch.StartNew();
                var body = await http.GetByteArrayAsync("/metrics");
                samples.Add(t.Elapsed.TotalMilliseconds);
                if (body.Length < first.Length / 2)
                {
                    throw new InvalidOperationException($"a scrape of {body.Length} bytes: series went missing");
                }
            }

            return samples;
        }

        await ScrapesAsync(moving: false); // warm-up
        var still = Stats.Of(await ScrapesAsync(moving: false));
        feed.FirewallChanged(rulesets[0], DateTimeOffset.UtcNow);
        await http.GetByteArrayAsync("/metrics"); // the reset of every series: not part of the steady figure
        var moving = Stats.Of(await ScrapesAsync(moving: true));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scrape, counters unchanged:      {still}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scrape, every counter moved:     {moving} (target < 100 ms: {(moving.Median < 100 ? "MET" : "NOT MET")})"));
        return 0;
    }
}
