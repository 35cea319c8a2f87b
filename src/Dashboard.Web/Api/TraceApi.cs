using Dashboard.Core.Firewall;
using Dashboard.Host.Netfilter;
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
        api.MapGet("/", (TraceService traces) => TypedResults.Ok(traces.Sessions.Select(s => TraceDto.From(s, includePackets: false)).ToList()));
        api.MapGet("/{id}", Results<Ok<TraceDto>, NotFound> (string id, TraceService traces) =>
            traces.Find(id) is { } s ? TypedResults.Ok(TraceDto.From(s, includePackets: true)) : TypedResults.NotFound());
        api.MapPost("/", StartAsync).DisableAntiforgery().RequireHostOperator("trace.started");
        api.MapDelete("/{id}", async Task<Results<Ok<TraceDto>, NotFound>> (string id, TraceService traces) =>
        {
            if (traces.Find(id) is not { } s)
            {
                return TypedResults.NotFound();
            }

            await traces.StopAsync(s);
            return TypedResults.Ok(TraceDto.From(s, includePackets: true));
        }).RequireHostOperator("trace.stopped");
        return app;
    }

    private static async Task<Results<Created<TraceDto>, ProblemHttpResult>> StartAsync(StartTraceRequest body, TraceService traces, CancellationToken ct)
    {
        try
        {
            var s = await traces.StartAsync(new TraceRequest(
                body.Source ?? "",
                body.Destination ?? "",
                body.Protocol ?? "icmp",
                body.ReplyDestinations,
                body.TimeLimitSeconds is { } t ? TimeSpan.FromSeconds(t) : null), ct);
            return TypedResults.Created($"/api/traces/{s.Id}", TraceDto.From(s, includePackets: false));
        }
        catch (TraceRejectedException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Trace not started", detail: ex.Message);
        }
    }
}

public sealed record TraceAvailability(bool Available, string? Reason);

public sealed record StartTraceRequest(string? Source, string? Destination, string? Protocol, IReadOnlyList<string>? ReplyDestinations, double? TimeLimitSeconds);

public sealed record TraceDto(string Id, string Source, string Destination, string Protocol, IReadOnlyList<string> ReplyDestinations, string Tag, DateTimeOffset StartedAt, DateTimeOffset? EndedAt, string? EndMessage, IReadOnlyList<RuleCommandResult> Commands, IReadOnlyList<TracedPacket>? Packets)
{
    public static TraceDto From(TraceSession s, bool includePackets) => new(
        s.Id, s.Request.Source, s.Request.Destination, s.Request.Protocol, s.Request.ReplyDestinations ?? [], s.Tag, s.StartedAt, s.EndedAt, s.EndMessage, [.. s.Commands], includePackets ? s.Packets : null);
}
