using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.Host;
using Dashboard.App.Access;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.App.Captures;

/// <summary>
/// What one user may do with captures and traces, from their lab roles as the database holds them now. A run's session
/// belongs to the run's lab (its members see it; its Admins may stop it); a host-wide one to its starter alone; a site
/// administrator sees and stops everything. (A lab Admin is not given another user's host-wide pcaps: any lab Admin can
/// add any user to their lab, so that would open every user's captures to them.)
/// </summary>
public sealed record SessionViewer(Actor Actor, IReadOnlyDictionary<int, LabRole> Labs)
{
    public bool CanSee(SessionOwner owner) =>
        Actor.IsAdministrator
        || (owner.UserId is not null && owner.UserId == Actor.UserId)
        || (owner.LabId is { } lab && Labs.ContainsKey(lab));

    public bool CanStop(SessionOwner owner) =>
        Actor.IsAdministrator
        || (owner.UserId is not null && owner.UserId == Actor.UserId && owner.RunId is null)
        || (owner.LabId is { } lab && Labs.GetValueOrDefault(lab) == LabRole.Admin);

    /// <summary>The viewer as the database says now (roles are never taken from a cache).</summary>
    public static async Task<SessionViewer> LoadAsync(IDbContextFactory<DashboardDbContext> dbs, Actor actor, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dbs);
        ArgumentNullException.ThrowIfNull(actor);
        await using var db = await dbs.CreateDbContextAsync(ct);
        var labs = await db.LabMembers.AsNoTracking().Where(m => m.UserId == actor.UserId).ToDictionaryAsync(m => m.LabId, m => m.Role, ct);
        return new SessionViewer(actor, labs);
    }
}
