using System.Globalization;
using CsvHelper;
using CsvHelper.Configuration;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.App.Access;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.App.Audit;

public sealed record AuditFilter(string? User = null, string? Action = null, int? Lab = null, string? Text = null, DateTimeOffset? From = null, DateTimeOffset? To = null, bool? Failed = null, int Page = 1, int PageSize = 50, string? Host = null);

public sealed record AuditRow(long Id, DateTimeOffset At, string Actor, int? LabId, string? LabName, string Action, string? Subject, string Detail, string? CommandLine, string? Result, bool Succeeded, string? RemoteAddress, string? Host);

public sealed record AuditResult(IReadOnlyList<AuditRow> Rows, int Total, int Page, int PageSize);

/// <summary>
/// The append-only audit log: written by every service that signs in, changes membership, moves a change request or runs a
/// host command; read back with filters by whoever may see the entries (lab entries by the lab's members, the rest by site
/// administrators and by the user they are about).
/// </summary>
public sealed class AuditLog(IDbContextFactory<DashboardDbContext> dbs, ILogger<AuditLog> logger)
{
    public const int MaxField = 4000;

    /// <summary>
    /// Records an action. <paramref name="host"/> names the Docker host a host action was on (this dashboard's own or an
    /// agent's); the audit page filters by it.
    /// </summary>
    public async Task WriteAsync(Actor actor, string action, string? subject, string detail, int? labId = null, string? command = null, string? result = null, bool succeeded = true, string? host = null, CancellationToken ct = default)
    {
        var entry = new AuditEntry
        {
            At = DateTimeOffset.UtcNow,
            UserId = actor.UserId,
            Actor = Cut(actor.Name, 256)!,
            LabId = labId,
            Action = action,
            Subject = Cut(subject, 256),
            Detail = Cut(detail, MaxField)!,
            CommandLine = Cut(command, MaxField),
            Result = Cut(result, MaxField),
            Succeeded = succeeded,
            RemoteAddress = actor.RemoteAddress,
            Host = Cut(host, 64),
        };
        await using var db = await dbs.CreateDbContextAsync(CancellationToken.None).ConfigureAwait(false);
        db.AuditEntries.Add(entry);

        // Not cancellable: an action that happened is recorded even if the request that caused it went away.
        await db.SaveChangesAsync(CancellationToken.None).ConfigureAwait(false);
        logger.LogInformation("audit {Action} {Subject} by {Actor}: {Detail}", action, subject, actor.Name, entry.Detail);
    }

    public async Task<AuditResult> QueryAsync(Actor viewer, AuditFilter filter, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var q = Visible(db, viewer, filter);
        var total = await q.CountAsync(ct).ConfigureAwait(false);
        var size = Math.Clamp(filter.PageSize, 1, 500);
        var page = Math.Max(1, filter.Page);
        var rows = await Project(db, q.OrderByDescending(a => a.Id).Skip((page - 1) * size).Take(size)).ToListAsync(ct).ConfigureAwait(false);
        return new AuditResult(rows, total, page, size);
    }

    /// <summary>Every visible entry matching the filter as CSV (RFC 4180; cells that a spreadsheet would run as a formula are escaped).</summary>
    public async Task WriteCsvAsync(Actor viewer, AuditFilter filter, Stream output, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var rows = Project(db, Visible(db, viewer, filter).OrderBy(a => a.Id)).AsAsyncEnumerable();
        await using var writer = new StreamWriter(output, new System.Text.UTF8Encoding(false), leaveOpen: true);
        await using var csv = new CsvWriter(writer, new CsvConfiguration(CultureInfo.InvariantCulture) { InjectionOptions = InjectionOptions.Escape });
        csv.WriteHeader<AuditRow>();
        await csv.NextRecordAsync().ConfigureAwait(false);
        await foreach (var r in rows.WithCancellation(ct).ConfigureAwait(false))
        {
            csv.WriteRecord(r);
            await csv.NextRecordAsync().ConfigureAwait(false);
        }
    }

    public async Task<IReadOnlyList<string>> ActionsAsync(CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        return await db.AuditEntries.Select(a => a.Action).Distinct().OrderBy(a => a).ToListAsync(ct).ConfigureAwait(false);
    }

    private static IQueryable<AuditEntry> Visible(DashboardDbContext db, Actor viewer, AuditFilter f)
    {
        var myLabs = db.LabMembers.Where(m => m.UserId == viewer.UserId).Select(m => m.LabId);
        var q = db.AuditEntries.AsNoTracking()
            .Where(a => (a.LabId != null && myLabs.Contains(a.LabId.Value)) || (a.LabId == null && (viewer.IsAdministrator || a.UserId == viewer.UserId)));
        if (!string.IsNullOrWhiteSpace(f.User))
        {
            q = q.Where(a => a.Actor == f.User);
        }

        if (!string.IsNullOrWhiteSpace(f.Action))
        {
            q = f.Action.EndsWith('*') ? q.Where(a => a.Action.StartsWith(f.Action.TrimEnd('*'))) : q.Where(a => a.Action == f.Action);
        }

        if (f.Lab is { } lab)
        {
            q = q.Where(a => a.LabId == lab);
        }

        if (!string.IsNullOrWhiteSpace(f.Host))
        {
            q = q.Where(a => a.Host == f.Host);
        }

        if (!string.IsNullOrWhiteSpace(f.Text))
        {
            var t = f.Text.Trim();
            q = q.Where(a => a.Detail.Contains(t) || (a.Subject != null && a.Subject.Contains(t)) || (a.CommandLine != null && a.CommandLine.Contains(t)));
        }

        if (f.From is { } from)
        {
            q = q.Where(a => a.At >= from);
        }

        if (f.To is { } to)
        {
            q = q.Where(a => a.At <= to);
        }

        if (f.Failed is { } failed)
        {
            q = q.Where(a => a.Succeeded == !failed);
        }

        return q;
    }

    private static IQueryable<AuditRow> Project(DashboardDbContext db, IQueryable<AuditEntry> q) =>
        q.Select(a => new AuditRow(a.Id, a.At, a.Actor, a.LabId, db.Labs.Where(l => l.Id == a.LabId).Select(l => l.Name).FirstOrDefault(), a.Action, a.Subject, a.Detail, a.CommandLine, a.Result, a.Succeeded, a.RemoteAddress, a.Host));

    private static string? Cut(string? s, int max) => s is null ? null : s.Length <= max ? s : s[..(max - 1)] + "…";
}
