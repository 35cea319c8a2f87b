using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.App.Audit;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.Web.Identity;

public sealed record UserInfo(string Id, string UserName, bool IsAdministrator, bool LockedOut, DateTimeOffset CreatedAt, int AccessFailedCount);

/// <summary>Local accounts: the first administrator, and accounts a site administrator creates, locks and unlocks.</summary>
public sealed class UserAdmin(UserManager<DashboardUser> users, IDbContextFactory<DashboardDbContext> dbs, AuditLog audit)
{
    private static readonly SemaphoreSlim FirstUserGate = new(1, 1);

    public async Task<bool> AnyUserAsync(CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        return await db.Users.AnyAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Creates the first administrator, member (Admin) of every existing lab; refused once any user exists, so the
    /// set-up page and the configured password can each only ever make the first account.
    /// </summary>
    public async Task<IdentityResult> CreateFirstAdministratorAsync(string userName, string password, string? remoteAddress, string how, CancellationToken ct = default)
    {
        await FirstUserGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (await AnyUserAsync(ct).ConfigureAwait(false))
            {
                return IdentityResult.Failed(new IdentityError { Code = "SetupDone", Description = "the administrator exists already; sign in instead" });
            }

            var user = new DashboardUser { UserName = userName, IsAdministrator = true, CreatedAt = DateTimeOffset.UtcNow };
            var result = await users.CreateAsync(user, password).ConfigureAwait(false);
            if (!result.Succeeded)
            {
                return result;
            }

            await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
            foreach (var lab in await db.Labs.ToListAsync(ct).ConfigureAwait(false))
            {
                db.LabMembers.Add(new LabMember { LabId = lab.Id, UserId = user.Id, Role = LabRole.Admin, AddedAt = DateTimeOffset.UtcNow });
            }

            await db.SaveChangesAsync(ct).ConfigureAwait(false);
            await audit.WriteAsync(new Actor(user.Id, user.UserName, true, remoteAddress), "user.created", $"user {user.UserName}", $"first administrator created ({how}); Admin of every existing lab", ct: ct).ConfigureAwait(false);
            return result;
        }
        finally
        {
            FirstUserGate.Release();
        }
    }

    public async Task<IdentityResult> CreateUserAsync(Actor actor, string userName, string password, bool administrator, CancellationToken ct = default)
    {
        RequireAdministrator(actor);
        var user = new DashboardUser { UserName = userName?.Trim(), IsAdministrator = administrator, CreatedAt = DateTimeOffset.UtcNow };
        var result = await users.CreateAsync(user, password ?? "").ConfigureAwait(false);
        if (result.Succeeded)
        {
            await audit.WriteAsync(actor, "user.created", $"user {user.UserName}", $"account {user.UserName} created{(administrator ? " as site administrator" : "")}", ct: ct).ConfigureAwait(false);
        }

        return result;
    }

    public async Task<IReadOnlyList<UserInfo>> ListAsync(Actor actor, CancellationToken ct = default)
    {
        RequireAdministrator(actor);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow;
        var list = await db.Users.AsNoTracking().OrderBy(u => u.UserName).ToListAsync(ct).ConfigureAwait(false);
        return [.. list.Select(u => new UserInfo(u.Id, u.UserName!, u.IsAdministrator, u.LockoutEnd > now, u.CreatedAt, u.AccessFailedCount))];
    }

    /// <summary>Locks an account indefinitely (its sessions and tokens stop working) or unlocks it.</summary>
    public async Task SetLockedAsync(Actor actor, string userId, bool locked, CancellationToken ct = default)
    {
        RequireAdministrator(actor);
        if (userId == actor.UserId && locked)
        {
            throw new ArgumentException("you cannot lock your own account");
        }

        var user = await users.FindByIdAsync(userId).ConfigureAwait(false) ?? throw new ArgumentException("no such user");
        await users.SetLockoutEnabledAsync(user, true).ConfigureAwait(false);
        await users.SetLockoutEndDateAsync(user, locked ? DateTimeOffset.MaxValue : null).ConfigureAwait(false);
        if (!locked)
        {
            await users.ResetAccessFailedCountAsync(user).ConfigureAwait(false);
        }

        await users.UpdateSecurityStampAsync(user).ConfigureAwait(false);
        await audit.WriteAsync(actor, locked ? "user.locked" : "user.unlocked", $"user {user.UserName}", $"account {user.UserName} {(locked ? "locked" : "unlocked")}", ct: ct).ConfigureAwait(false);
    }

    /// <summary>A site administrator sets a new password for an account (a forgotten one); its sessions and the old password stop working.</summary>
    public async Task<IdentityResult> ResetPasswordAsync(Actor actor, string userId, string password, CancellationToken ct = default)
    {
        RequireAdministrator(actor);
        var user = await users.FindByIdAsync(userId).ConfigureAwait(false) ?? throw new ArgumentException("no such user");
        var token = await users.GeneratePasswordResetTokenAsync(user).ConfigureAwait(false);
        var result = await users.ResetPasswordAsync(user, token, password ?? "").ConfigureAwait(false);
        await audit.WriteAsync(actor, result.Succeeded ? "user.password-reset" : "user.password-reset-failed", $"user {user.UserName}",
            result.Succeeded ? $"password of {user.UserName} set by an administrator" : string.Join(" ", result.Errors.Select(e => e.Code)), succeeded: result.Succeeded, ct: ct).ConfigureAwait(false);
        return result;
    }

    private static void RequireAdministrator(Actor actor)
    {
        if (!actor.IsAdministrator)
        {
            throw new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, "only a site administrator manages accounts");
        }
    }
}
