using Dashboard.App.Contracts;
using System.Text.Json;
using Dashboard.App.Access;
using Dashboard.App.Audit;
using Dashboard.App.Labs;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Experiments;
using Dashboard.Core.Firewall;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Dashboard.App.Runs;

/// <summary>One run as its page shows it: the record, its traffic, the predicted matrix and the traced packets (or why there are none).</summary>
public sealed record RunView(int LabId, RunDetail Detail, RunTraffic Traffic, IsolationMatrix? Matrix, IReadOnlyList<TracedPacket> Traces, string? TraceNote, RunWalks? Walks = null);

/// <summary>Two runs compared, with each run's predicted matrix.</summary>
public sealed record RunComparisonView(RunComparison Comparison, IsolationMatrix? MatrixA, IsolationMatrix? MatrixB);

/// <summary>An archive written to a stream, with the file name to offer.</summary>
public sealed record RunExport(string FileName);

/// <summary>
/// The run history for every caller (pages, API): lists, one run, comparisons, artifacts, pcaps, import, export and
/// cancelling. Who may see a run is decided here once: the Viewer role in its lab as the database holds it now (a run
/// of a lab the caller is not a member of, and a run that does not exist, are both "not found"); importing and
/// cancelling need the Operator role, and both are audited.
/// </summary>
public sealed class RunHistory(IDbContextFactory<DashboardDbContext> dbs, LabAccess access, AuditLog audit, RunService runs, IOptions<DataOptions> data, IOptions<Dashboard.Host.DockerHostOptions> host)
{
    private string DataDirectory => data.Value.ResolveDirectory();

    public async Task<RunList> ListAsync(Actor actor, int? lab, RunFilter filter, CancellationToken ct = default)
    {
        var labId = await access.ResolveAsync(actor, lab, ct).ConfigureAwait(false);
        await access.RequireAsync(actor, labId, LabRole.Viewer, ct).ConfigureAwait(false);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        return await RunQueries.ListAsync(db, labId, filter, ct).ConfigureAwait(false);
    }

    /// <summary>The run's lab, after checking the caller holds <paramref name="minimum"/> there.</summary>
    public async Task<int> RequireRunAsync(Actor actor, Guid id, LabRole minimum, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        return await RequireRunAsync(db, actor, id, minimum, ct).ConfigureAwait(false);
    }

    /// <summary>The same check on the caller's context: one context per history call, not one for the check and one for the read.</summary>
    private static async Task<int> RequireRunAsync(DashboardDbContext db, Actor actor, Guid id, LabRole minimum, CancellationToken ct)
    {
        var labId = await RunQueries.LabOfAsync(db, id, ct).ConfigureAwait(false)
            ?? throw new LabAccessException(AccessDenial.NotFound, $"run {id} does not exist or is in a lab you are not a member of");
        LabAccess.Check(await LabAccess.RoleAsync(db, actor, labId, ct).ConfigureAwait(false), labId, minimum);
        return labId;
    }

    public async Task<RunDetail?> GetAsync(Actor actor, Guid id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var labId = await RequireRunAsync(db, actor, id, LabRole.Viewer, ct).ConfigureAwait(false);
        return await RunQueries.GetAsync(db, labId, id, ct).ConfigureAwait(false);
    }

    /// <summary>Everything the run page shows, or null when the caller may not see it (or it does not exist).</summary>
    public async Task<RunView?> ViewAsync(Actor actor, Guid id, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        int labId;
        try
        {
            labId = await RequireRunAsync(db, actor, id, LabRole.Viewer, ct).ConfigureAwait(false);
        }
        catch (LabAccessException)
        {
            return null;
        }

        if (await RunQueries.GetAsync(db, labId, id, ct).ConfigureAwait(false) is not { } detail)
        {
            return null;
        }

        var traffic = await RunQueries.TrafficAsync(db, id, ct: ct).ConfigureAwait(false);
        var artifacts = await db.RunArtifacts.AsNoTracking()
            .Where(a => a.RunId == id && (a.Kind == RunArtifactKind.Matrix || a.Kind == RunArtifactKind.Traces || a.Kind == RunArtifactKind.Topology || a.Kind == RunArtifactKind.RulesetAfter))
            .ToListAsync(ct).ConfigureAwait(false);
        string? Content(string kind) => artifacts.FirstOrDefault(a => a.Kind == kind)?.Content;
        var matrix = Content(RunArtifactKind.Matrix) is { } mx ? JsonSerializer.Deserialize<IsolationMatrix>(mx, ScenarioDefinition.Json) : null;
        var (traces, note) = Content(RunArtifactKind.Traces) is { } tr ? TraceArtifact.Read(tr) : ([], null);
        var firstProbe = await db.RunProbes.AsNoTracking().Where(p => p.RunId == id).OrderBy(p => p.Order).FirstOrDefaultAsync(ct).ConfigureAwait(false);
        return new RunView(labId, detail, traffic, matrix, traces, note, RunWalks.Of(firstProbe, Content(RunArtifactKind.Topology), Content(RunArtifactKind.RulesetAfter), traces));
    }

    /// <summary>Two runs side by side, or null when the caller may not see the first (the comparison reads both from its lab).</summary>
    public async Task<RunComparisonView?> CompareAsync(Actor actor, Guid a, Guid b, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var labId = await RequireRunAsync(db, actor, a, LabRole.Viewer, ct).ConfigureAwait(false);
        if (await RunQueries.CompareAsync(db, labId, a, b, ct).ConfigureAwait(false) is not { } comparison)
        {
            return null;
        }

        return new RunComparisonView(comparison, await MatrixOfAsync(db, a, ct).ConfigureAwait(false), await MatrixOfAsync(db, b, ct).ConfigureAwait(false));
    }

    private static async Task<IsolationMatrix?> MatrixOfAsync(DashboardDbContext db, Guid run, CancellationToken ct) =>
        await db.RunArtifacts.AsNoTracking().Where(x => x.RunId == run && x.Kind == RunArtifactKind.Matrix).Select(x => x.Content).SingleOrDefaultAsync(ct).ConfigureAwait(false) is { } json
            ? JsonSerializer.Deserialize<IsolationMatrix>(json, ScenarioDefinition.Json)
            : null;

    /// <summary>One stored artifact's text (null: no such artifact).</summary>
    public async Task<string?> ArtifactAsync(Actor actor, Guid id, string kind, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        await RequireRunAsync(db, actor, id, LabRole.Viewer, ct).ConfigureAwait(false);
        return await db.RunArtifacts.AsNoTracking().Where(x => x.RunId == id && x.Kind == kind).Select(x => x.Content).SingleOrDefaultAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The path of one of the run's pcaps, when it is still on disk.</summary>
    public async Task<string?> PcapPathAsync(Actor actor, Guid id, long captureId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        await RequireRunAsync(db, actor, id, LabRole.Viewer, ct).ConfigureAwait(false);
        var c = await db.RunCaptures.AsNoTracking().SingleOrDefaultAsync(x => x.Id == captureId && x.RunId == id, ct).ConfigureAwait(false);
        var path = c?.PcapFile is { } f ? Path.Combine(DataDirectory, f) : null;
        return path is not null && File.Exists(path) ? path : null;
    }

    public async Task<RunProgress?> ProgressAsync(Actor actor, Guid id, CancellationToken ct = default)
    {
        await RequireRunAsync(actor, id, LabRole.Viewer, ct).ConfigureAwait(false);
        var p = runs.Progress(id);
        if (p is not null && (p.Status != RunStatus.Running || runs.RunsHere(id)))
        {
            return p;
        }

        // A run another replica runs (or ran): its relayed progress while the database says it runs; else its step
        // and state as stored (the fraction only once it ended), which also ends a relayed report that went stale.
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var stored = await db.Runs.Where(r => r.Id == id).Select(r => new { r.LastStep, r.Status, r.LabId }).SingleOrDefaultAsync(ct).ConfigureAwait(false);
        return stored is null ? p
            : stored.Status == RunStatus.Running && p is not null ? p
            : new RunProgress(id, stored.LastStep ?? RunService.QueuedStep, stored.Status == RunStatus.Running ? 0 : 1, stored.Status, stored.LastStep is null ? [] : [stored.LastStep], stored.LabId);
    }

    /// <summary>Asks a running run to stop (Operator role); false when it is not running. Audited when asked.</summary>
    public async Task<bool> CancelAsync(Actor actor, Guid id, CancellationToken ct = default)
    {
        var labId = await RequireRunAsync(actor, id, LabRole.Operator, ct).ConfigureAwait(false);
        if (!await runs.CancelAsync(id, ct).ConfigureAwait(false))
        {
            return false;
        }

        await audit.WriteAsync(actor, "run.cancelled", $"run {id}", "cancellation requested", labId, ct: CancellationToken.None).ConfigureAwait(false);
        return true;
    }

    /// <summary>Imports an archive into a lab (Operator role); throws <see cref="ImportRejectedException"/> and stores nothing when any part is refused.</summary>
    public async Task<ImportResult> ImportAsync(Actor actor, int? lab, Stream archive, string fileName, CancellationToken ct = default)
    {
        var labId = await access.ResolveAsync(actor, lab, ct).ConfigureAwait(false);
        await access.RequireAsync(actor, labId, LabRole.Operator, ct).ConfigureAwait(false);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var result = await RunArchive.ImportAsync(db, DataDirectory, labId, archive, fileName, actor.Name, ct).ConfigureAwait(false);
        await audit.WriteAsync(actor, "run.imported", $"experiment {result.ExperimentId}", $"imported {result.Runs.Count} run(s) of {result.Experiment} from {fileName}", labId, ct: CancellationToken.None).ConfigureAwait(false);
        return result;
    }

    /// <summary>Writes one ended run as an archive; null when the caller may not see it or it is still running.</summary>
    public async Task<RunExport?> ExportRunAsync(Actor actor, Guid id, Stream output, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var labId = await RequireRunAsync(db, actor, id, LabRole.Viewer, ct).ConfigureAwait(false);
        var r = await db.Runs.AsNoTracking().SingleOrDefaultAsync(x => x.Id == id && x.LabId == labId && x.Status != RunStatus.Running, ct).ConfigureAwait(false);
        if (r is null)
        {
            return null;
        }

        await RunArchive.ExportAsync(db, DataDirectory, r.ExperimentId, [id], "run", host.Value.Name, output, ct).ConfigureAwait(false);
        return new RunExport($"run-{Slug(r.ExperimentName)}-{r.Variant}-{r.StartedAt:yyyyMMdd-HHmmss}.zip");
    }

    /// <summary>Writes an experiment with all its ended runs as an archive; null when there is none the caller may see.</summary>
    public async Task<RunExport?> ExportExperimentAsync(Actor actor, Guid id, Stream output, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var e = await db.Experiments.AsNoTracking().SingleOrDefaultAsync(x => x.Id == id, ct).ConfigureAwait(false);
        if (e is null || await access.RoleAsync(actor, e.LabId, ct).ConfigureAwait(false) is null)
        {
            return null;
        }

        var runIds = await db.Runs.AsNoTracking().Where(r => r.ExperimentId == id && r.Status != RunStatus.Running).OrderBy(r => r.StartedAt).Select(r => r.Id).ToListAsync(ct).ConfigureAwait(false);
        await RunArchive.ExportAsync(db, DataDirectory, id, runIds, "experiment", host.Value.Name, output, ct).ConfigureAwait(false);
        return new RunExport($"experiment-{Slug(e.Name)}.zip");
    }

    private static string Slug(string s) => new([.. s.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')]);
}
