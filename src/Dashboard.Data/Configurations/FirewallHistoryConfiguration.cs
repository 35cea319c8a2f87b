using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Dashboard.Data.Configurations;

public sealed class FirewallChangeRecordConfiguration : IEntityTypeConfiguration<FirewallChangeRecord>
{
    public void Configure(EntityTypeBuilder<FirewallChangeRecord> builder)
    {
        builder.Property(r => r.Host).HasMaxLength(64);
        builder.Property(r => r.Family).HasMaxLength(16);
        builder.Property(r => r.Table).HasMaxLength(256);
        builder.Property(r => r.Chain).HasMaxLength(256);
        builder.Property(r => r.Kind).HasMaxLength(16);
        builder.Property(r => r.Owner).HasMaxLength(16);
        builder.Property(r => r.Cause).HasMaxLength(16);
        builder.Property(r => r.CauseDetail).HasMaxLength(256);
        builder.Property(r => r.Comment).HasMaxLength(512);
        builder.Property(r => r.PolicyBefore).HasMaxLength(32);
        builder.Property(r => r.PolicyAfter).HasMaxLength(32);
        builder.HasIndex(r => new { r.Host, r.At });
        builder.HasIndex(r => new { r.Host, r.Cause, r.At });
    }
}

public sealed class FirewallCheckpointConfiguration : IEntityTypeConfiguration<FirewallCheckpoint>
{
    public void Configure(EntityTypeBuilder<FirewallCheckpoint> builder)
    {
        builder.Property(c => c.Host).HasMaxLength(64);
        builder.HasIndex(c => new { c.Host, c.At });
    }
}
