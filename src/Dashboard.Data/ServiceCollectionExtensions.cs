using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Data;

public static class ServiceCollectionExtensions
{
    /// <summary>SQLite's migrations (the default provider).</summary>
    public const string MigrationsAssembly = "Dashboard.Migrations";

    /// <summary>PostgreSQL's migrations: the same model, its own schema history.</summary>
    public const string PostgresMigrationsAssembly = "Dashboard.Migrations.Postgres";

    /// <summary>
    /// Registers a <see cref="DashboardDbContext"/> factory over the configured provider (<c>Data:Provider</c>: SQLite by
    /// default, or PostgreSQL), with migrations from that provider's own assembly.
    /// </summary>
    public static IServiceCollection AddDashboardData(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(DataOptions.Section).Get<DataOptions>() ?? new DataOptions();
        var provider = options.ResolveProvider();
        var connection = options.ResolveConnectionString();
        services.AddOptions<DataOptions>().Bind(configuration.GetSection(DataOptions.Section));
        services.AddSingleton(options);
        if (string.IsNullOrWhiteSpace(options.ConnectionString) || provider == DataOptions.Postgres)
        {
            // The folder holds the SQLite file with password and token hashes, pcaps and data-protection keys: the
            // dashboard's user only.
            var folder = System.IO.Directory.CreateDirectory(options.ResolveDirectory());
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(folder.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }

        services.AddDbContextFactory<DashboardDbContext>(o => Use(o, provider, connection));
        return services;
    }

    /// <summary>Points <paramref name="builder"/> at a database of <paramref name="provider"/> with that provider's migrations.</summary>
    public static DbContextOptionsBuilder Use(DbContextOptionsBuilder builder, string provider, string connectionString)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return provider == DataOptions.Postgres
            ? builder.UseNpgsql(connectionString, b => b.MigrationsAssembly(PostgresMigrationsAssembly))
            : builder.UseSqlite(connectionString, b => b.MigrationsAssembly(MigrationsAssembly));
    }

    /// <summary>As <see cref="Use(DbContextOptionsBuilder, string, string)"/>, over a connection the caller owns (shared by several contexts).</summary>
    public static DbContextOptionsBuilder Use(DbContextOptionsBuilder builder, string provider, System.Data.Common.DbConnection connection)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return provider == DataOptions.Postgres
            ? builder.UseNpgsql(connection, b => b.MigrationsAssembly(PostgresMigrationsAssembly))
            : builder.UseSqlite(connection, b => b.MigrationsAssembly(MigrationsAssembly));
    }

    /// <summary>Options for a context of its own (tools, the move, tests): <paramref name="provider"/> over a connection string.</summary>
    public static DbContextOptions<DashboardDbContext> ContextOptions(string provider, string connectionString) =>
        (DbContextOptions<DashboardDbContext>)Use(new DbContextOptionsBuilder<DashboardDbContext>(), provider, connectionString).Options;

    /// <summary>Options for contexts over a connection the caller owns (shared by several contexts, one transaction).</summary>
    public static DbContextOptions<DashboardDbContext> ContextOptions(string provider, System.Data.Common.DbConnection connection) =>
        (DbContextOptions<DashboardDbContext>)Use(new DbContextOptionsBuilder<DashboardDbContext>(), provider, connection).Options;

    /// <summary>Applies pending migrations (SQLite: then turns on WAL), and makes sure a first lab exists.</summary>
    public static async Task MigrateDashboardDatabaseAsync(this IServiceProvider services, CancellationToken ct = default)
    {
        var factory = services.GetRequiredService<IDbContextFactory<DashboardDbContext>>();
        await using var db = await factory.CreateDbContextAsync(ct).ConfigureAwait(false);
        await db.Database.MigrateAsync(ct).ConfigureAwait(false);
        if (db.Database.IsSqlite())
        {
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", ct).ConfigureAwait(false);
            if (!OperatingSystem.IsWindows() && db.Database.GetDbConnection().DataSource is { Length: > 0 } file && File.Exists(file))
            {
                foreach (var f in new[] { file, file + "-wal", file + "-shm" }.Where(File.Exists))
                {
                    File.SetUnixFileMode(f, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }
            }
        }

        if (!await db.Labs.AnyAsync(ct).ConfigureAwait(false))
        {
            db.Labs.Add(new Entities.Lab { Name = "Default lab", CreatedAt = DateTimeOffset.UtcNow });
            try
            {
                await db.SaveChangesAsync(ct).ConfigureAwait(false);
            }
            catch (DbUpdateException)
            {
                // Another replica starting on the same database made it first (the name is unique); anything else is a fault.
                await using var again = await factory.CreateDbContextAsync(ct).ConfigureAwait(false);
                if (!await again.Labs.AnyAsync(ct).ConfigureAwait(false))
                {
                    throw;
                }
            }
        }
    }
}
