using Dashboard.Data;
using Microsoft.EntityFrameworkCore.Design;

namespace Dashboard.Migrations.Postgres;

/// <summary>Lets <c>dotnet ef</c> build the PostgreSQL model without starting the web app (no server is contacted).</summary>
public sealed class DesignTimeDbContextFactory : IDesignTimeDbContextFactory<DashboardDbContext>
{
    public DashboardDbContext CreateDbContext(string[] args) =>
        new(ServiceCollectionExtensions.ContextOptions(DataOptions.Postgres, "Host=localhost;Database=netlab_design"));
}
