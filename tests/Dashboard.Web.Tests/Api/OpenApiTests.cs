using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Api;

/// <summary>
/// The OpenAPI document: every mapped API route is in it with its methods, refusals are problem details, it is valid for
/// an independent validator (@readme/openapi-parser from the npm registry, installed by scripts/lab-setup.sh), and it
/// and the interactive page are for signed-in users only.
/// </summary>
public sealed class OpenApiTests : IDisposable
{
    private readonly DashboardFactory _app = new();

    public void Dispose() => _app.Dispose();

    /// <summary>Routes that are not the JSON API: the docs page itself (Scalar's), the metrics exposition (Prometheus's format, for scrapers).</summary>
    private static bool NotTheApi(string pattern) =>
        pattern.StartsWith("/api/docs", StringComparison.Ordinal) || pattern == "/metrics" || pattern.StartsWith("/openapi/", StringComparison.Ordinal);

    [Fact]
    public async Task EveryMappedRoute_IsInTheDocument_WithItsMethods_AndRefusalsAsProblemDetails()
    {
        using var http = _app.CreateClient();
        using var response = await http.GetAsync("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var paths = doc.RootElement.GetProperty("paths");

        var mapped = _app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.IHttpMethodMetadata>() is { HttpMethods.Count: > 0 })
            .Where(e => e.Metadata.GetMetadata<System.Reflection.MethodInfo>() is not null) // route handlers (not pages, hubs, static files)
            .Select(e => (Pattern: "/" + e.RoutePattern.RawText!.TrimStart('/'), Methods: e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.IHttpMethodMetadata>()!.HttpMethods))
            .Where(e => !NotTheApi(e.Pattern) && !e.Pattern.StartsWith("/_", StringComparison.Ordinal))
            .ToList();
        Assert.True(mapped.Count >= 60, $"{mapped.Count} routes mapped");

        var missing = new List<string>();
        foreach (var (pattern, methods) in mapped)
        {
            // {id:int} in a route is {id} in the document; a group's "/" is the group's path.
            var path = System.Text.RegularExpressions.Regex.Replace(pattern, "{([^}:?]+)[^}]*}", "{$1}");
            path = path.Length > 1 && !paths.TryGetProperty(path, out _) ? path.TrimEnd('/') : path;
            foreach (var method in methods)
            {
                if (!paths.TryGetProperty(path, out var item) || !item.TryGetProperty(method.ToLowerInvariant(), out var operation))
                {
                    missing.Add($"{method} {path}");
                    continue;
                }

                Assert.True(operation.GetProperty("responses").TryGetProperty("default", out var refusal), $"{method} {path} has no problem-details response");
                Assert.True(refusal.GetProperty("content").TryGetProperty("application/problem+json", out _), $"{method} {path}");
            }
        }

        Assert.True(missing.Count == 0, "not in the document: " + string.Join(", ", missing));

        // Request and response shapes: a change proposal's body and the change it answers with.
        var propose = paths.GetProperty("/api/changes").GetProperty("post");
        Assert.True(propose.TryGetProperty("requestBody", out _));
        Assert.Contains("ChangeDto", propose.GetProperty("responses").GetProperty("201").ToString(), StringComparison.Ordinal);
        Assert.Equal("bearer", doc.RootElement.GetProperty("components").GetProperty("securitySchemes").GetProperty("token").GetProperty("scheme").GetString());
    }

    [Fact]
    public async Task TheDocumentAndTheDocsPage_AreForSignedInUsers_AndThePageRunsOnlyItsOwnScript()
    {
        using var anonymous = _app.CreateAnonymousClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/openapi/v1.json")).StatusCode);
        using (var signedOut = _app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false }))
        {
            signedOut.DefaultRequestHeaders.Authorization = null;
            using var docs = await signedOut.GetAsync("/api/docs/v1");
            Assert.Equal(HttpStatusCode.Redirect, docs.StatusCode);
            Assert.Contains("login", docs.Headers.Location!.ToString(), StringComparison.OrdinalIgnoreCase);
        }

        using var http = _app.CreateClient();
        using var page = await http.GetAsync("/api/docs/v1");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        var csp = page.Headers.GetValues("Content-Security-Policy").Single();
        var nonce = System.Text.RegularExpressions.Regex.Match(csp, "'nonce-([^']+)'").Groups[1].Value;
        Assert.NotEmpty(nonce);
        Assert.Contains($"nonce=\"{nonce}\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("cdn.jsdelivr", html, StringComparison.Ordinal);

        // Other pages keep the strict policy.
        using var other = await http.GetAsync("/api/me");
        Assert.DoesNotContain("nonce-", other.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task TheDocument_IsValidForAnIndependentValidator()
    {
        var validator = Path.Combine(TestPaths.RepoRoot, "tests", "openapi-validator");
        if (!Directory.Exists(Path.Combine(validator, "node_modules", "@readme", "openapi-parser")))
        {
            Skip.IfNot(RealHost.Required, "needs the OpenAPI validator: scripts/lab-setup.sh installs it with npm ci");
            throw new InvalidOperationException("LAB_REQUIRE_DOCKER=1 but tests/openapi-validator/node_modules is missing: run scripts/lab-setup.sh");
        }

        using var http = _app.CreateClient();
        var file = Path.Combine(Path.GetTempPath(), $"netlab-openapi-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, await http.GetStringAsync("/openapi/v1.json"));
        try
        {
            var node = await new Dashboard.Host.Processes.ProcessRunner().RunAsync("node", [Path.Combine(validator, "validate.mjs"), file], TimeSpan.FromSeconds(60));
            Assert.True(node.Succeeded, $"the validator says: {node.StdOut}{node.StdErr}");
            Assert.StartsWith("valid: OpenAPI 3.", node.StdOut, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
