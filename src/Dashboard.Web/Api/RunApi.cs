using Dashboard.App.Experiments;
using Dashboard.App.Runs;
using Dashboard.Core.Experiments;
using Dashboard.Data.Entities;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Dashboard.Web.Api;

/// <summary>
/// Experiments and runs: list, create and edit experiments, start and cancel runs, the run history with filters and
/// paging, one run, a run's pcap, and <c>GET /api/runs/compare?a=&amp;b=</c>. Lists take <c>?lab=</c> (default: the
/// caller's first lab). Every rule (roles, names, who sees a run, the audit) is in <see cref="ExperimentService"/> and
/// <see cref="RunHistory"/>, shared with the pages; this file maps them to HTTP.
/// </summary>
public static class RunApi
{
    public static IEndpointRouteBuilder MapRunApi(this IEndpointRouteBuilder app)
    {
        var experiments = app.MapGroup("/api/experiments").WithTags("Experiments");
        experiments.MapGet("/", async (int? lab, HttpContext http, ExperimentService service, CancellationToken ct) =>
            TypedResults.Ok((await service.ListAsync(Actor.From(http), lab, ct)).Select(ExperimentDto.From).ToList()));
        experiments.MapPost("/", async Task<Results<Created<ExperimentDto>, ProblemHttpResult>> (CreateExperimentRequest body, HttpContext http, ExperimentService service, CancellationToken ct) =>
            await SaveAsync(http, service, body.Lab, null, body, ct)).DisableAntiforgery();
        experiments.MapPut("/{id:guid}", async Task<Results<Created<ExperimentDto>, ProblemHttpResult>> (Guid id, CreateExperimentRequest body, HttpContext http, ExperimentService service, CancellationToken ct) =>
            await SaveAsync(http, service, body.Lab, id, body, ct)).DisableAntiforgery();
        experiments.MapGet("/{id:guid}/export", async Task<Results<FileStreamHttpResult, NotFound>> (Guid id, HttpContext http, RunHistory history, CancellationToken ct) =>
        {
            var ms = new MemoryStream();
            return await history.ExportExperimentAsync(Actor.From(http), id, ms, ct) is { } export ? Zip(ms, export) : TypedResults.NotFound();
        });

        var runs = app.MapGroup("/api/runs").WithTags("Runs");
        runs.MapGet("/", async (int? lab, Guid? experiment, string? variant, RunStatus? status, string? author, DateTimeOffset? from, DateTimeOffset? to, int? page, int? pageSize, HttpContext http, RunHistory history, CancellationToken ct) =>
            TypedResults.Ok(await history.ListAsync(Actor.From(http), lab, new RunFilter(experiment, variant, status, author, from, to, page ?? 1, pageSize ?? 25), ct)));
        runs.MapPost("/", StartAsync).DisableAntiforgery().RequireRateLimiting(RateLimits.Expensive);
        runs.MapGet("/compare", async Task<Results<Ok<RunComparison>, NotFound>> (Guid a, Guid b, HttpContext http, RunHistory history, CancellationToken ct) =>
            await history.CompareAsync(Actor.From(http), a, b, ct) is { } c ? TypedResults.Ok(c.Comparison) : TypedResults.NotFound());
        runs.MapGet("/{id:guid}", async Task<Results<Ok<RunDetail>, NotFound>> (Guid id, HttpContext http, RunHistory history, CancellationToken ct) =>
            await history.GetAsync(Actor.From(http), id, ct) is { } r ? TypedResults.Ok(r) : TypedResults.NotFound());
        runs.MapGet("/{id:guid}/export", async Task<Results<FileStreamHttpResult, NotFound>> (Guid id, HttpContext http, RunHistory history, CancellationToken ct) =>
        {
            var ms = new MemoryStream();
            return await history.ExportRunAsync(Actor.From(http), id, ms, ct) is { } export ? Zip(ms, export) : TypedResults.NotFound();
        });
        runs.MapPost("/import", ImportAsync).DisableAntiforgery().RequireRateLimiting(RateLimits.Expensive);
        runs.MapGet("/{id:guid}/artifacts/{kind}", async Task<Results<ContentHttpResult, NotFound>> (Guid id, string kind, HttpContext http, RunHistory history, CancellationToken ct) =>
            await history.ArtifactAsync(Actor.From(http), id, kind, ct) is { } a ? TypedResults.Text(a, RunArtifactKind.IsText(kind) ? "text/plain" : "application/json") : TypedResults.NotFound());
        runs.MapGet("/{id:guid}/progress", async Task<Results<Ok<RunProgress>, NotFound>> (Guid id, HttpContext http, RunHistory history, CancellationToken ct) =>
            await history.ProgressAsync(Actor.From(http), id, ct) is { } p ? TypedResults.Ok(p) : TypedResults.NotFound());
        runs.MapPost("/{id:guid}/cancel", async Task<Results<Accepted, NotFound>> (Guid id, HttpContext http, RunHistory history, CancellationToken ct) =>
            await history.CancelAsync(Actor.From(http), id, ct) ? TypedResults.Accepted((string?)null) : TypedResults.NotFound()).DisableAntiforgery();
        runs.MapGet("/{id:guid}/captures/{captureId:long}/pcap", async Task<Results<PhysicalFileHttpResult, NotFound>> (Guid id, long captureId, HttpContext http, RunHistory history, CancellationToken ct) =>
            await history.PcapPathAsync(Actor.From(http), id, captureId, ct) is { } path ? TypedResults.PhysicalFile(path, "application/vnd.tcpdump.pcap", Path.GetFileName(path)) : TypedResults.NotFound());
        return app;
    }

    private static FileStreamHttpResult Zip(MemoryStream ms, RunExport export)
    {
        ms.Position = 0;
        return TypedResults.File(ms, "application/zip", export.FileName);
    }

    private static async Task<Results<Created<ExperimentDto>, ProblemHttpResult>> SaveAsync(HttpContext http, ExperimentService service, int? lab, Guid? editing, CreateExperimentRequest body, CancellationToken ct)
    {
        try
        {
            var e = await service.SaveAsync(Actor.From(http), lab, editing, body.Name, body.Description, body.Scenario.GetRawText(), ct);
            return TypedResults.Created($"/api/experiments/{e.Id}", ExperimentDto.From(e));
        }
        catch (ExperimentRejectedException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: editing is null ? "Experiment not created" : "Experiment not changed", detail: ex.Message,
                extensions: new Dictionary<string, object?> { ["errors"] = ex.Errors });
        }
    }

    private static async Task<Results<Created<ImportResult>, ProblemHttpResult>> ImportAsync(int? lab, HttpRequest request, RunHistory history, CancellationToken ct)
    {
        var actor = Actor.From(request.HttpContext);

        // Only this route takes the documented 100 MiB (Kestrel's default, about 28.6 MB, stays for every other body).
        if (request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = RunArchive.MaxArchiveBytes + 1024 * 1024;
        }

        var body = request.Body;
        var name = "upload.zip";
        if (request.HasFormContentType)
        {
            var form = await request.ReadFormAsync(ct);
            if (form.Files.FirstOrDefault() is not { } file)
            {
                return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Nothing imported", detail: "send the zip as the body or as a file field");
            }

            body = file.OpenReadStream();
            name = file.FileName;
        }

        try
        {
            var result = await history.ImportAsync(actor, lab, body, name, ct);
            return TypedResults.Created($"/api/experiments/{result.ExperimentId}", result);
        }
        catch (ImportRejectedException ex)
        {
            return TypedResults.Problem(statusCode: ex.Message.Contains("larger than", StringComparison.Ordinal) ? StatusCodes.Status413PayloadTooLarge : StatusCodes.Status400BadRequest, title: "Nothing imported", detail: ex.Message);
        }
    }

    private static async Task<Results<Accepted<StartRunResponse>, ProblemHttpResult>> StartAsync(StartRunRequest body, HttpContext http, RunService service, CancellationToken ct)
    {
        try
        {
            var started = await service.StartOnHostsAsync(Actor.From(http), body.ExperimentId, body.Variant ?? "", body.Hosts is { Count: > 0 } hosts ? hosts : [service.LocalHost], body.Keep ?? false, ct);
            var id = started[0].Id;
            return TypedResults.Accepted($"/api/runs/{id}", new StartRunResponse(id, [.. started.Select(s => new StartedRun(s.Host, s.Id))]));
        }
        catch (Dashboard.App.Hosts.HostUnavailableException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Run not started", detail: ex.Message);
        }
        catch (ScenarioException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Run not started", detail: ex.Message);
        }
        catch (RunQueueFullException ex)
        {
            http.Response.Headers.RetryAfter = "30";
            return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Run not started", detail: ex.Message);
        }
    }
}
