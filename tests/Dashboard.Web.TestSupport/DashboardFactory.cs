using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.Web.Identity;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.TestSupport;

/// <summary>
/// The real app over a throwaway database (a SQLite file, or with <c>NETLAB_TEST_PROVIDER=postgres</c> or
/// <c>provider: "postgres"</c> a PostgreSQL database of its own on <see cref="PostgresServer"/>) and data-protection
/// keys, with optional configuration overrides; in-memory (TestServer) by default, or on Kestrel at a free loopback port
/// for browser tests.
/// </summary>
public sealed class DashboardFactory : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;

    private readonly bool _keepData;

    /// <param name="settings">Configuration overrides (Key:Sub → value).</param>
    /// <param name="kestrel">Listen on a real loopback port (for browsers).</param>
    /// <param name="dataDirectory">An existing data folder to start on (a restart); it is then kept on dispose.</param>
    /// <param name="unixSocket">With <paramref name="kestrel"/>: also listen on this Unix socket (agents in other network namespaces).</param>
    /// <param name="provider"><c>sqlite</c> or <c>postgres</c>; by default <c>NETLAB_TEST_PROVIDER</c>, else SQLite.</param>
    public DashboardFactory(Dictionary<string, string?>? settings = null, bool kestrel = false, string? dataDirectory = null, string? unixSocket = null, string? provider = null)
    {
        _keepData = dataDirectory is not null;
        DataDirectory = dataDirectory ?? Directory.CreateTempSubdirectory("netlab-web-test-").FullName;
        Provider = provider ?? (Environment.GetEnvironmentVariable("NETLAB_TEST_PROVIDER") is { Length: > 0 } p ? p : DataOptions.Sqlite);
        if (Provider == DataOptions.Postgres && settings?.ContainsKey("Data:ConnectionString") != true)
        {
            // One database per data folder: a restart on the same folder finds its data again.
            PostgresConnection = PostgresServer.CreateDatabaseAsync("netlab_t_" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(DataDirectory)))[..16], ifMissing: true).GetAwaiter().GetResult();
            if (_keepData)
            {
                PostgresServer.DropAtExit(PostgresConnection);
            }
        }

        // The collector reads the real host several times a second: only tests that need it turn it on.
        // Its own instance id: a factory starting up removes only its own leftover trace rules, never another test app's.
        // Signed in as the administrator made from configuration (an unattended install), with its configured API token.
        AdminToken = "nlt_" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24));
        _settings = new Dictionary<string, string?>
        {
            ["Collector:Enabled"] = "false",
            ["Host:InstanceId"] = "t" + Guid.NewGuid().ToString("N")[..8],
            ["Auth:AdminUser"] = AdminUser,
            ["Auth:AdminPassword"] = AdminPassword,
            ["Auth:AdminToken"] = AdminToken,
            ["Data:Provider"] = Provider,
        };
        if (PostgresConnection is not null)
        {
            _settings["Data:ConnectionString"] = PostgresConnection;
        }

        foreach (var (k, v) in settings ?? [])
        {
            _settings[k] = v;
        }

        if (kestrel)
        {
            Port = AppProcess.FreePort();
            if (unixSocket is null)
            {
                UseKestrel(Port);
            }
            else
            {
                UseKestrel(o =>
                {
                    o.Listen(System.Net.IPAddress.Loopback, Port);
                    o.ListenUnixSocket(unixSocket);
                });
            }

            StartServer();
        }
    }

    public const string AdminUser = "admin";

    public const string AdminPassword = "lab-admin-pass-1";

    /// <summary>The administrator's API token; <see cref="WebApplicationFactory{TEntryPoint}.CreateClient()"/> sends it on every request.</summary>
    public string AdminToken { get; }

    /// <summary>A client without any credentials (for sign-in tests).</summary>
    public HttpClient CreateAnonymousClient()
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = null;
        return client;
    }

    /// <summary>A client for a token of another user.</summary>
    public HttpClient CreateClient(string token)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>
    /// A local account (password <see cref="AdminPassword"/> unless given), a member of <paramref name="lab"/> with
    /// <paramref name="role"/> (none: not a member), with an API token of its own.
    /// </summary>
    public async Task<TestUser> CreateUserAsync(string name, int lab = 1, LabRole? role = LabRole.Viewer, string password = AdminPassword)
    {
        await using var scope = Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<DashboardUser>>();
        var user = new DashboardUser { UserName = name, CreatedAt = DateTimeOffset.UtcNow };
        var result = await users.CreateAsync(user, password);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException(string.Join(" ", result.Errors.Select(e => e.Description)));
        }

        if (role is { } r)
        {
            var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
            db.LabMembers.Add(new LabMember { LabId = lab, UserId = user.Id, Role = r, AddedAt = DateTimeOffset.UtcNow });
            await db.SaveChangesAsync();
        }

        var actor = new Actor(user.Id, name, false);
        var token = await Services.GetRequiredService<ApiTokenService>().CreateAsync(actor, "tests", null);
        return new TestUser(user.Id, name, password, token.Token, actor);
    }

    /// <summary>The administrator made from configuration, as an actor for calling services directly.</summary>
    public async Task<Actor> AdminAsync()
    {
        await using var scope = Services.CreateAsyncScope();
        var user = await scope.ServiceProvider.GetRequiredService<UserManager<DashboardUser>>().FindByNameAsync(AdminUser);
        return new Actor(user!.Id, AdminUser, true);
    }

    protected override void ConfigureClient(HttpClient client)
    {
        base.ConfigureClient(client);
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
    }

    /// <summary>The Kestrel port (0 when running in memory).</summary>
    public int Port { get; }

    public Uri BaseUri => new($"http://127.0.0.1:{Port}/");

    public string DataDirectory { get; }

    /// <summary>The database provider this app runs on: <c>sqlite</c> or <c>postgres</c>.</summary>
    public string Provider { get; }

    /// <summary>With PostgreSQL: this app's own database (dropped on dispose unless the data folder is kept).</summary>
    public string? PostgresConnection { get; }

    public string DatabasePath => Path.Combine(DataDirectory, "dashboard.db");

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");

        // Found without the test-assembly attribute Mvc.Testing writes, so the benchmarks can start the app too.
        builder.UseContentRoot(Path.Combine(TestPaths.RepoRoot, "src", "Dashboard.Web"));

        builder.UseSetting("Data:Directory", DataDirectory);

        // Keys go to this factory's own folder, never to the real HOME (with PostgreSQL: to this app's own database).
        if (Provider != DataOptions.Postgres)
        {
            builder.ConfigureServices(s => s.AddDataProtection().PersistKeysToFileSystem(new DirectoryInfo(Path.Combine(DataDirectory, "keys"))));
        }
        foreach (var (k, v) in _settings)
        {
            builder.UseSetting(k, v);
        }
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing && !_keepData)
        {
            if (PostgresConnection is not null)
            {
                PostgresServer.DropDatabaseAsync(PostgresConnection).GetAwaiter().GetResult();
            }

            try
            {
                Directory.Delete(DataDirectory, recursive: true);
            }
            catch (IOException)
            {
                // SQLite may still hold the WAL file for a moment; the folder is in /tmp.
            }
        }
    }
}

/// <summary>A test account: its id, name, password, API token, and the actor services see.</summary>
public sealed record TestUser(string Id, string Name, string Password, string Token, Actor Actor);
