using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Data;

public static class ServiceCollectionExtensions
{
    public const string MigrationsAssembly = "Dashboard.Migrations";

    /// <summary>Registers a <see cref="DashboardDbContext"/> factory over SQLite, with migrations from <c>Dashboard.Migrations</c>.</summary>
    public static IServiceCollection AddDashboardData(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(DataOptions.Section).Get<DataOptions>() ?? new DataOptions();
        services.AddOptions<DataOptions>().Bind(configuration.GetSection(DataOptions.Section));
        services.AddSingleton(options);
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            // The folder holds password and token hashes, pcaps and data-protection keys: the dashboard's user only.
            var folder = System.IO.Directory.CreateDirectory(options.ResolveDirectory());
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(folder.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }

        services.AddDbContextFactory<DashboardDbContext>(o => o.UseSqlite(
            options.ResolveConnectionString(),
            b => b.MigrationsAssembly(MigrationsAssembly)));
        return services;
    }

    /// <summary>Applies pending migrations, turns on WAL, and makes sure a first lab exists.</summary>
    public static async Task MigrateDashboardDatabaseAsync(this IServiceProvider services, CancellationToken ct = default)
    {
        var factory = services.GetRequiredService<IDbContextFactory<DashboardDbContext>>();
        await using var db = await factory.CreateDbContextAsync(ct).ConfigureAwait(false);
        await db.Database.MigrateAsync(ct).ConfigureAwait(false);
        await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", ct).ConfigureAwait(false);
        if (!OperatingSystem.IsWindows() && db.Database.GetDbConnection().DataSource is { Length: > 0 } file && File.Exists(file))
        {
            foreach (var f in new[] { file, file + "-wal", file + "-shm" }.Where(File.Exists))
            {
                File.SetUnixFileMode(f, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }

        if (!await db.Labs.AnyAsync(ct).ConfigureAwait(false))
        {
            db.Labs.Add(new Entities.Lab { Name = "Default lab", CreatedAt = DateTimeOffset.UtcNow });
            await db.SaveChangesAsync(ct).ConfigureAwait(false);
        }
    }
}
