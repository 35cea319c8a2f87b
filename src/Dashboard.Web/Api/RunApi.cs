using System.Text.Json;
using Dashboard.Core.Experiments;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.App.Runs;
using Dashboard.App.Labs;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.Web.Api;

/// <summary>
/// Experiments and runs: list and create experiments, start and cancel runs, the run history with filters and paging,
/// one run, a run's pcap, and <c>GET /api/runs/compare?a=&amp;b=</c>. Lists take <c>?lab=</c> (default: the caller's first
/// lab); reading needs the Viewer role in the lab, starting, cancelling, creating and importing the Operator role. Runs and
/// experiments of labs the caller is not a member of answer 404.
/// </summary>
public static class RunApi
{

    public static IEndpointRouteBuilder MapRunApi(this IEndpointRouteBuilder app)
    {
        var experiments = app.MapGroup("/api/experiments").WithTags("Experiments");
        experiments.MapGet("/", async (int? lab, HttpContext http, LabAccess access, DashboardDbContext db, CancellationToken ct) =>
        {
            var labId = await access.ResolveAsync(Actor.From(http), lab, ct);
            return TypedResults.Ok((await db.Experiments.AsNoTracking().Where(e => e.LabId == labId).OrderByDescending(e => e.BuiltIn).ThenBy(e => e.Name).ToListAsync(ct))
                .Select(e => new ExperimentDto(e.Id, e.Name, e.Description, e.BuiltIn, e.CreatedBy, e.CreatedAt, e.Origin, JsonSerializer.Deserialize<JsonElement>(e.ScenarioJson)))
                .ToList());
        });
        experiments.MapPost("/", CreateExperimentAsync).DisableAntiforgery();
        experiments.MapGet("/{id:guid}/export", async Task<Results<FileStreamHttpResult, NotFound>> (Guid id, HttpContext http, LabAccess access, DashboardDbContext db, Microsoft.Extensions.Options.IOptions<DataOptions> data, Microsoft.Extensions.Options.IOptions<Dashboard.Host.DockerHostOptions> host, CancellationToken ct) =>
        {
            var e = await db.Experiments.AsNoTracking().SingleOrDefaultAsync(x => x.Id == id, ct);
            if (e is null || await access.RoleAsync(Actor.From(http), e.LabId, ct) is null)
            {
                return TypedResults.NotFound();
            }

            var runIds = await db.Runs.AsNoTracking().Where(r => r.ExperimentId == id && r.Status != RunStatus.Running).OrderBy(r => r.StartedAt).Select(r => r.Id).ToListAsync(ct);
            return await ZipAsync(db, data.Value.ResolveDirectory(), id, runIds, "experiment", host.Value.Name, $"experiment-{Slug(e.Name)}.zip", ct);
        });

        var runs = app.MapGroup("/api/runs").WithTags("Runs");
        runs.MapGet("/", async (int? lab, Guid? experiment, string? variant, RunStatus? status, string? author, DateTimeOffset? from, DateTimeOffset? to, int? page, int? pageSize, HttpContext http, LabAccess access, DashboardDbContext db, CancellationToken ct) =>
            TypedResults.Ok(await RunQueries.ListAsync(db, await access.ResolveAsync(Actor.From(http), lab, ct), new RunFilter(experiment, variant, status, author, from, to, page ?? 1, pageSize ?? 25), ct)));
        runs.MapPost("/", StartAsync).DisableAntiforgery().RequireRateLimiting(RateLimits.Expensive);
        runs.MapGet("/compare", async Task<Results<Ok<RunComparison>, NotFound>> (Guid a, Guid b, HttpContext http, LabAccess access, DashboardDbContext db, CancellationToken ct) =>
            await RunQueries.CompareAsync(db, await RequireRunAsync(http, access, db, a, LabRole.Viewer, ct), a, b, ct) is { } c ? TypedResults.Ok(c) : TypedResults.NotFound());
        runs.MapGet("/{id:guid}", async Task<Results<Ok<RunDetail>, NotFound>> (Guid id, HttpContext http, LabAccess access, DashboardDbContext db, CancellationToken ct) =>
            await RunQueries.GetAsync(db, await RequireRunAsync(http, access, db, id, LabRole.Viewer, ct), id, ct) is { } r ? TypedResults.Ok(r) : TypedResults.NotFound());
        runs.MapGet("/{id:guid}/export", async Task<Results<FileStreamHttpResult, NotFound>> (Guid id, HttpContext http, LabAccess access, DashboardDbContext db, Microsoft.Extensions.Options.IOptions<DataOptions> data, Microsoft.Extensions.Options.IOptions<Dashboard.Host.DockerHostOptions> host, CancellationToken ct) =>
        {
            var labId = await RequireRunAsync(http, access, db, id, LabRole.Viewer, ct);
            var r = await db.Runs.AsNoTracking().SingleOrDefaultAsync(x => x.Id == id && x.LabId == labId && x.Status != RunStatus.Running, ct);
            return r is null ? TypedResults.NotFound() : await ZipAsync(db, data.Value.ResolveDirectory(), r.ExperimentId, [id], "run", host.Value.Name, $"run-{Slug(r.ExperimentName)}-{r.Variant}-{r.StartedAt:yyyyMMdd-HHmmss}.zip", ct);
        });
        runs.MapPost("/import", ImportAsync).DisableAntiforgery().RequireRateLimiting(RateLimits.Expensive);
        runs.MapGet("/{id:guid}/artifacts/{kind}", async Task<Results<ContentHttpResult, NotFound>> (Guid id, string kind, HttpContext http, LabAccess access, DashboardDbContext db, CancellationToken ct) =>
        {
            await RequireRunAsync(http, access, db, id, LabRole.Viewer, ct);
            var a = await db.RunArtifacts.AsNoTracking().Where(x => x.RunId == id && x.Kind == kind ).Select(x => x.Content).SingleOrDefaultAsync(ct);
            return a is null ? TypedResults.NotFound() : TypedResults.Text(a, kind.StartsWith("ruleset", StringComparison.Ordinal) || kind is "commands" or "cleanup" ? "text/plain" : "application/json");
        });
        runs.MapGet("/{id:guid}/progress", async Task<Results<Ok<RunProgress>, NotFound>> (Guid id, HttpContext http, LabAccess access, DashboardDbContext db, RunService service, CancellationToken ct) =>
        {
            await RequireRunAsync(http, access, db, id, LabRole.Viewer, ct);
            return service.Progress(id) is { } p ? TypedResults.Ok(p) : TypedResults.NotFound();
        });
        runs.MapPost("/{id:guid}/cancel", async Task<Results<Accepted, NotFound>> (Guid id, HttpContext http, LabAccess access, Dashboard.App.Audit.AuditLog audit, DashboardDbContext db, RunService service, CancellationToken ct) =>
        {
            var labId = await RequireRunAsync(http, access, db, id, LabRole.Operator, ct);
            if (!service.Cancel(id))
            {
                return TypedResults.NotFound();
            }

            await audit.WriteAsync(Actor.From(http), "run.cancelled", $"run {id}", "cancellation requested", labId, ct: ct);
            return TypedResults.Accepted((string?)null);
        }).DisableAntiforgery();
        runs.MapGet("/{id:guid}/captures/{captureId:long}/pcap", async Task<Results<PhysicalFileHttpResult, NotFound>> (Guid id, long captureId, HttpContext http, LabAccess access, DashboardDbContext db, Microsoft.Extensions.Options.IOptions<DataOptions> data, CancellationToken ct) =>
        {
            await RequireRunAsync(http, access, db, id, LabRole.Viewer, ct);
            var c = await db.RunCaptures.AsNoTracking().SingleOrDefaultAsync(x => x.Id == captureId && x.RunId == id, ct);
            var path = c?.PcapFile is { } f ? Path.Combine(data.Value.ResolveDirectory(), f) : null;
            return path is not null && File.Exists(path) ? TypedResults.PhysicalFile(path, "application/vnd.tcpdump.pcap", Path.GetFileName(path)) : TypedResults.NotFound();
        });
        return app;
    }

    private static async Task<FileStreamHttpResult> ZipAsync(DashboardDbContext db, string dataDirectory, Guid experiment, IReadOnlyList<Guid> runs, string kind, string host, string fileName, CancellationToken ct)
    {
        var ms = new MemoryStream();
        await RunArchive.ExportAsync(db, dataDirectory, experiment, runs, kind, host, ms, ct);
        ms.Position = 0;
        return TypedResults.File(ms, "application/zip", fileName);
    }

    /// <summary>The run's lab, after checking the caller holds <paramref name="minimum"/> there (404 for non-members and unknown runs alike).</summary>
    private static async Task<int> RequireRunAsync(HttpContext http, LabAccess access, DashboardDbContext db, Guid id, LabRole minimum, CancellationToken ct)
    {
        var labId = await RunQueries.LabOfAsync(db, id, ct)
            ?? throw new LabAccessException(Dashboard.App.Access.AccessDenial.NotFound, $"run {id} does not exist or is in a lab you are not a member of");
        await access.RequireAsync(Actor.From(http), labId, minimum, ct);
        return labId;
    }

    private static string Slug(string s) => new([.. s.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')]);

    private static async Task<Results<Created<ImportResult>, ProblemHttpResult>> ImportAsync(int? lab, HttpRequest request, LabAccess access, Dashboard.App.Audit.AuditLog audit, DashboardDbContext db, Microsoft.Extensions.Options.IOptions<DataOptions> data, CancellationToken ct)
    {
        var actor = Actor.From(request.HttpContext);
        var labId = await access.ResolveAsync(actor, lab, ct);
        await access.RequireAsync(actor, labId, LabRole.Operator, ct);

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
            var result = await RunArchive.ImportAsync(db, data.Value.ResolveDirectory(), labId, body, name, actor.Name, ct);
            await audit.WriteAsync(actor, "run.imported", $"experiment {result.ExperimentId}", $"imported {result.Runs.Count} run(s) of {result.Experiment} from {name}", labId, ct: ct);
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
            var id = await service.StartAsync(Actor.From(http), body.ExperimentId, body.Variant ?? "", body.Keep ?? false, ct);
            return TypedResults.Accepted($"/api/runs/{id}", new StartRunResponse(id));
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

    private static async Task<Results<Created<ExperimentDto>, ProblemHttpResult>> CreateExperimentAsync(CreateExperimentRequest body, HttpContext http, LabAccess access, Dashboard.App.Audit.AuditLog audit, DashboardDbContext db, CancellationToken ct)
    {
        var actor = Actor.From(http);
        var labId = await access.ResolveAsync(actor, body.Lab, ct);
        await access.RequireAsync(actor, labId, LabRole.Operator, ct);
        var errors = new List<string>();
        var name = body.Name?.Trim() ?? "";
        if (name.Length is < 1 or > 100 || name.Any(char.IsControl))
        {
            errors.Add("a name is 1-100 printable characters");
        }

        ScenarioDefinition? scenario = null;
        try
        {
            scenario = ScenarioDefinition.Parse(body.Scenario.GetRawText());
        }
        catch (ScenarioException ex)
        {
            errors.AddRange(ex.Errors);
        }

        if (errors.Count == 0 && await db.Experiments.AnyAsync(e => e.LabId == labId && e.Name == name, ct))
        {
            errors.Add($"an experiment named '{name}' exists in this lab");
        }

        if (errors.Count > 0 || scenario is null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Experiment not created", detail: string.Join("; ", errors), extensions: new Dictionary<string, object?> { ["errors"] = errors });
        }

        var e = new Experiment
        {
            Id = Guid.NewGuid(),
            LabId = labId,
            Name = name,
            Description = body.Description?.Length > 2000 ? body.Description[..2000] : body.Description,
            ScenarioJson = scenario.ToJson(),
            CreatedBy = actor.Name,
            CreatedAt = DateTimeOffset.UtcNow,
            UpdatedAt = DateTimeOffset.UtcNow,
        };
        db.Experiments.Add(e);
        await db.SaveChangesAsync(ct);
        await audit.WriteAsync(actor, "experiment.created", $"experiment {e.Id}", $"experiment '{e.Name}' created", labId, ct: ct);
        return TypedResults.Created($"/api/experiments/{e.Id}", new ExperimentDto(e.Id, e.Name, e.Description, false, e.CreatedBy, e.CreatedAt, null, body.Scenario));
    }
}

public sealed record ExperimentDto(Guid Id, string Name, string? Description, bool BuiltIn, string CreatedBy, DateTimeOffset CreatedAt, string? Origin, JsonElement Scenario);

public sealed record CreateExperimentRequest(string? Name, string? Description, JsonElement Scenario, int? Lab = null);

public sealed record StartRunRequest(Guid ExperimentId, string? Variant, bool? Keep);

public sealed record StartRunResponse(Guid Id);
