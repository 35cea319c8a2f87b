namespace Dashboard.Data;

/// <summary>Configuration section "Data".</summary>
public sealed class DataOptions
{
    public const string Section = "Data";

    /// <summary>Folder for the SQLite database and captured pcaps. Default: ~/.local/share/netlab-dashboard.</summary>
    public string? Directory { get; set; }

    /// <summary>A full connection string overrides <see cref="Directory"/> (e.g. another SQLite file).</summary>
    public string? ConnectionString { get; set; }

    public string ResolveDirectory() =>
        string.IsNullOrWhiteSpace(Directory)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "netlab-dashboard")
            : Path.GetFullPath(Directory);

    public string ResolveConnectionString() =>
        !string.IsNullOrWhiteSpace(ConnectionString)
            ? ConnectionString
            : $"Data Source={Path.Combine(ResolveDirectory(), "dashboard.db")}";
}
