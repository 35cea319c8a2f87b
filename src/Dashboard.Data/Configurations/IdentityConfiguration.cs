using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Dashboard.Data.Configurations;

public sealed class LabMemberConfiguration : IEntityTypeConfiguration<LabMember>
{
    public void Configure(EntityTypeBuilder<LabMember> builder)
    {
        builder.HasKey(m => new { m.LabId, m.UserId });
        builder.HasOne(m => m.Lab).WithMany(l => l.Members).HasForeignKey(m => m.LabId).OnDelete(DeleteBehavior.Cascade);
        builder.HasOne(m => m.User).WithMany().HasForeignKey(m => m.UserId).OnDelete(DeleteBehavior.Cascade);
        builder.HasIndex(m => m.UserId);
    }
}

public sealed class ApiTokenConfiguration : IEntityTypeConfiguration<ApiToken>
{
    public void Configure(EntityTypeBuilder<ApiToken> builder)
    {
        builder.Property(t => t.Name).HasMaxLength(100);
        builder.Property(t => t.Hash).HasMaxLength(64);
        builder.Property(t => t.Prefix).HasMaxLength(16);
        builder.HasIndex(t => t.Hash).IsUnique();
        builder.HasOne(t => t.User).WithMany().HasForeignKey(t => t.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}

public sealed class ChangeRequestConfiguration : IEntityTypeConfiguration<ChangeRequest>
{
    public void Configure(EntityTypeBuilder<ChangeRequest> builder)
    {
        builder.Property(c => c.RuleJson).HasMaxLength(4000);
        builder.Property(c => c.Rationale).HasMaxLength(2000);
        builder.Property(c => c.DecisionNote).HasMaxLength(2000);
        builder.Property(c => c.Tag).HasMaxLength(100);
        builder.Property(c => c.Version).IsConcurrencyToken();
        builder.HasOne<Lab>().WithMany().HasForeignKey(c => c.LabId).OnDelete(DeleteBehavior.Cascade);
        builder.HasIndex(c => new { c.LabId, c.State });
        builder.HasIndex(c => c.Tag);
    }
}

public sealed class AuditEntryConfiguration : IEntityTypeConfiguration<AuditEntry>
{
    public void Configure(EntityTypeBuilder<AuditEntry> builder)
    {
        builder.Property(a => a.Action).HasMaxLength(64);
        builder.Property(a => a.Actor).HasMaxLength(256);
        builder.Property(a => a.Subject).HasMaxLength(256);
        builder.Property(a => a.Detail).HasMaxLength(4000);
        builder.Property(a => a.CommandLine).HasMaxLength(4000);
        builder.Property(a => a.Result).HasMaxLength(4000);
        builder.Property(a => a.Host).HasMaxLength(64);
        builder.HasIndex(a => a.At);
        builder.HasIndex(a => new { a.Host, a.At });
        builder.HasIndex(a => new { a.LabId, a.At });
        builder.HasIndex(a => a.Action);
    }
}
