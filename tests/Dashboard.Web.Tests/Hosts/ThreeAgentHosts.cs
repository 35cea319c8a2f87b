using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Dashboard.App.Hosts;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Hosts;

/// <summary>
/// A dashboard (Kestrel on TCP and a Unix socket) with three real engines, each with a real agent process: the
/// system's Docker 20.10 (agent in the root namespace, over TCP), and Docker 26.1.5 and 28.5.2 from
/// <c>scripts/lab-engine.sh</c>, their agents started inside each engine's network and mount namespaces
/// (<c>nsenter -t PID -n -m</c>) and reaching the dashboard through its Unix socket. Registered, started, and
/// waited for until all three are connected with their engines' versions and rules.
/// </summary>
public sealed class ThreeAgentHosts : IAsyncDisposable
{
    private readonly List<AgentProcess> _agents = [];
    private readonly Dictionary<string, string> _tokens = [];

    private readonly string _data = System.IO.Directory.CreateTempSubdirectory("netlab-agents-test-").FullName;

    private ThreeAgentHosts(string socket, LabEngine e26, LabEngine e28)
    {
        Socket = socket;
        (Factory, Admin) = StartDashboard();
        Hosts = [("docker-2010", null, "20.10."), ("docker-261", e26, "26.1.5"), ("docker-285", e28, "28.5.2")];
    }

    public DashboardFactory Factory { get; private set; }

    public string Socket { get; }

    public HttpClient Admin { get; private set; }

    private (DashboardFactory, HttpClient) StartDashboard()
    {
        var factory = new DashboardFactory(kestrel: true, dataDirectory: _data, unixSocket: Socket);
        var admin = new HttpClient { BaseAddress = factory.BaseUri };
        admin.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + factory.AdminToken);
        return (factory, admin);
    }

    /// <summary>Stops the dashboard and starts it again on the same data folder and Unix socket (a new TCP port, a new admin token).</summary>
    public void RestartDashboard()
    {
        Admin.Dispose();
        Factory.Dispose();
        File.Delete(Socket);
        (Factory, Admin) = StartDashboard();
    }

    public (string Name, LabEngine? Engine, string Version)[] Hosts { get; }

    public HostDirectory Directory => Factory.Services.GetRequiredService<HostDirectory>();

    public static async Task<ThreeAgentHosts> StartAsync()
    {
        var e26 = await LabEngine.StartAsync("26.1");
        var e28 = await LabEngine.StartAsync("28.5");
        var socket = $"/run/netlab-dashboard-test-{Guid.NewGuid().ToString("N")[..8]}.sock";
        var three = new ThreeAgentHosts(socket, e26, e28);
        try
        {
            foreach (var (name, _, _) in three.Hosts)
            {
                var registered = await (await three.Admin.PostAsJsonAsync("/api/hosts", new { name })).Content.ReadFromJsonAsync<JsonElement>();
                three._tokens[name] = registered.GetProperty("token").GetString()!;
                three.StartAgent(name);
            }

            await three.AllConnectedAsync("three connected hosts with their versions");
            return three;
        }
        catch
        {
            await three.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until all three hosts are listed as connected with their engines' versions and rules.</summary>
    public Task AllConnectedAsync(string what) => Eventually.UntilAsync(async () =>
    {
        var list = await Admin.GetFromJsonAsync<JsonElement>("/api/hosts");
        return Hosts.All(h => list.EnumerateArray().Any(x => x.GetProperty("name").GetString() == h.Name && x.GetProperty("agent").GetString() == "Connected"
            && x.GetProperty("engineVersion").GetString()?.StartsWith(h.Version, StringComparison.Ordinal) == true && x.GetProperty("rules").GetInt32() > 0));
    }, () => what + ":\n" + Logs(), 90);

    /// <summary>Starts (again) the agent of <paramref name="name"/> with its token, through <paramref name="socket"/> (default: the dashboard's) with <paramref name="environment"/> added.</summary>
    public AgentProcess StartAgent(string name, string? socket = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var engine = Hosts.Single(h => h.Name == name).Engine;
        var agent = new AgentProcess(name, engine, _tokens[name], Factory.BaseUri, socket ?? Socket, environment);
        lock (_agents)
        {
            _agents.Add(agent);
        }

        return agent;
    }

    /// <summary>Kills the agent of <paramref name="name"/> (its whole process tree, at once).</summary>
    public void KillAgent(string name)
    {
        lock (_agents)
        {
            foreach (var a in _agents.Where(a => a.Name == name).ToList())
            {
                a.Dispose();
                _agents.Remove(a);
            }
        }
    }

    public string Logs()
    {
        lock (_agents)
        {
            return string.Join("\n", _agents.Select(a => $"--- agent {a.Name}:\n{a.Output}"));
        }
    }

    public ValueTask DisposeAsync()
    {
        lock (_agents)
        {
            foreach (var a in _agents)
            {
                a.Dispose();
            }

            _agents.Clear();
        }

        Admin.Dispose();
        Factory.Dispose();
        File.Delete(Socket);
        try
        {
            System.IO.Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
            // SQLite may still hold the WAL file for a moment; the folder is in /tmp.
        }

        return ValueTask.CompletedTask;
    }

    private static string AgentDll
    {
        get
        {
            var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
            return Path.Combine(TestPaths.RepoRoot, "src", "Dashboard.Agent", "bin", configuration, "net10.0", "Dashboard.Agent.dll");
        }
    }

    public sealed class AgentProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();
        private readonly string? _tokenFile;

        public AgentProcess(string name, LabEngine? engine, string token, Uri server, string socket, IReadOnlyDictionary<string, string>? environment = null)
        {
            Name = name;
            var start = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            if (engine is null)
            {
                start.FileName = "dotnet";
                start.Environment["Agent__Server"] = server.ToString();
            }
            else
            {
                // In the engine's network and mount namespaces: its iptables, its sandbox keys, its socket.
                start.FileName = "nsenter";
                foreach (var a in new[] { "-t", engine.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "-n", "-m", "--", "dotnet" })
                {
                    start.ArgumentList.Add(a);
                }

                start.Environment["Agent__Server"] = "http://localhost/";
                start.Environment["Agent__UnixSocket"] = socket;
                start.Environment["Host__DockerEndpoint"] = engine.DockerHost;
            }

            start.ArgumentList.Add(AgentDll);
            if (engine is null)
            {
                start.Environment["Agent__Token"] = token;
            }
            else
            {
                // As scripts/agent.sh --token-file passes it: a file only root reads, named in the environment.
                _tokenFile = Path.Combine(Path.GetTempPath(), $"netlab-agent-{Guid.NewGuid():N}.token");
                File.WriteAllText(_tokenFile, token + "\n");
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(_tokenFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }

                start.Environment["Agent__TokenFile"] = _tokenFile;
            }

            start.Environment["Agent__Name"] = name;
            start.Environment["Host__InstanceId"] = "agt" + name.Replace("-", "", StringComparison.Ordinal)[..Math.Min(10, name.Length - 1)];
            start.Environment["Logging__LogLevel__Default"] = "Warning";
            start.Environment["Logging__LogLevel__Dashboard"] = "Information";
            foreach (var (k, v) in environment ?? new Dictionary<string, string>())
            {
                start.Environment[k] = v;
            }

            _process = new Process { StartInfo = start };
            _process.OutputDataReceived += (_, e) => Append(e.Data);
            _process.ErrorDataReceived += (_, e) => Append(e.Data);
            _process.Start();
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public string Name { get; }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        private void Append(string? line)
        {
            lock (_output)
            {
                if (line is not null && _output.Length < 64_000)
                {
                    _output.AppendLine(line);
                }
            }
        }

        public void Dispose()
        {
            try
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
            catch (InvalidOperationException)
            {
                // already exited
            }

            _process.Dispose();
            if (_tokenFile is not null)
            {
                File.Delete(_tokenFile);
            }
        }
    }
}
