using Dashboard.Host.Docker;
using Dashboard.Host.Processes;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Host.Tests.RealHost;

/// <summary>The lab image is built from the host's static busybox when missing (no registry), as lab-setup does.</summary>
[Trait("Category", "RealHost")]
public class LabImageTests
{
    [SkippableFact]
    public async Task MissingImage_IsImportedFromTheHostsBusybox_AndRuns()
    {
        Dashboard.TestSupport.RealHost.Require();
        Skip.IfNot(File.Exists("/bin/busybox"), "needs busybox-static (scripts/lab-setup.sh installs it)");
        using var sp = HostServices.Build();
        var provisioner = sp.GetRequiredService<LabProvisioner>();
        var image = $"netlab-test-busybox-{Guid.NewGuid():N}"[..32] + ":latest";
        var runner = new ProcessRunner();
        try
        {
            Assert.Contains("imported", await provisioner.EnsureImageAsync(CancellationToken.None, image), StringComparison.Ordinal);
            Assert.Contains("present", await provisioner.EnsureImageAsync(CancellationToken.None, image), StringComparison.Ordinal);
            var r = await runner.RunAsync("docker", ["run", "--rm", "--network", "none", image, "sh", "-c", "echo ok; ping 2>&1 | head -1"], TimeSpan.FromSeconds(60));
            Assert.True(r.Succeeded, r.Message);
            Assert.StartsWith("ok", r.StdOut, StringComparison.Ordinal);
            Assert.Contains("BusyBox", r.StdOut, StringComparison.Ordinal);
        }
        finally
        {
            await runner.RunAsync("docker", ["image", "rm", "-f", image], TimeSpan.FromSeconds(60));
        }
    }

    [SkippableFact]
    public async Task MissingImage_WithoutBusybox_SaysWhatToInstall()
    {
        Dashboard.TestSupport.RealHost.Require();
        using var sp = HostServices.Build();
        var provisioner = sp.GetRequiredService<LabProvisioner>();
        var ex = await Assert.ThrowsAsync<ProvisioningException>(() => provisioner.EnsureImageAsync(CancellationToken.None, "netlab-test-absent:latest", "/nonexistent/busybox"));
        Assert.Contains("install busybox-static", ex.Message, StringComparison.Ordinal);
    }
}
