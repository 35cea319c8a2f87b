using Dashboard.Host.Netfilter;
using Dashboard.App.Captures;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Dashboard.Web.Api;

/// <summary>
/// Verdict traces: <c>GET /api/traces/availability</c>, <c>POST /api/traces</c> starts one for a flow, <c>GET</c> lists,
/// <c>GET /api/traces/{id}</c> gives its packets and paths, <c>DELETE /api/traces/{id}</c> stops it and removes its rules.
/// The same routes under <c>/api/hosts/{host}/traces</c> work on an agent's host (its agent runs the trace).
/// </summary>
public static class TraceApi
{
    public static IEndpointRouteBuilder MapTraceApi(this IEndpointRouteBuilder app)
    {
        Map(app.MapGroup("/api/traces").WithTags("Trace"), onAgentHost: false);
        Map(app.MapGroup("/api/hosts/{host}/traces").WithTags("Trace"), onAgentHost: true);
        return app;
    }

    /// <summary>The routes; on an agent's host, what sends the agent a command shares the per-user budget of the expensive routes.</summary>
    private static void Map(RouteGroupBuilder api, bool onAgentHost)
    {
        var availability = api.MapGet("/availability", async (HttpContext http, HostSessions sessions, CancellationToken ct) =>
            await sessions.TraceUnavailableReasonAsync(CaptureApi.HostOf(http), ct) is { } why ? new TraceAvailability(false, why) : new TraceAvailability(true, null));
        api.MapGet("/", async (HttpContext http, HostSessions sessions, CancellationToken ct) =>
            TypedResults.Ok((await sessions.TracesAsync(Actor.From(http), CaptureApi.HostOf(http), ct)).Select(s => TraceDto.From(s, includePackets: false)).ToList()));
        api.MapGet("/{id}", async (string id, HttpContext http, HostSessions sessions, CancellationToken ct) =>
            TypedResults.Ok(TraceDto.From(await sessions.TraceAsync(Actor.From(http), CaptureApi.HostOf(http), id, ct), includePackets: true)));
        var start = api.MapPost("/", StartAsync).DisableAntiforgery();
        var stop = api.MapDelete("/{id}", StopAsync);
        if (onAgentHost)
        {
            foreach (var c in new[] { availability, start, stop })
            {
                c.RequireRateLimiting(RateLimits.Expensive);
            }
        }
    }

    private static async Task<Results<Created<TraceDto>, ProblemHttpResult>> StartAsync(StartTraceRequest body, HttpContext http, HostSessions sessions, CancellationToken ct)
    {
        try
        {
            var host = CaptureApi.HostOf(http);
            var s = await sessions.StartTraceAsync(Actor.From(http), host, new TraceStart(body.Source, body.Destination, body.Protocol, body.ReplyDestinations, body.TimeLimitSeconds), ct);
            return TypedResults.Created(host is null ? $"/api/traces/{s.Id}" : $"/api/hosts/{host}/traces/{s.Id}", TraceDto.From(s, includePackets: false));
        }
        catch (TraceRejectedException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Trace not started", detail: ex.Message);
        }
    }

    private static async Task<Results<Ok<TraceDto>, ProblemHttpResult>> StopAsync(string id, HttpContext http, HostSessions sessions, CancellationToken ct)
    {
        try
        {
            return TypedResults.Ok(TraceDto.From(await sessions.StopTraceAsync(Actor.From(http), CaptureApi.HostOf(http), id, ct), includePackets: true));
        }
        catch (TraceRejectedException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Trace not stopped", detail: ex.Message);
        }
    }
}
