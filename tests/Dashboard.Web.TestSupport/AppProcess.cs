using System.Diagnostics;

namespace Dashboard.TestSupport;

/// <summary>The Release build of the dashboard as its own process (for a SIGKILL, or to measure it from outside), with a throwaway HOME.</summary>
public static class AppProcess
{
    public static string ReleaseDll { get; } = Path.Combine(TestPaths.RepoRoot, "src", "Dashboard.Web", "bin", "Release", "net10.0", "Dashboard.Web.dll");

    /// <summary>The administrator's API token every started app registers (Auth:AdminToken); send it as a Bearer token.</summary>
    public static string AdminToken { get; } = "nlt_" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24));

    /// <summary>An HTTP client for a started app, signed in with <see cref="AdminToken"/>.</summary>
    public static HttpClient Client(int port)
    {
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
        return http;
    }

    /// <summary>
    /// Starts <c>dotnet Dashboard.Web.dll --urls http://127.0.0.1:PORT --Data:Directory WORK/data</c> plus <paramref name="settings"/>
    /// (pairs of --Key value), with the administrator made from configuration (<see cref="DashboardFactory.AdminUser"/>, its password and <see cref="AdminToken"/>).
    /// </summary>
    public static Process Start(int port, string work, params string[] settings)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetDirectoryName(ReleaseDll)! };
        foreach (var a in new[] { ReleaseDll, "--urls", $"http://127.0.0.1:{port}", "--Data:Directory", Path.Combine(work, "data"), "--Logging:LogLevel:Default", "Warning", "--Auth:AdminUser", DashboardFactory.AdminUser, "--Auth:AdminPassword", DashboardFactory.AdminPassword, "--Auth:AdminToken", AdminToken }.Concat(settings))
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["HOME"] = work;
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>
    /// A replica of a team installation: <see cref="Start"/> on PostgreSQL (<paramref name="connection"/>) with the
    /// replicas' shared <paramref name="instance"/> id and its own <paramref name="name"/>, the Redis backplane when
    /// <paramref name="redis"/> is given (its channels under <c>test-INSTANCE</c>), plus <paramref name="settings"/>.
    /// </summary>
    public static Process StartReplica(int port, string work, string instance, string connection, string name, string? redis = null, params string[] settings)
    {
        string[] replica = ["--Host:InstanceId", instance, "--Data:Provider", "postgres", "--Data:ConnectionString", connection, "--Replicas:Name", name];
        string[] backplane = redis is null ? [] : ["--Redis:Connection", redis, "--Redis:ChannelPrefix", "test-" + instance];
        return Start(port, work, [.. replica, .. backplane, .. settings]);
    }

    /// <summary><c>GET /api/replica</c> of a starting app: retried for up to 60 s while it does not answer yet.</summary>
    public static async Task<System.Text.Json.JsonElement> ReplicaAsync(HttpClient http)
    {
        ArgumentNullException.ThrowIfNull(http);
        for (var i = 0; i < 240; i++)
        {
            try
            {
                return await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync<System.Text.Json.JsonElement>(http, "/api/replica");
            }
            catch (HttpRequestException)
            {
                await Task.Delay(250);
            }
        }

        throw new TimeoutException("the replica did not answer /api/replica within 60 s");
    }

    /// <summary>Ends each started app still running (its whole process tree, as SIGKILL) and disposes it; nulls are skipped.</summary>
    public static async Task EndAsync(params Process?[] apps)
    {
        ArgumentNullException.ThrowIfNull(apps);
        foreach (var app in apps)
        {
            if (app is { HasExited: false })
            {
                app.Kill(entireProcessTree: true);
                await app.WaitForExitAsync();
            }

            app?.Dispose();
        }
    }

    public static int FreePort() => LoopbackPort.Free();
}
