namespace Dashboard.TestSupport;

/// <summary>Where the repository and the shared fixtures are, found from the test binary's folder.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The shared fixtures folder (<c>../shared/fixtures</c> beside the repository), or LAB_SHARED_FIXTURES.</summary>
    public static string SharedFixtures
    {
        get
        {
            var fromEnv = Environment.GetEnvironmentVariable("LAB_SHARED_FIXTURES");
            var dir = !string.IsNullOrEmpty(fromEnv) ? fromEnv : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "fixtures"));
            return Directory.Exists(dir)
                ? dir
                : throw new DirectoryNotFoundException($"shared fixtures not found at {dir}: the repository expects ../shared/fixtures beside it (or set LAB_SHARED_FIXTURES)");
        }
    }

    public static string Shared(string relative) => Path.Combine(SharedFixtures, relative);

    public static string ReadShared(string relative) => File.ReadAllText(Shared(relative));

    /// <summary>A file of the Core tests' own fixtures (<c>tests/Dashboard.Core.Tests/Fixtures</c>): real dumps made here, nft JSON, pcaps, the fuzz corpus.</summary>
    public static string CoreFixture(string relative) => Path.Combine(RepoRoot, "tests", "Dashboard.Core.Tests", "Fixtures", relative);

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Dashboard.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Dashboard.sln not found above " + AppContext.BaseDirectory);
    }
}
