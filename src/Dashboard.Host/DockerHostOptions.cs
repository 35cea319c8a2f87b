namespace Dashboard.Host;

/// <summary>Configuration section "Host": where the engine is and which programs read the firewall.</summary>
public sealed class DockerHostOptions
{
    public const string Section = "Host";

    /// <summary>A name for this Docker host (SignalR groups, run records). Defaults to the machine name.</summary>
    public string Name { get; set; } = Environment.MachineName;

    public string DockerEndpoint { get; set; } = "unix:///var/run/docker.sock";

    /// <summary>Engine API version to pin; 1.41 is what Debian's Docker 20.10 speaks, and newer engines still accept it.</summary>
    public string DockerApiVersion { get; set; } = "1.41";

    public string IptablesSave { get; set; } = "iptables-save";
    public string Ip6tablesSave { get; set; } = "ip6tables-save";
    public string Iptables { get; set; } = "iptables";
    public string Ip6tables { get; set; } = "ip6tables";
    public string IptablesRestore { get; set; } = "iptables-restore";
    public string Ip6tablesRestore { get; set; } = "ip6tables-restore";
    public string Nft { get; set; } = "nft";
    public string Ip { get; set; } = "ip";
    public string Nsenter { get; set; } = "nsenter";
    public string XtablesMonitor { get; set; } = "xtables-monitor";

    /// <summary>
    /// Tells this dashboard's own host rules from another instance's on the same host (trace rules are tagged
    /// <c>netlab:trace-&lt;instance&gt;-&lt;id&gt;</c>, and only this instance's leftovers are removed at start-up).
    /// 1-16 lowercase letters and digits.
    /// </summary>
    public string InstanceId { get; set; } = "main";

    /// <summary>Seconds iptables waits for the xtables lock when writing (<c>-w</c>).</summary>
    public int XtablesLockWaitSeconds { get; set; } = 5;

    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Interfaces that may be captured beyond Docker's bridges and their containers' host veths (a site setting; empty by
    /// default). <c>lo</c> and the host's NICs carry the dashboard's own sessions and the host's traffic: never list them
    /// lightly. Each capture is audited either way.
    /// </summary>
    public string[] CaptureExtraInterfaces { get; set; } = [];

    /// <summary>Where running and recent captures keep their pcaps (the web app puts it under its data folder). Null: a temporary folder.</summary>
    public string? CaptureDirectory { get; set; }

    /// <summary>
    /// The kernel ring each capture gets (tcpdump's <c>-B</c>, in KiB; libpcap's own default is 2 MiB). A burst the reader
    /// cannot take at once waits there instead of being dropped by the kernel (drops are counted either way).
    /// </summary>
    public int CaptureBufferKiB { get; set; } = 2048;

    /// <summary>How long an ended capture (and its pcap) stays listed before it is purged; runs keep their own copies.</summary>
    public TimeSpan CaptureRetention { get; set; } = TimeSpan.FromHours(1);
}
