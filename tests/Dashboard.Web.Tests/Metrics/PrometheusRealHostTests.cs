using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Metrics;

/// <summary>
/// A real Prometheus (Debian's 2.42, unpacked by scripts/lab-setup.sh) on loopback scrapes the dashboard's /metrics with a
/// metrics-scoped token every second; after the seed's dropped pings it answers the query with at least the
/// number of echo requests. Prometheus runs with a configuration and data folder of the test's own and is stopped after.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class PrometheusRealHostTests
{
    private static string PrometheusBinary => Path.Combine(TestPaths.RepoRoot, "artifacts", "tools", "prometheus", "usr", "bin", "prometheus");

    [SkippableFact]
    public async Task Prometheus_ScrapesTheDashboard_AndSeesTheDroppedPingsInTheIsolationChain()
    {
        RealHost.Require();
        if (!File.Exists(PrometheusBinary))
        {
            Skip.IfNot(RealHost.Required, "needs Prometheus: run scripts/lab-setup.sh (it unpacks Debian's package under artifacts/tools)");
            throw new InvalidOperationException($"LAB_REQUIRE_DOCKER=1 but {PrometheusBinary} is missing: run scripts/lab-setup.sh");
        }

        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        using var app = new DashboardFactory(new() { ["Collector:Enabled"] = "true" }, kestrel: true);
        var tokens = app.Services.GetRequiredService<ApiTokenService>();
        var token = (await tokens.CreateAsync(await app.AdminAsync(), "prometheus", null, scope: TokenScopes.Metrics)).Token;

        // The scope holds both ways: no token, a person's API token and the metrics token elsewhere are all refused.
        using (var http = new HttpClient { BaseAddress = app.BaseUri })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/metrics")).StatusCode);
            http.DefaultRequestHeaders.Authorization = new("Bearer", app.AdminToken);
            Assert.Equal(HttpStatusCode.Forbidden, (await http.GetAsync("/metrics")).StatusCode);
            http.DefaultRequestHeaders.Authorization = new("Bearer", token);
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/me")).StatusCode);
            var text = await http.GetStringAsync("/metrics");
            Assert.Contains("netlab_rule_packets_total{", text, StringComparison.Ordinal);
        }

        var dir = Directory.CreateTempSubdirectory("netlab-prom-");
        var port = LoopbackPort.Free();
        await File.WriteAllTextAsync(Path.Combine(dir.FullName, "token"), token);
        await File.WriteAllTextAsync(Path.Combine(dir.FullName, "prometheus.yml"), $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 900ms
            scrape_configs:
              - job_name: netlab
                metrics_path: /metrics
                authorization:
                  type: Bearer
                  credentials_file: {dir.FullName}/token
                static_configs:
                  - targets: ["127.0.0.1:{app.BaseUri.Port}"]
            """);
        var start = new ProcessStartInfo(PrometheusBinary) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { $"--config.file={dir.FullName}/prometheus.yml", $"--storage.tsdb.path={dir.FullName}/data", $"--web.listen-address=127.0.0.1:{port}" })
        {
            start.ArgumentList.Add(a);
        }

        using var prometheus = Process.Start(start)!;
        var log = new System.Text.StringBuilder();
        prometheus.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        prometheus.BeginErrorReadLine();
        prometheus.BeginOutputReadLine();
        try
        {
            using var api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
            async Task<double?> QueryAsync(string promql)
            {
                try
                {
                    var r = await api.GetFromJsonAsync<JsonElement>("api/v1/query?query=" + Uri.EscapeDataString(promql));
                    var result = r.GetProperty("data").GetProperty("result");
                    return result.GetArrayLength() == 0 ? null : double.Parse(result[0].GetProperty("value")[1].GetString()!, System.Globalization.CultureInfo.InvariantCulture);
                }
                catch (HttpRequestException)
                {
                    return null;
                }
            }

            string Log()
            {
                lock (log)
                {
                    return log.ToString();
                }
            }

            // Scraping before the pings: the counters' values before are in Prometheus.
            await Eventually.UntilAsync(async () => await QueryAsync("sum(netlab_rule_packets_total{chain=\"DOCKER-ISOLATION-STAGE-2\"})") is not null,
                () => "Prometheus to scrape the dashboard:\n" + Log(), 30);
            await Task.Delay(TimeSpan.FromSeconds(2));
            var (sent, received) = await lab.PingAsync(seed.C2, seed.C1Ip);
            Assert.Equal((3, 0), (sent, received));

            double? increase = null;
            await Eventually.UntilAsync(async () => (increase = await QueryAsync("sum(increase(netlab_rule_packets_total{chain=\"DOCKER-ISOLATION-STAGE-2\"}[1m]))")) >= sent,
                () => $"increase(...[1m]) to reach {sent}; it is {increase}\n" + Log(), 30);
            Assert.True(await QueryAsync("up{job=\"netlab\"}") == 1);
            Assert.True(await QueryAsync("count(netlab_rule_info)") > 0);

            // Every query of the Grafana dashboard in deploy/grafana is one this Prometheus evaluates, with data for the drops.
            var grafana = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(TestPaths.RepoRoot, "deploy", "grafana", "netlab-dashboard.json")));
            var exprs = grafana.RootElement.GetProperty("panels").EnumerateArray().SelectMany(p => p.GetProperty("targets").EnumerateArray()).Select(t => t.GetProperty("expr").GetString()!).ToList();
            Assert.True(exprs.Count >= 10, $"{exprs.Count} queries");
            foreach (var expr in exprs)
            {
                var promql = expr.Replace("$host", ".*", StringComparison.Ordinal).Replace("$__rate_interval", "1m", StringComparison.Ordinal);
                var answer = await api.GetFromJsonAsync<JsonElement>("api/v1/query?query=" + Uri.EscapeDataString(promql));
                Assert.True(answer.GetProperty("status").GetString() == "success", $"{promql}: {answer}");
            }

            var drops = await api.GetFromJsonAsync<JsonElement>("api/v1/query?query=" + Uri.EscapeDataString(exprs[0].Replace("$host", ".*", StringComparison.Ordinal).Replace("$__rate_interval", "1m", StringComparison.Ordinal)));
            Assert.True(drops.GetProperty("data").GetProperty("result").GetArrayLength() > 0, $"the isolation-drops panel has data: {drops}");
        }
        finally
        {
            prometheus.Kill(entireProcessTree: true);
            await prometheus.WaitForExitAsync();
            dir.Delete(recursive: true);
        }
    }
}
