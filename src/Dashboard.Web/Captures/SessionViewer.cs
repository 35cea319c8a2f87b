using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.Host;
using Dashboard.Web.Identity;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.Web.Captures;

/// <summary>
/// What one user may do with captures and traces, from their lab roles as the database holds them now. A run's session
/// belongs to the run's lab (its members see it; its Admins may stop it); a host-wide one to its starter (an Admin of a
/// lab the starter belongs to sees it and may stop it); a site administrator sees and stops everything.
/// </summary>
public sealed record SessionViewer(Actor Actor, IReadOnlyDictionary<int, LabRole> Labs, IReadOnlySet<string> AdministeredUsers)
{
    public bool CanSee(SessionOwner owner) =>
        Actor.IsAdministrator
        || (owner.UserId is not null && owner.UserId == Actor.UserId)
        || (owner.LabId is { } lab && Labs.ContainsKey(lab))
        || (owner.LabId is null && owner.UserId is { } starter && AdministeredUsers.Contains(starter));

    public bool CanStop(SessionOwner owner) =>
        Actor.IsAdministrator
        || (owner.UserId is not null && owner.UserId == Actor.UserId && owner.RunId is null)
        || (owner.LabId is { } lab && Labs.GetValueOrDefault(lab) == LabRole.Admin)
        || (owner.LabId is null && owner.UserId is { } starter && AdministeredUsers.Contains(starter));

    /// <summary>The viewer as the database says now (roles are never taken from a cache).</summary>
    public static async Task<SessionViewer> LoadAsync(IDbContextFactory<DashboardDbContext> dbs, Actor actor, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dbs);
        ArgumentNullException.ThrowIfNull(actor);
        await using var db = await dbs.CreateDbContextAsync(ct);
        var labs = await db.LabMembers.AsNoTracking().Where(m => m.UserId == actor.UserId).ToDictionaryAsync(m => m.LabId, m => m.Role, ct);
        var adminOf = labs.Where(kv => kv.Value == LabRole.Admin).Select(kv => kv.Key).ToList();
        var administered = adminOf.Count == 0
            ? new HashSet<string>()
            : (await db.LabMembers.AsNoTracking().Where(m => adminOf.Contains(m.LabId)).Select(m => m.UserId).ToListAsync(ct)).ToHashSet();
        return new SessionViewer(actor, labs, administered);
    }
}
