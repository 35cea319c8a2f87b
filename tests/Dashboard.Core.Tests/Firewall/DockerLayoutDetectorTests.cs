using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Firewall;

/// <summary>Every layout the detector knows, named from a dump of that layout (the kernel oracle loads the same dumps).</summary>
public class DockerLayoutDetectorTests
{
    [Theory]
    [InlineData("shared", "docker-17-seed-isolated.save", DockerLayoutKind.Docker17, "Docker 17.x")]
    [InlineData("shared", "docker-20.10-two-networks-isolated.save", DockerLayoutKind.Docker18To27, "Docker 18.05–27.x")]
    [InlineData("core", "docker-20.10-plain-internal-noicc.save", DockerLayoutKind.Docker18To27, "Docker 18.05–27.x")]
    [InlineData("core", "docker-26.1.5-two-networks-published-port.save", DockerLayoutKind.Docker18To27, "Docker 18.05–27.x")]
    [InlineData("core", "docker-28.0-two-networks-published-port.save", DockerLayoutKind.Docker28, "Docker 28.0.0 (ipset")]
    [InlineData("core", "docker-28.5.2-two-networks-published-port.save", DockerLayoutKind.Docker28, "Docker 28.2+")]
    [InlineData("core", "docker-28.0.1-two-networks-published-port.save", DockerLayoutKind.Docker28, "Docker 28.0.1–28.1")]
    [InlineData("shared", "docker-28.5-bridge1-published-port.save", DockerLayoutKind.Docker28, "Docker 28.2+")]
    [InlineData("core", "docker-29-iptables-two-networks-published-port.save", DockerLayoutKind.Docker29Iptables, "Docker 29 iptables")]
    public void EachLayoutIsNamedFromItsDump(string root, string file, DockerLayoutKind kind, string description)
    {
        var text = root == "shared"
            ? TestPaths.ReadShared(Path.Combine("iptables", file))
            : File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "iptables", file));
        var layout = DockerLayoutDetector.Detect(IptablesSaveReader.Read(text, TableFamily.Ipv4));
        Assert.Equal(kind, layout.Kind);
        Assert.StartsWith(description, layout.Description, StringComparison.Ordinal);
        Assert.NotEmpty(layout.Evidence);
    }

    [Fact]
    public void Docker29Nftables_IsNamedFromItsTable()
    {
        var json = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "nft", "docker-29-bridge1-published-port.json"));
        Assert.Equal(DockerLayoutKind.Docker29Nftables, DockerLayoutDetector.Detect(NftJsonReader.Read(json)).Kind);
    }

    [Fact]
    public void NoDockerChains_IsNone()
    {
        var rs = IptablesSaveReader.Read("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n", TableFamily.Ipv4);
        Assert.Equal(DockerLayoutKind.None, DockerLayoutDetector.Detect(rs).Kind);
    }
}
