using System.Linq.Expressions;
using Dashboard.Data.Entities;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Dashboard.Data;

/// <summary>
/// The dashboard's database: Identity's tables, labs and members, experiments and runs, change requests, audit,
/// registered agent hosts, firewall history, and (with PostgreSQL) the data-protection keys every replica shares.
/// </summary>
public sealed class DashboardDbContext(DbContextOptions<DashboardDbContext> options) : IdentityDbContext<DashboardUser>(options), IDataProtectionKeyContext
{
    /// <summary>Data-protection keys (sign-in cookies, antiforgery): used with PostgreSQL, so every replica reads and writes the same ring.</summary>
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    public DbSet<Lab> Labs => Set<Lab>();
    public DbSet<LabMember> LabMembers => Set<LabMember>();
    public DbSet<ApiToken> ApiTokens => Set<ApiToken>();
    public DbSet<ChangeRequest> ChangeRequests => Set<ChangeRequest>();
    public DbSet<AuditEntry> AuditEntries => Set<AuditEntry>();
    public DbSet<Experiment> Experiments => Set<Experiment>();
    public DbSet<Run> Runs => Set<Run>();
    public DbSet<RunArtifact> RunArtifacts => Set<RunArtifact>();
    public DbSet<RunRuleDelta> RunRuleDeltas => Set<RunRuleDelta>();
    public DbSet<RunProbe> RunProbes => Set<RunProbe>();
    public DbSet<RunCapture> RunCaptures => Set<RunCapture>();
    public DbSet<RunPacket> RunPackets => Set<RunPacket>();
    public DbSet<RegisteredHost> Hosts => Set<RegisteredHost>();
    public DbSet<FirewallChangeRecord> FirewallChanges => Set<FirewallChangeRecord>();
    public DbSet<FirewallCheckpoint> FirewallCheckpoints => Set<FirewallCheckpoint>();

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.ApplyConfigurationsFromAssembly(typeof(DashboardDbContext).Assembly);
    }

    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        if (Database.IsNpgsql())
        {
            // timestamptz holds an instant: Npgsql writes only offset 0, so every value (and every parameter compared
            // with a column) is turned to UTC on the way in; it comes back as UTC.
            configurationBuilder.Properties<DateTimeOffset>().HaveConversion<UtcDateTimeOffsetConverter>();
        }
        else
        {
            // SQLite cannot ORDER BY a DateTimeOffset stored as text; as a 64-bit number it sorts and compares, once
            // every value (and parameter) is UTC: the binary form holds the clock reading and the offset.
            configurationBuilder.Properties<DateTimeOffset>().HaveConversion<UtcBinaryDateTimeOffsetConverter>();
        }
    }

    /// <summary>Turns a moment to UTC before PostgreSQL stores it (timestamptz takes offset 0 only).</summary>
    private sealed class UtcDateTimeOffsetConverter() : ValueConverter<DateTimeOffset, DateTimeOffset>(v => v.ToUniversalTime(), v => v);

    /// <summary>SQLite: the moment in UTC, then EF's 64-bit binary form of it (so numbers order as instants).</summary>
    private sealed class UtcBinaryDateTimeOffsetConverter() : ValueConverter<DateTimeOffset, long>(
        (Expression<Func<DateTimeOffset, long>>)Composed.ConvertToProviderExpression,
        (Expression<Func<long, DateTimeOffset>>)Composed.ConvertFromProviderExpression)
    {
        private static readonly ValueConverter Composed = new UtcDateTimeOffsetConverter().ComposeWith(new DateTimeOffsetToBinaryConverter());
    }

    /// <summary>The audit log is append-only: this context refuses to change or delete an entry (the database's triggers refuse too).</summary>
    public override Task<int> SaveChangesAsync(bool acceptAllChangesOnSuccess, CancellationToken cancellationToken = default)
    {
        RefuseAuditEdits();
        return base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
    }

    public override int SaveChanges(bool acceptAllChangesOnSuccess)
    {
        RefuseAuditEdits();
        return base.SaveChanges(acceptAllChangesOnSuccess);
    }

    private void RefuseAuditEdits()
    {
        if (ChangeTracker.Entries<AuditEntry>().Any(e => e.State is EntityState.Modified or EntityState.Deleted))
        {
            throw new InvalidOperationException("the audit log is append-only: entries cannot be changed or deleted");
        }
    }
}
