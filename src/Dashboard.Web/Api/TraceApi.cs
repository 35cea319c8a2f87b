using Dashboard.Host.Netfilter;
using Dashboard.App.Captures;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Dashboard.Web.Api;

/// <summary>
/// Verdict traces: <c>GET /api/traces/availability</c>, <c>POST /api/traces</c> starts one for a flow, <c>GET</c> lists,
/// <c>GET /api/traces/{id}</c> gives its packets and paths, <c>DELETE /api/traces/{id}</c> stops it and removes its rules.
/// </summary>
public static class TraceApi
{
    public static IEndpointRouteBuilder MapTraceApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/traces").WithTags("Trace");
        api.MapGet("/availability", async (TraceService traces, CancellationToken ct) =>
            await traces.UnavailableReasonAsync(ct) is { } why ? new TraceAvailability(false, why) : new TraceAvailability(true, null));
        api.MapGet("/", async (HttpContext http, HostSessions sessions, CancellationToken ct) =>
            TypedResults.Ok((await sessions.TracesAsync(Actor.From(http), ct)).Select(s => TraceDto.From(s, includePackets: false)).ToList()));
        api.MapGet("/{id}", async (string id, HttpContext http, HostSessions sessions, CancellationToken ct) =>
            TypedResults.Ok(TraceDto.From(await sessions.TraceAsync(Actor.From(http), id, ct), includePackets: true)));
        api.MapPost("/", StartAsync).DisableAntiforgery();
        api.MapDelete("/{id}", async (string id, HttpContext http, HostSessions sessions, CancellationToken ct) =>
            TypedResults.Ok(TraceDto.From(await sessions.StopTraceAsync(Actor.From(http), id, ct), includePackets: true)));
        return app;
    }

    private static async Task<Results<Created<TraceDto>, ProblemHttpResult>> StartAsync(StartTraceRequest body, HttpContext http, HostSessions sessions, CancellationToken ct)
    {
        try
        {
            var s = await sessions.StartTraceAsync(Actor.From(http), new TraceStart(body.Source, body.Destination, body.Protocol, body.ReplyDestinations, body.TimeLimitSeconds), ct);
            return TypedResults.Created($"/api/traces/{s.Id}", TraceDto.From(s, includePackets: false));
        }
        catch (TraceRejectedException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Trace not started", detail: ex.Message);
        }
    }
}
