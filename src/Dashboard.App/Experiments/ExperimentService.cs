using Dashboard.App.Access;
using Dashboard.App.Audit;
using Dashboard.App.Labs;
using Dashboard.App.Runs;
using Dashboard.Core.Experiments;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.App.Experiments;

/// <summary>An experiment not saved, with every reason (the name, the scenario's own errors, a duplicate name).</summary>
public sealed class ExperimentRejectedException(IReadOnlyList<string> errors) : Exception(string.Join("; ", errors))
{
    public IReadOnlyList<string> Errors { get; } = errors;
}

/// <summary>
/// Experiments of a lab, for the page and the API alike: list (with the built-ins seeded), create, edit and export. One
/// set of rules: a name is 1-100 printable characters and unique in its lab, a description at most 2,000 characters,
/// the scenario valid; built-ins are not edited; creating and editing need the Operator role in the lab as the database
/// holds it now, and both are audited with the experiment as the subject.
/// </summary>
public sealed class ExperimentService(IDbContextFactory<DashboardDbContext> dbs, LabAccess access, AuditLog audit)
{
    public const int MaxName = 100;
    public const int MaxDescription = 2000;

    /// <summary>The lab's experiments, built-ins first (seeded if missing); Viewer role or more.</summary>
    public async Task<IReadOnlyList<Experiment>> ListAsync(Actor actor, int? lab, CancellationToken ct = default)
    {
        var labId = await access.ResolveAsync(actor, lab, ct).ConfigureAwait(false);
        await access.RequireAsync(actor, labId, LabRole.Viewer, ct).ConfigureAwait(false);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        await RunService.EnsureBuiltInsAsync(db, ct).ConfigureAwait(false);
        return await db.Experiments.AsNoTracking().Where(e => e.LabId == labId).OrderByDescending(e => e.BuiltIn).ThenBy(e => e.Name).ToListAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Creates an experiment (<paramref name="editing"/> null) or edits one of the lab's own; throws <see cref="ExperimentRejectedException"/> with every reason.</summary>
    public async Task<Experiment> SaveAsync(Actor actor, int? lab, Guid? editing, string? name, string? description, string scenarioJson, CancellationToken ct = default)
    {
        var labId = await access.ResolveAsync(actor, lab, ct).ConfigureAwait(false);
        await access.RequireAsync(actor, labId, LabRole.Operator, ct).ConfigureAwait(false);
        var errors = new List<string>();
        var trimmed = name?.Trim() ?? "";
        if (trimmed.Length is < 1 or > MaxName || trimmed.Any(char.IsControl))
        {
            errors.Add($"a name is 1-{MaxName} printable characters");
        }

        ScenarioDefinition? scenario = null;
        try
        {
            scenario = ScenarioDefinition.Parse(scenarioJson, strict: true);
        }
        catch (ScenarioException ex)
        {
            errors.AddRange(ex.Errors);
        }

        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        Experiment? existing = null;
        if (editing is { } id)
        {
            existing = await db.Experiments.SingleOrDefaultAsync(e => e.Id == id && e.LabId == labId, ct).ConfigureAwait(false)
                ?? throw new LabAccessException(AccessDenial.NotFound, $"experiment {id} does not exist in this lab");
            if (existing.BuiltIn)
            {
                errors.Add("built-in experiments are not edited; create your own from its scenario");
            }
        }

        if (errors.Count == 0 && await db.Experiments.AnyAsync(e => e.LabId == labId && e.Name == trimmed && e.Id != editing, ct).ConfigureAwait(false))
        {
            errors.Add($"an experiment named '{trimmed}' exists in this lab");
        }

        if (errors.Count > 0 || scenario is null)
        {
            throw new ExperimentRejectedException(errors);
        }

        var text = description is { Length: > MaxDescription } d ? d[..MaxDescription] : description;
        var now = DateTimeOffset.UtcNow;
        if (existing is not null)
        {
            // Runs keep the scenario they ran with (their own copy); editing changes what the next runs do.
            existing.Name = trimmed;
            existing.Description = text;
            existing.ScenarioJson = scenario.ToJson();
            existing.UpdatedAt = now;
        }
        else
        {
            existing = new Experiment { Id = Guid.NewGuid(), LabId = labId, Name = trimmed, Description = text, ScenarioJson = scenario.ToJson(), CreatedBy = actor.Name, CreatedAt = now, UpdatedAt = now };
            db.Experiments.Add(existing);
        }

        await db.SaveChangesAsync(ct).ConfigureAwait(false);
        var edited = editing is not null;
        await audit.WriteAsync(actor, edited ? "experiment.edited" : "experiment.created", $"experiment {existing.Id}", $"experiment '{trimmed}' {(edited ? "edited" : "created")}", labId, ct: CancellationToken.None).ConfigureAwait(false);
        return existing;
    }
}
