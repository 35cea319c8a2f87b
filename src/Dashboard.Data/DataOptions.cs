namespace Dashboard.Data;

/// <summary>Configuration section "Data".</summary>
public sealed class DataOptions
{
    public const string Section = "Data";

    /// <summary>The embedded default: one SQLite file in <see cref="Directory"/>.</summary>
    public const string Sqlite = "sqlite";

    /// <summary>A PostgreSQL server shared by a team's replicas (<see cref="ConnectionString"/> required).</summary>
    public const string Postgres = "postgres";

    /// <summary><c>sqlite</c> (default) or <c>postgres</c>.</summary>
    public string Provider { get; set; } = Sqlite;

    /// <summary>Folder for the SQLite database, captured pcaps and data-protection keys. Default: ~/.local/share/netlab-dashboard.</summary>
    public string? Directory { get; set; }

    /// <summary>
    /// SQLite: a full connection string overrides <see cref="Directory"/> (e.g. another file). PostgreSQL: required, an
    /// Npgsql connection string (<c>Host=...;Database=...;Username=...;Password=...</c>).
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>The provider, checked: a clear message naming the setting when it is neither.</summary>
    public string ResolveProvider()
    {
        var p = (Provider ?? Sqlite).Trim().ToLowerInvariant();
        return p switch
        {
            Sqlite or "" => Sqlite,
            Postgres or "postgresql" or "npgsql" => Postgres,
            _ => throw new InvalidOperationException($"Data:Provider is '{Provider}': it must be '{Sqlite}' or '{Postgres}'"),
        };
    }

    public string ResolveDirectory() =>
        string.IsNullOrWhiteSpace(Directory)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "netlab-dashboard")
            : Path.GetFullPath(Directory);

    public string ResolveConnectionString() =>
        !string.IsNullOrWhiteSpace(ConnectionString)
            ? ConnectionString
            : ResolveProvider() == Postgres
                ? throw new InvalidOperationException("Data:ConnectionString is required with Data:Provider=postgres (Host=...;Database=...;Username=...)")
                : $"Data Source={Path.Combine(ResolveDirectory(), "dashboard.db")}";
}
