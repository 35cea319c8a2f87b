using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.E2E.Tests;

/// <summary>The real app on Kestrel at a free loopback port, over a throwaway data folder, with the collector on.</summary>
public sealed class KestrelDashboard : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;

    public KestrelDashboard(Dictionary<string, string?>? settings = null)
    {
        DataDirectory = Directory.CreateTempSubdirectory("netlab-e2e-").FullName;
        _settings = settings ?? [];
        Port = FreePort();
        UseKestrel(Port);
        StartServer();
    }

    public int Port { get; }

    public string DataDirectory { get; }

    public Uri BaseUri => new($"http://127.0.0.1:{Port}/");

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("Data:Directory", DataDirectory);
        builder.ConfigureServices(s => s.AddDataProtection().PersistKeysToFileSystem(new DirectoryInfo(Path.Combine(DataDirectory, "keys"))));
        foreach (var (k, v) in _settings)
        {
            builder.UseSetting(k, v);
        }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
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
            }
        }
    }
}
