using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.App.Audit;
using Dashboard.App.Access;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.App.Labs;

/// <summary>A lab as one of its members sees it; <paramref name="Hosts"/> the hosts it may use (null: every host).</summary>
public sealed record LabMembership(int LabId, string LabName, LabRole Role, bool AllowSelfApprovalWhenAlone, int MemberCount, IReadOnlyList<string>? Hosts = null)
{
    /// <summary>Whether the lab's runs and changes may go to <paramref name="host"/>.</summary>
    public bool Allows(string host) => Hosts is null || Hosts.Contains(host, StringComparer.Ordinal);
}

public sealed record MemberInfo(string UserId, string UserName, LabRole Role, DateTimeOffset AddedAt);

/// <summary>
/// Who may do what in which lab, decided here for the UI, the API and the hub alike. Roles are cumulative
/// (Viewer &lt; Operator &lt; Approver &lt; Admin). A non-member is told the lab does not exist (404) rather than that it is
/// forbidden, so lab names and contents do not leak. Host-wide actions (captures, traces, verifying pings) need the Operator
/// role in at least one lab.
/// </summary>
public sealed class LabAccess(IDbContextFactory<DashboardDbContext> dbs, AuditLog audit)
{
    public async Task<LabRole?> RoleAsync(Actor actor, int labId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        return await RoleAsync(db, actor, labId, ct).ConfigureAwait(false);
    }

    public static async Task<LabRole?> RoleAsync(DashboardDbContext db, Actor actor, int labId, CancellationToken ct = default) =>
        actor.UserId is null
            ? null
            : await db.LabMembers.Where(m => m.LabId == labId && m.UserId == actor.UserId).Select(m => (LabRole?)m.Role).SingleOrDefaultAsync(ct).ConfigureAwait(false);

    /// <summary>Throws <see cref="LabAccessException"/> unless the actor holds at least <paramref name="minimum"/> in the lab.</summary>
    public async Task<LabRole> RequireAsync(Actor actor, int labId, LabRole minimum, CancellationToken ct = default)
    {
        var role = await RoleAsync(actor, labId, ct).ConfigureAwait(false);
        return Check(role, labId, minimum);
    }

    public static LabRole Check(LabRole? role, int labId, LabRole minimum)
    {
        if (role is null)
        {
            throw new LabAccessException(Dashboard.App.Access.AccessDenial.NotFound, $"lab {labId} does not exist or you are not a member");
        }

        if (role < minimum)
        {
            throw new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, $"this needs the {minimum} role in lab {labId}; you are {role}");
        }

        return role.Value;
    }

    /// <summary>The lab a request means: the one named (the actor must be a member), else the actor's first lab.</summary>
    public async Task<int> ResolveAsync(Actor actor, int? labId, CancellationToken ct = default)
    {
        if (labId is { } id)
        {
            await RequireAsync(actor, id, LabRole.Viewer, ct).ConfigureAwait(false);
            return id;
        }

        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var first = await db.LabMembers.Where(m => m.UserId == actor.UserId).OrderBy(m => m.LabId).Select(m => (int?)m.LabId).FirstOrDefaultAsync(ct).ConfigureAwait(false);
        return first ?? throw new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, "you are not a member of any lab; ask a lab admin to add you");
    }

    /// <summary>
    /// Host-wide actions (captures, traces, verifying pings) need the Operator role in at least one lab. A refusal is
    /// audited here as "<paramref name="action"/>-refused", for the pages and the API alike, then thrown (403).
    /// </summary>
    public Task RequireHostOperatorAsync(Actor actor, string action, string? subject = null, CancellationToken ct = default) =>
        RequireHostOperatorAsync(actor, action, subject, host: null, ct);

    /// <summary>
    /// As <see cref="RequireHostOperatorAsync(Actor, string, string?, CancellationToken)"/>, for a named host: the
    /// Operator role must be in a lab that may use it (a lab limited to other hosts does not count).
    /// </summary>
    public async Task RequireHostOperatorAsync(Actor actor, string action, string? subject, string? host, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var labs = await db.LabMembers.AsNoTracking().Where(m => m.UserId == actor.UserId && m.Role >= LabRole.Operator).Select(m => m.Lab!.Hosts).ToListAsync(ct).ConfigureAwait(false);
        if (!labs.Any(stored => host is null || HostsOf(stored) is not { } allowed || allowed.Contains(host, StringComparer.Ordinal)))
        {
            var refused = new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, labs.Count == 0
                ? "this changes the host: it needs the Operator role in at least one lab"
                : $"this changes host {Short(host!)}: it needs the Operator role in a lab that may use it (the labs where you are an Operator are limited to other hosts)");
            await audit.WriteAsync(actor, action + "-refused", subject, refused.Message, succeeded: false, host: host, ct: CancellationToken.None).ConfigureAwait(false);
            throw refused;
        }
    }

    public async Task<IReadOnlyList<LabMembership>> LabsOfAsync(Actor actor, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var rows = await db.LabMembers.AsNoTracking().Where(m => m.UserId == actor.UserId).OrderBy(m => m.LabId)
            .Select(m => new { m.LabId, m.Lab!.Name, m.Role, m.Lab.AllowSelfApprovalWhenAlone, Members = m.Lab.Members.Count, m.Lab.Hosts })
            .ToListAsync(ct).ConfigureAwait(false);
        return [.. rows.Select(r => new LabMembership(r.LabId, r.Name, r.Role, r.AllowSelfApprovalWhenAlone, r.Members, HostsOf(r.Hosts)))];
    }

    /// <summary>User ids of the site administrators (who may see every capture and trace).</summary>
    public async Task<IReadOnlyList<string>> SiteAdministratorIdsAsync(CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        return await db.Users.Where(u => u.IsAdministrator).Select(u => u.Id).ToListAsync(ct).ConfigureAwait(false);
    }

    /// <summary>User ids of a lab's members (who receive its live updates).</summary>
    public async Task<IReadOnlyList<string>> MemberIdsAsync(int labId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        return await db.LabMembers.Where(m => m.LabId == labId).Select(m => m.UserId).ToListAsync(ct).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<MemberInfo>> MembersAsync(Actor actor, int labId, CancellationToken ct = default)
    {
        await RequireAsync(actor, labId, LabRole.Viewer, ct).ConfigureAwait(false);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        return await db.LabMembers.AsNoTracking().Where(m => m.LabId == labId).OrderBy(m => m.User!.UserName)
            .Select(m => new MemberInfo(m.UserId, m.User!.UserName!, m.Role, m.AddedAt)).ToListAsync(ct).ConfigureAwait(false);
    }

    /// <summary>A site administrator creates a lab and becomes its Admin.</summary>
    public async Task<int> CreateLabAsync(Actor actor, string name, string? description, CancellationToken ct = default)
    {
        if (!actor.IsAdministrator)
        {
            throw new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, "only a site administrator creates labs");
        }

        name = name?.Trim() ?? "";
        if (name.Length is < 1 or > 100 || name.Any(char.IsControl))
        {
            throw new ArgumentException("a lab name is 1-100 printable characters");
        }

        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        if (await db.Labs.AnyAsync(l => l.Name == name, ct).ConfigureAwait(false))
        {
            throw new ArgumentException($"a lab named '{name}' exists");
        }

        var lab = new Lab { Name = name, Description = description?.Length > 2000 ? description[..2000] : description, CreatedAt = DateTimeOffset.UtcNow };
        lab.Members.Add(new LabMember { UserId = actor.UserId!, Role = LabRole.Admin, AddedAt = DateTimeOffset.UtcNow });
        db.Labs.Add(lab);
        await db.SaveChangesAsync(ct).ConfigureAwait(false);
        await audit.WriteAsync(actor, "lab.created", $"lab {lab.Id}", $"lab '{name}' created; {actor.Name} is its Admin", lab.Id, ct: ct).ConfigureAwait(false);
        return lab.Id;
    }

    /// <summary>Adds a member or changes a member's role (lab Admin only).</summary>
    public async Task SetMemberAsync(Actor actor, int labId, string userName, LabRole role, CancellationToken ct = default)
    {
        await RequireAsync(actor, labId, LabRole.Admin, ct).ConfigureAwait(false);
        if (!Enum.IsDefined(role))
        {
            throw new ArgumentException("role must be Viewer, Operator, Approver or Admin");
        }

        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var normalized = userName?.Trim().ToUpperInvariant() ?? "";
        var user = await db.Users.SingleOrDefaultAsync(u => u.NormalizedUserName == normalized, ct).ConfigureAwait(false)
            ?? throw new ArgumentException($"no user named '{Short(userName)}'");
        var member = await db.LabMembers.SingleOrDefaultAsync(m => m.LabId == labId && m.UserId == user.Id, ct).ConfigureAwait(false);
        string detail;
        if (member is null)
        {
            db.LabMembers.Add(new LabMember { LabId = labId, UserId = user.Id, Role = role, AddedAt = DateTimeOffset.UtcNow });
            detail = $"{user.UserName} added as {role}";
        }
        else
        {
            if (member.Role == LabRole.Admin && role != LabRole.Admin && await db.LabMembers.CountAsync(m => m.LabId == labId && m.Role == LabRole.Admin, ct).ConfigureAwait(false) == 1)
            {
                throw new ArgumentException("the lab's last Admin cannot be demoted");
            }

            detail = $"{user.UserName}: {member.Role} → {role}";
            member.Role = role;
        }

        await db.SaveChangesAsync(ct).ConfigureAwait(false);
        await audit.WriteAsync(actor, "lab.member", $"user {user.UserName}", detail, labId, ct: ct).ConfigureAwait(false);
    }

    public async Task RemoveMemberAsync(Actor actor, int labId, string userId, CancellationToken ct = default)
    {
        await RequireAsync(actor, labId, LabRole.Admin, ct).ConfigureAwait(false);
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var member = await db.LabMembers.Include(m => m.User).SingleOrDefaultAsync(m => m.LabId == labId && m.UserId == userId, ct).ConfigureAwait(false)
            ?? throw new ArgumentException("not a member of this lab");
        if (member.Role == LabRole.Admin && await db.LabMembers.CountAsync(m => m.LabId == labId && m.Role == LabRole.Admin, ct).ConfigureAwait(false) == 1)
        {
            throw new ArgumentException("the lab's last Admin cannot be removed");
        }

        db.LabMembers.Remove(member);
        await db.SaveChangesAsync(ct).ConfigureAwait(false);
        // Not cancellable: self-approval is decided by this entry (a lab is "alone since" only if no member left since).
        await audit.WriteAsync(actor, "lab.member-removed", $"user {member.User?.UserName}", $"{member.User?.UserName} ({member.Role}) removed", labId, ct: CancellationToken.None).ConfigureAwait(false);
    }

    public async Task SetSelfApprovalAsync(Actor actor, int labId, bool allow, CancellationToken ct = default)
    {
        await RequireAsync(actor, labId, LabRole.Admin, ct).ConfigureAwait(false);
        if (allow && !actor.IsAdministrator)
        {
            // A lab Admin could otherwise remove the other members, allow it and approve their own host-wide rule.
            var refused = new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, "only a site administrator allows self-approval; a lab Admin may turn it off");
            await audit.WriteAsync(actor, "lab.settings-refused", $"lab {labId}", refused.Message, labId, succeeded: false, ct: CancellationToken.None).ConfigureAwait(false);
            throw refused;
        }

        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var lab = await db.Labs.SingleAsync(l => l.Id == labId, ct).ConfigureAwait(false);
        lab.AllowSelfApprovalWhenAlone = allow;
        await db.SaveChangesAsync(ct).ConfigureAwait(false);
        await audit.WriteAsync(actor, "lab.settings", $"lab {labId}", $"self-approval in a single-member lab {(allow ? "allowed" : "not allowed")}", labId, ct: ct).ConfigureAwait(false);
    }

    /// <summary>A lab's hosts as stored (one name per line), or null for every host.</summary>
    public static IReadOnlyList<string>? HostsOf(string? stored) =>
        stored is null ? null : stored.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The most hosts a lab is limited to.</summary>
    public const int MaxLabHosts = 64;

    /// <summary>
    /// Limits a lab's runs and changes to some hosts (null: every host again). Only a site administrator decides (a lab
    /// Admin could otherwise widen what the site limited); each name is the dashboard's own host or a registered one.
    /// </summary>
    public async Task SetHostsAsync(Actor actor, int labId, IReadOnlyList<string>? hosts, string localHost, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(actor);
        if (!actor.IsAdministrator)
        {
            var refused = new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, "only a site administrator decides which hosts a lab may use");
            await audit.WriteAsync(actor, "lab.settings-refused", $"lab {labId}", refused.Message, labId, succeeded: false, ct: CancellationToken.None).ConfigureAwait(false);
            throw refused;
        }

        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var lab = await db.Labs.SingleOrDefaultAsync(l => l.Id == labId, ct).ConfigureAwait(false)
            ?? throw new LabAccessException(Dashboard.App.Access.AccessDenial.NotFound, $"lab {labId} does not exist");
        if (hosts is not null)
        {
            if (hosts.Count is 0 or > MaxLabHosts || hosts.Distinct(StringComparer.Ordinal).Count() != hosts.Count)
            {
                throw new LabSettingsException($"hosts: name 1 to {MaxLabHosts} hosts, each once (or none at all for every host)");
            }

            var registered = (await db.Hosts.AsNoTracking().Select(h => h.Name).ToListAsync(ct).ConfigureAwait(false)).ToHashSet(StringComparer.Ordinal);
            if (hosts.FirstOrDefault(h => h != localHost && !registered.Contains(h)) is { } unknown)
            {
                throw new LabSettingsException($"hosts: '{Short(unknown)}' is neither this dashboard's host ('{localHost}') nor a registered one");
            }
        }

        lab.Hosts = hosts is null ? null : string.Join('\n', hosts);
        await db.SaveChangesAsync(ct).ConfigureAwait(false);
        await audit.WriteAsync(actor, "lab.hosts", $"lab {labId}", hosts is null ? "the lab may use every host" : $"the lab may use only {string.Join(", ", hosts)}", labId, ct: ct).ConfigureAwait(false);
    }

    /// <summary>Why the lab's runs and changes may not go to <paramref name="host"/>, or null when they may.</summary>
    public async Task<string?> HostRefusalAsync(int labId, string host, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct).ConfigureAwait(false);
        var stored = await db.Labs.AsNoTracking().Where(l => l.Id == labId).Select(l => l.Hosts).SingleOrDefaultAsync(ct).ConfigureAwait(false);
        return HostsOf(stored) is { } allowed && !allowed.Contains(host, StringComparer.Ordinal)
            ? $"lab {labId} may use only the hosts {string.Join(", ", allowed)}: not '{Short(host)}'"
            : null;
    }

    private static string Short(string? s) => s is null ? "" : s.Length > 40 ? s[..40] + "…" : s;
}

/// <summary>A lab setting that cannot be taken as given (400), with what is wrong.</summary>
public sealed class LabSettingsException(string message) : ArgumentException(message);
