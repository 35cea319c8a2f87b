using Dashboard.Host.Capture;
using Dashboard.App.Captures;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Dashboard.Web.Api;

/// <summary>
/// Captures: <c>POST /api/captures</c> starts one (Operator; Docker bridges and container veths only; default limits),
/// <c>GET</c> lists those the caller may see, <c>DELETE /api/captures/{id}</c> stops one (its starter, an Admin of its
/// lab, a site administrator), <c>GET /api/captures/{id}/pcap</c> downloads its raw pcap (those who may see it). The same
/// routes under <c>/api/hosts/{host}/captures</c> work on an agent's host (its agent runs the capture; the pcap comes from
/// it as it is downloaded; a disconnected host is a 503).
/// </summary>
public static class CaptureApi
{
    public static IEndpointRouteBuilder MapCaptureApi(this IEndpointRouteBuilder app)
    {
        Map(app.MapGroup("/api/captures").WithTags("Capture"), onAgentHost: false);
        Map(app.MapGroup("/api/hosts/{host}/captures").WithTags("Capture"), onAgentHost: true);
        return app;
    }

    /// <summary>The host a route names (<c>/api/hosts/{host}/…</c>), or null for this dashboard's own.</summary>
    internal static string? HostOf(HttpContext http) => http.GetRouteValue("host") as string;

    /// <summary>The routes; on an agent's host, what sends the agent a command shares the per-user budget of the expensive routes.</summary>
    private static void Map(RouteGroupBuilder api, bool onAgentHost)
    {
        api.MapGet("/", async (HttpContext http, HostSessions sessions, CancellationToken ct) =>
            TypedResults.Ok((await sessions.CapturesAsync(Actor.From(http), HostOf(http), ct)).Select(CaptureDto.From).ToList()));
        var commands = new[]
        {
            api.MapPost("/", StartAsync).DisableAntiforgery(),
            api.MapDelete("/{id}", StopAsync),
            api.MapGet("/{id}/pcap", async Task<Results<FileStreamHttpResult, NotFound>> (string id, HttpContext http, HostSessions sessions, CancellationToken ct) =>
                await sessions.OpenPcapAsync(Actor.From(http), HostOf(http), id, ct) is { } pcap
                    ? TypedResults.Stream(pcap.Pcap, "application/vnd.tcpdump.pcap", pcap.FileName)
                    : TypedResults.NotFound()),
        };
        if (onAgentHost)
        {
            foreach (var c in commands)
            {
                c.RequireRateLimiting(RateLimits.Expensive);
            }
        }
    }

    private static async Task<Results<Created<CaptureDto>, ProblemHttpResult>> StartAsync(StartCaptureRequest body, HttpContext http, HostSessions sessions, CancellationToken ct)
    {
        try
        {
            var host = HostOf(http);
            var s = await sessions.StartCaptureAsync(Actor.From(http), host, new CaptureStart(body.Interface, body.Filter, body.SnapLength, body.PacketLimit, body.TimeLimitSeconds, body.ByteLimit), ct);
            return TypedResults.Created(host is null ? $"/api/captures/{s.Id}" : $"/api/hosts/{host}/captures/{s.Id}", CaptureDto.From(s));
        }
        catch (CaptureRejectedException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Capture not started", detail: ex.Message);
        }
    }

    private static async Task<Results<Ok<CaptureDto>, ProblemHttpResult>> StopAsync(string id, HttpContext http, HostSessions sessions, CancellationToken ct)
    {
        try
        {
            return TypedResults.Ok(CaptureDto.From(await sessions.StopCaptureAsync(Actor.From(http), HostOf(http), id, ct)));
        }
        catch (CaptureRejectedException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Capture not stopped", detail: ex.Message);
        }
    }
}
