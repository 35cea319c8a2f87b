using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Dashboard.Data.Configurations;

public sealed class ExperimentConfiguration : IEntityTypeConfiguration<Experiment>
{
    public void Configure(EntityTypeBuilder<Experiment> builder)
    {
        builder.Property(e => e.Name).HasMaxLength(100);
        builder.Property(e => e.Description).HasMaxLength(2000);
        builder.Property(e => e.CreatedBy).HasMaxLength(100);
        builder.Property(e => e.Origin).HasMaxLength(300);
        builder.HasIndex(e => new { e.LabId, e.Name }).IsUnique();
        builder.HasOne<Lab>().WithMany().HasForeignKey(e => e.LabId).OnDelete(DeleteBehavior.Cascade);
    }
}

public sealed class RunConfiguration : IEntityTypeConfiguration<Run>
{
    public void Configure(EntityTypeBuilder<Run> builder)
    {
        builder.Property(r => r.ExperimentName).HasMaxLength(100);
        builder.Property(r => r.Variant).HasMaxLength(40);
        builder.Property(r => r.Status).HasConversion<string>().HasMaxLength(20);
        builder.Property(r => r.Author).HasMaxLength(100);
        builder.Property(r => r.Outcome).HasMaxLength(200);
        builder.Property(r => r.Error).HasMaxLength(4000);
        builder.Property(r => r.LastStep).HasMaxLength(200);
        builder.Property(r => r.Origin).HasMaxLength(300);

        // The history list filters by lab, then experiment, variant, status, author, and sorts by start time.
        builder.HasIndex(r => new { r.LabId, r.StartedAt });
        builder.HasIndex(r => new { r.LabId, r.ExperimentId, r.StartedAt });
        builder.HasIndex(r => r.Status);
        builder.HasOne<Experiment>().WithMany().HasForeignKey(r => r.ExperimentId).OnDelete(DeleteBehavior.Cascade);
    }
}

public sealed class RunArtifactConfiguration : IEntityTypeConfiguration<RunArtifact>
{
    public void Configure(EntityTypeBuilder<RunArtifact> builder)
    {
        builder.Property(a => a.Kind).HasMaxLength(40);
        builder.HasIndex(a => new { a.RunId, a.Kind }).IsUnique();
        builder.HasOne<Run>().WithMany().HasForeignKey(a => a.RunId).OnDelete(DeleteBehavior.Cascade);
    }
}

public sealed class RunRuleDeltaConfiguration : IEntityTypeConfiguration<RunRuleDelta>
{
    public void Configure(EntityTypeBuilder<RunRuleDelta> builder)
    {
        builder.HasIndex(d => d.RunId);
        builder.Property(d => d.Change).HasMaxLength(10);
        builder.HasOne<Run>().WithMany().HasForeignKey(d => d.RunId).OnDelete(DeleteBehavior.Cascade);
    }
}

public sealed class RunProbeConfiguration : IEntityTypeConfiguration<RunProbe>
{
    public void Configure(EntityTypeBuilder<RunProbe> builder)
    {
        builder.HasIndex(p => p.RunId);
        builder.HasOne<Run>().WithMany().HasForeignKey(p => p.RunId).OnDelete(DeleteBehavior.Cascade);
    }
}

public sealed class RunCaptureConfiguration : IEntityTypeConfiguration<RunCapture>
{
    public void Configure(EntityTypeBuilder<RunCapture> builder)
    {
        builder.HasIndex(c => c.RunId);
        builder.HasOne<Run>().WithMany().HasForeignKey(c => c.RunId).OnDelete(DeleteBehavior.Cascade);
    }
}

public sealed class RunPacketConfiguration : IEntityTypeConfiguration<RunPacket>
{
    public void Configure(EntityTypeBuilder<RunPacket> builder)
    {
        // Kernel timestamps have microseconds; the context's default DateTimeOffset conversion keeps 0.1 ms, which puts a
        // request and its reply on two bridges at the same instant and in either order. UTC ticks keep them whole.
        builder.Property(p => p.Timestamp).HasConversion(v => v.UtcTicks, v => new DateTimeOffset(v, TimeSpan.Zero));
        builder.HasIndex(p => new { p.RunId, p.Timestamp });
        builder.HasIndex(p => p.Decoded);
        builder.HasOne<Run>().WithMany().HasForeignKey(p => p.RunId).OnDelete(DeleteBehavior.Cascade);
    }
}
