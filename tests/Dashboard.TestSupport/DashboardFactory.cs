using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.TestSupport;

/// <summary>
/// The real app over a throwaway SQLite file and data-protection keys, with optional configuration overrides;
/// in-memory (TestServer) by default, or on Kestrel at a free loopback port for browser tests.
/// </summary>
public sealed class DashboardFactory : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;

    public DashboardFactory(Dictionary<string, string?>? settings = null, bool kestrel = false)
    {
        DataDirectory = Directory.CreateTempSubdirectory("netlab-web-test-").FullName;

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
        };
        foreach (var (k, v) in settings ?? [])
        {
            _settings[k] = v;
        }

        if (kestrel)
        {
            Port = AppProcess.FreePort();
            UseKestrel(Port);
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

    protected override void ConfigureClient(HttpClient client)
    {
        base.ConfigureClient(client);
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
    }

    /// <summary>The Kestrel port (0 when running in memory).</summary>
    public int Port { get; }

    public Uri BaseUri => new($"http://127.0.0.1:{Port}/");

    public string DataDirectory { get; }

    public string DatabasePath => Path.Combine(DataDirectory, "dashboard.db");

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");

        builder.UseSetting("Data:Directory", DataDirectory);
        // Keys go to this factory's own folder, never to the real HOME.
        builder.ConfigureServices(s => s.AddDataProtection().PersistKeysToFileSystem(new DirectoryInfo(Path.Combine(DataDirectory, "keys"))));
        foreach (var (k, v) in _settings)
        {
            builder.UseSetting(k, v);
        }
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
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
