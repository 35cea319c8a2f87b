using Dashboard.Host.Capture;
using Dashboard.App.Captures;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Dashboard.Web.Api;

/// <summary>
/// Captures: <c>POST /api/captures</c> starts one (Operator; Docker bridges and container veths only; default limits),
/// <c>GET</c> lists those the caller may see, <c>DELETE /api/captures/{id}</c> stops one (its starter, an Admin of its
/// lab, a site administrator), <c>GET /api/captures/{id}/pcap</c> downloads its raw pcap (those who may see it).
/// </summary>
public static class CaptureApi
{
    public static IEndpointRouteBuilder MapCaptureApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/captures").WithTags("Capture");
        api.MapGet("/", async (HttpContext http, HostSessions sessions, CancellationToken ct) =>
            TypedResults.Ok((await sessions.CapturesAsync(Actor.From(http), ct)).Select(CaptureDto.From).ToList()));
        api.MapPost("/", StartAsync).DisableAntiforgery();
        api.MapDelete("/{id}", async (string id, HttpContext http, HostSessions sessions, CancellationToken ct) =>
            TypedResults.Ok(CaptureDto.From(await sessions.StopCaptureAsync(Actor.From(http), id, ct))));
        api.MapGet("/{id}/pcap", async Task<Results<PhysicalFileHttpResult, NotFound>> (string id, HttpContext http, HostSessions sessions, CancellationToken ct) =>
        {
            var s = await sessions.CaptureAsync(Actor.From(http), id, ct);
            return File.Exists(s.PcapPath)
                ? TypedResults.PhysicalFile(s.PcapPath, "application/vnd.tcpdump.pcap", $"{s.Request.Interface}-{s.StartedAt:yyyyMMdd-HHmmss}.pcap")
                : TypedResults.NotFound();
        });
        return app;
    }

    private static async Task<Results<Created<CaptureDto>, ProblemHttpResult>> StartAsync(StartCaptureRequest body, HttpContext http, HostSessions sessions, CancellationToken ct)
    {
        try
        {
            var s = await sessions.StartCaptureAsync(Actor.From(http), new CaptureStart(body.Interface, body.Filter, body.SnapLength, body.PacketLimit, body.TimeLimitSeconds, body.ByteLimit), ct);
            return TypedResults.Created($"/api/captures/{s.Id}", CaptureDto.From(s));
        }
        catch (CaptureRejectedException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Capture not started", detail: ex.Message);
        }
    }
}
