using System.Text;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Dashboard.Web.Api;

/// <summary>Read-only JSON views of the host: <c>/api/host</c>, <c>/api/networks</c>, <c>/api/containers</c>, <c>/api/bridges</c>, <c>/api/firewall</c>, and <c>POST /api/firewall/parse</c>.</summary>
public static class ReadApi
{
    public static IEndpointRouteBuilder MapReadApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").WithTags("Host");
        api.MapGet("/host", async (bool? fresh, HttpContext http, HostInspector host, Dashboard.App.Live.LiveFeed feed, Dashboard.App.Labs.LabAccess access, CancellationToken ct) =>
        {
            var t = await TopologyAsync(fresh, http, host, feed, access, ct);
            return TypedResults.Ok(new HostSummary(t.Engine, t.Networks.Count, t.Containers.Count, t.Containers.Count(c => c.State == "running"), t.Bridges.Count, t.ReadAt, t.Warnings));
        });
        api.MapGet("/networks", async (bool? fresh, HttpContext http, HostInspector host, Dashboard.App.Live.LiveFeed feed, Dashboard.App.Labs.LabAccess access, CancellationToken ct) =>
            TypedResults.Ok((await TopologyAsync(fresh, http, host, feed, access, ct)).Networks));
        api.MapGet("/containers", async (bool? fresh, HttpContext http, HostInspector host, Dashboard.App.Live.LiveFeed feed, Dashboard.App.Labs.LabAccess access, CancellationToken ct) =>
            TypedResults.Ok((await TopologyAsync(fresh, http, host, feed, access, ct)).Containers));
        api.MapGet("/bridges", async (bool? fresh, HttpContext http, HostInspector host, Dashboard.App.Live.LiveFeed feed, Dashboard.App.Labs.LabAccess access, CancellationToken ct) =>
            TypedResults.Ok((await TopologyAsync(fresh, http, host, feed, access, ct)).Bridges));
        api.MapGet("/firewall", async (bool? fresh, HttpContext http, SharedFirewallRead reads, Dashboard.App.Labs.LabAccess access, CancellationToken ct) =>
        {
            if (fresh == true)
            {
                await access.RequireHostOperatorAsync(Actor.From(http), "host.fresh-read", http.Request.Path, ct);
            }

            var v = await reads.ReadAsync(fresh == true, ct);
            http.Response.Headers["X-Read-At"] = v.Snapshot.ReadAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
            return TypedResults.Ok(new FirewallResponse(
                v.Snapshot.ReadAt,
                v.Snapshot.Duration.TotalMilliseconds,
                v.Backend,
                DockerLayoutDetector.Detect(v.Snapshot.Ruleset),
                v.Snapshot.Commands,
                v.Snapshot.Warnings,
                RulesetDto.From(v.Snapshot.Ruleset)));
        });
        api.MapPost("/firewall/parse", ParseAsync).DisableAntiforgery().RequireRateLimiting(Dashboard.Web.Identity.RateLimits.Expensive);
        api.MapGet("/collector", (Dashboard.App.Live.LiveFeed feed) => TypedResults.Ok(feed.Status));
        return app;
    }

    /// <summary>
    /// The collector's latest topology (kept current by Docker's events) with its read time in <c>X-Read-At</c>; a fresh
    /// read of the engine (one <c>nsenter</c> per container) only when there is no snapshot, or when an Operator asks
    /// with <c>?fresh=true</c>, so reads by many users cost nothing on the host.
    /// </summary>
    private static async Task<HostTopology> TopologyAsync(bool? fresh, HttpContext http, HostInspector host, Dashboard.App.Live.LiveFeed feed, Dashboard.App.Labs.LabAccess access, CancellationToken ct)
    {
        if (fresh == true)
        {
            await access.RequireHostOperatorAsync(Actor.From(http), "host.fresh-read", http.Request.Path, ct);
        }

        var t = fresh != true && feed.Topology is { } snapshot ? snapshot : await host.ReadTopologyAsync(ct);
        http.Response.Headers["X-Read-At"] = t.ReadAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
        return t;
    }

    /// <summary>Parses an uploaded dump (raw body, or the first file of a multipart form) into the same model as <c>/api/firewall</c>.</summary>
    private static async Task<Results<Ok<ParseResponse>, ProblemHttpResult>> ParseAsync(HttpRequest request, ApiOptions options, CancellationToken ct)
    {
        Stream body = request.Body;
        if (request.HasFormContentType)
        {
            var form = await request.ReadFormAsync(ct);
            var file = form.Files.FirstOrDefault();
            if (file is null)
            {
                return Problem(StatusCodes.Status400BadRequest, "No dump uploaded", "Send the dump as the request body, or as a file field of a multipart form.");
            }

            body = file.OpenReadStream();
        }

        var (text, tooLarge) = await ReadBoundedAsync(body, options.MaxDumpBytes, ct);
        if (tooLarge)
        {
            return Problem(StatusCodes.Status413PayloadTooLarge, "Dump too large",
                $"Dumps up to {options.MaxDumpBytes / (1024 * 1024)} MiB are accepted (a 10,000-rule iptables-save is about 1 MiB).");
        }

        try
        {
            var ruleset = RulesetReader.Read(text);
            RuleClassifier.Classify(ruleset);
            return TypedResults.Ok(new ParseResponse(DockerLayoutDetector.Detect(ruleset), RulesetDto.From(ruleset)));
        }
        catch (RulesetFormatException ex)
        {
            var problem = TypedResults.Problem(
                statusCode: StatusCodes.Status400BadRequest,
                title: "The dump could not be read",
                detail: ex.Message,
                extensions: new Dictionary<string, object?> { ["line"] = ex.Line });
            return problem;
        }
    }

    internal static async Task<(string Text, bool TooLarge)> ReadBoundedAsync(Stream body, long max, CancellationToken ct)
    {
        using var ms = new MemoryStream();
        var buffer = new byte[81920];
        int n;
        while ((n = await body.ReadAsync(buffer, ct)) > 0)
        {
            if (ms.Length + n > max)
            {
                return ("", true);
            }

            ms.Write(buffer, 0, n);
        }

        return (Encoding.UTF8.GetString(ms.GetBuffer(), 0, (int)ms.Length), false);
    }

    private static ProblemHttpResult Problem(int status, string title, string detail) =>
        TypedResults.Problem(statusCode: status, title: title, detail: detail);
}
