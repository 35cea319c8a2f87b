using System.Diagnostics;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Xunit;

namespace Dashboard.TestSupport;

/// <summary>
/// Debian's nginx (unpacked under artifacts/tools by scripts/lab-setup.sh) running <c>deploy/nginx/netlab.conf</c> as
/// shipped, except where it listens (a free loopback port) and the addresses of its upstream servers (the test's
/// replicas), in a throwaway prefix folder; stopped on dispose.
/// </summary>
public sealed partial class NginxProxy : IDisposable
{
    private readonly Process _process;
    private readonly DirectoryInfo _prefix;

    private NginxProxy(Process process, DirectoryInfo prefix, int port)
    {
        _process = process;
        _prefix = prefix;
        Port = port;
    }

    public static string Binary => Path.Combine(TestPaths.RepoRoot, "artifacts", "tools", "nginx", "usr", "sbin", "nginx");

    public static string ShippedConfiguration => Path.Combine(TestPaths.RepoRoot, "deploy", "nginx", "netlab.conf");

    /// <summary>The loopback port nginx listens on.</summary>
    public int Port { get; }

    public Uri BaseUri => new($"http://127.0.0.1:{Port}/");

    /// <summary>Call first in a [SkippableFact] that needs nginx.</summary>
    public static void Require()
    {
        if (File.Exists(Binary))
        {
            return;
        }

        const string how = "run scripts/lab-setup.sh (it unpacks Debian's nginx under artifacts/tools)";
        if (RealHost.Required)
        {
            throw new InvalidOperationException($"LAB_REQUIRE_DOCKER=1 but {Binary} is missing: {how}");
        }

        throw new SkipException("needs nginx: " + how);
    }

    /// <summary>A main configuration in <paramref name="prefix"/> (pid, logs and temporary folders there) whose http block includes <paramref name="include"/>.</summary>
    public static string WriteMainConfiguration(string prefix, string include)
    {
        var main = Path.Combine(prefix, "nginx.conf");
        File.WriteAllText(main, $$"""
            pid {{prefix}}/nginx.pid;
            error_log {{prefix}}/error.log;
            events {}
            http {
                access_log off;
                client_body_temp_path {{prefix}}/body;
                proxy_temp_path {{prefix}}/proxy;
                fastcgi_temp_path {{prefix}}/fastcgi;
                uwsgi_temp_path {{prefix}}/uwsgi;
                scgi_temp_path {{prefix}}/scgi;
                include {{include}};
            }
            """);
        return main;
    }

    /// <summary>
    /// The shipped configuration with its upstream servers pointed at <paramref name="upstreamPorts"/> (in the order
    /// the file names them) and its listener on a free loopback port; returns once nginx accepts connections.
    /// </summary>
    public static async Task<NginxProxy> StartAsync(params int[] upstreamPorts)
    {
        ArgumentNullException.ThrowIfNull(upstreamPorts);
        Require();
        var shipped = await File.ReadAllTextAsync(ShippedConfiguration);
        var servers = Server().Matches(shipped);
        if (servers.Count != upstreamPorts.Length)
        {
            throw new InvalidOperationException($"{ShippedConfiguration} names {servers.Count} upstream servers, the test {upstreamPorts.Length}");
        }

        var i = 0;
        var conf = Server().Replace(shipped, _ => $"server 127.0.0.1:{upstreamPorts[i++]}");
        var port = LoopbackPort.Free();
        if (!Listen().IsMatch(conf))
        {
            throw new InvalidOperationException($"{ShippedConfiguration} has no 'listen PORT;' line");
        }

        conf = Listen().Replace(conf, $"listen 127.0.0.1:{port};");

        // Its workers run as nobody: they must reach the temporary folders nginx makes (and owns for them) in here.
        var prefix = Directory.CreateTempSubdirectory("netlab-nginx-");
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("nginx runs on the Linux lab host only");
        }

        File.SetUnixFileMode(prefix.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        var site = Path.Combine(prefix.FullName, "netlab.conf");
        await File.WriteAllTextAsync(site, conf);
        var main = WriteMainConfiguration(prefix.FullName, site);
        var psi = new ProcessStartInfo(Binary) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-p", prefix.FullName, "-c", main, "-e", Path.Combine(prefix.FullName, "error.log"), "-g", "daemon off;" })
        {
            psi.ArgumentList.Add(a);
        }

        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var proxy = new NginxProxy(process, prefix, port);
        for (var attempt = 0; attempt < 100; attempt++)
        {
            if (process.HasExited)
            {
                var log = Path.Combine(prefix.FullName, "error.log");
                var why = File.Exists(log) ? await File.ReadAllTextAsync(log) : $"exit {process.ExitCode}";
                proxy.Dispose();
                throw new InvalidOperationException("nginx did not start: " + why);
            }

            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(System.Net.IPAddress.Loopback, port);
                return proxy;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }

        proxy.Dispose();
        throw new InvalidOperationException($"nginx did not listen on 127.0.0.1:{port} within 10 s");
    }

    /// <summary>The stickiness cookie nginx sets (deploy/nginx/netlab.conf).</summary>
    public const string StickyCookie = "netlab_lb";

    /// <summary>
    /// A <see cref="StickyCookie"/> value that nginx places on <paramref name="replica"/>: tried through nginx itself
    /// with <paramref name="front"/> (an administrator's client for <see cref="BaseUri"/>), asking <c>/api/replica</c>.
    /// </summary>
    public static async Task<string> StickyCookieForAsync(HttpClient front, string replica)
    {
        ArgumentNullException.ThrowIfNull(front);
        for (var i = 0; i < 64; i++)
        {
            var value = $"test-{i}";
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/replica");
            request.Headers.Add("Cookie", $"{StickyCookie}={value}");
            using var response = await front.SendAsync(request);
            response.EnsureSuccessStatusCode();
            using var answer = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            if (answer.RootElement.GetProperty("replica").GetString() == replica)
            {
                return value;
            }
        }

        throw new InvalidOperationException($"no {StickyCookie} value among 64 reached {replica}: nginx does not place requests by the cookie");
    }

    /// <summary>nginx's error log so far (upstream failures are logged there).</summary>
    public string ErrorLog()
    {
        var log = Path.Combine(_prefix.FullName, "error.log");
        return File.Exists(log) ? File.ReadAllText(log) : "";
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }

        _process.Dispose();
        try
        {
            _prefix.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }


    [GeneratedRegex(@"server 127\.0\.0\.1:\d+")]
    private static partial Regex Server();

    [GeneratedRegex(@"listen \d+;")]
    private static partial Regex Listen();
}
