using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Dashboard.Data.Configurations;

public sealed class LabConfiguration : IEntityTypeConfiguration<Lab>
{
    public void Configure(EntityTypeBuilder<Lab> builder)
    {
        builder.Property(l => l.Name).HasMaxLength(100);
        builder.Property(l => l.Description).HasMaxLength(2000);
        builder.HasIndex(l => l.Name).IsUnique();
    }
}
