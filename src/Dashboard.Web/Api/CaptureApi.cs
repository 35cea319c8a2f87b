using Dashboard.Host.Capture;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Dashboard.Web.Api;

/// <summary>Captures: <c>POST /api/captures</c> starts one, <c>GET</c> lists them, <c>DELETE /api/captures/{id}</c> stops one, <c>GET /api/captures/{id}/pcap</c> downloads its raw pcap.</summary>
public static class CaptureApi
{
    public static IEndpointRouteBuilder MapCaptureApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/captures").WithTags("Capture");
        api.MapGet("/", (CaptureService captures) => TypedResults.Ok(captures.Sessions.Select(CaptureDto.From).ToList()));
        api.MapPost("/", StartAsync).DisableAntiforgery().RequireHostOperator("capture.started");
        api.MapDelete("/{id}", async Task<Results<Ok<CaptureDto>, NotFound>> (string id, CaptureService captures) =>
        {
            if (captures.Find(id) is not { } s)
            {
                return TypedResults.NotFound();
            }

            await s.StopAsync();
            return TypedResults.Ok(CaptureDto.From(s));
        }).RequireHostOperator("capture.stopped");
        api.MapGet("/{id}/pcap", Results<PhysicalFileHttpResult, NotFound> (string id, CaptureService captures) =>
            captures.Find(id) is { } s && File.Exists(s.PcapPath)
                ? TypedResults.PhysicalFile(s.PcapPath, "application/vnd.tcpdump.pcap", $"{s.Request.Interface}-{s.StartedAt:yyyyMMdd-HHmmss}.pcap")
                : TypedResults.NotFound());
        return app;
    }

    private static async Task<Results<Created<CaptureDto>, ProblemHttpResult>> StartAsync(StartCaptureRequest body, CaptureService captures, CancellationToken ct)
    {
        try
        {
            var s = await captures.StartAsync(new CaptureRequest(
                body.Interface ?? "",
                body.Filter,
                body.SnapLength ?? 262_144,
                body.PacketLimit,
                body.TimeLimitSeconds is { } t ? TimeSpan.FromSeconds(t) : null), ct);
            return TypedResults.Created($"/api/captures/{s.Id}", CaptureDto.From(s));
        }
        catch (CaptureRejectedException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Capture not started", detail: ex.Message);
        }
    }
}

public sealed record StartCaptureRequest(string? Interface, string? Filter, int? SnapLength, long? PacketLimit, double? TimeLimitSeconds);

public sealed record CaptureDto(string Id, string Interface, string? Filter, DateTimeOffset StartedAt, DateTimeOffset? EndedAt, CaptureEndReason EndReason, string? EndMessage, CaptureStats Stats)
{
    public static CaptureDto From(CaptureSession s) => new(s.Id, s.Request.Interface, s.Request.Filter, s.StartedAt, s.EndedAt, s.EndReason, s.EndMessage, s.Stats);
}
