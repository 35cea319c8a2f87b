using Dashboard.Host.Processes;
using Xunit;

namespace Dashboard.TestSupport;

/// <summary>
/// Gate for tests that need the real Docker engine, iptables and root. Where they are absent such tests skip with the
/// reason, unless LAB_REQUIRE_DOCKER=1 (CI), where absence is a failure.
/// </summary>
public static class RealHost
{
    private static readonly Lazy<string?> Missing = new(FindMissing);

    public static bool Required => Environment.GetEnvironmentVariable("LAB_REQUIRE_DOCKER") == "1";

    /// <summary>Whether the lab host is ready (for fixtures that prepare what only real-host tests use).</summary>
    public static bool Available => Missing.Value is null;

    /// <summary>Call first in a [SkippableFact] that needs the engine.</summary>
    public static void Require()
    {
        if (Missing.Value is not { } why)
        {
            return;
        }

        if (Required)
        {
            throw new InvalidOperationException($"LAB_REQUIRE_DOCKER=1 but the lab host is not ready: {why}. Run scripts/lab-setup.sh as root.");
        }

        throw new SkipException($"needs the lab host: {why} (run scripts/lab-setup.sh as root; LAB_REQUIRE_DOCKER=1 turns this skip into a failure)");
    }

    private static string? FindMissing()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "not Linux";
        }

        if (Environment.UserName != "root" && Environment.GetEnvironmentVariable("USER") != "root")
        {
            return "not root (iptables and nsenter need it)";
        }

        var runner = new ProcessRunner();
        try
        {
            var docker = runner.RunAsync("docker", ["version", "--format", "{{.Server.Version}}"], TimeSpan.FromSeconds(15)).GetAwaiter().GetResult();
            if (!docker.Succeeded)
            {
                return $"the Docker engine does not answer ({docker.Message})";
            }

            var image = runner.RunAsync("docker", ["image", "inspect", "busybox:latest"], TimeSpan.FromSeconds(15)).GetAwaiter().GetResult();
            if (!image.Succeeded)
            {
                return "image busybox:latest is missing";
            }

            var ipt = runner.RunAsync("iptables-save", ["-t", "filter"], TimeSpan.FromSeconds(15)).GetAwaiter().GetResult();
            return ipt.Succeeded ? null : $"iptables-save fails ({ipt.Message})";
        }
        catch (ProcessFailedException ex)
        {
            return ex.Message;
        }
    }
}
