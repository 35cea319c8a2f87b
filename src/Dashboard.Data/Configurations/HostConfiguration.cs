using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Dashboard.Data.Configurations;

public sealed class RegisteredHostConfiguration : IEntityTypeConfiguration<RegisteredHost>
{
    public void Configure(EntityTypeBuilder<RegisteredHost> builder)
    {
        builder.Property(h => h.Name).HasMaxLength(63);
        builder.Property(h => h.TokenHash).HasMaxLength(64);
        builder.Property(h => h.TokenPrefix).HasMaxLength(16);
        builder.Property(h => h.CreatedBy).HasMaxLength(100);
        builder.Property(h => h.LastAgentVersion).HasMaxLength(40);
        builder.Property(h => h.LastEngineVersion).HasMaxLength(40);
        builder.HasIndex(h => h.Name).IsUnique();
        builder.HasIndex(h => h.TokenHash).IsUnique();
    }
}
