using Dashboard.Core.Changes;
using Dashboard.Core.Topology;
using Dashboard.Host;
using Dashboard.Host.Capture;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;

namespace Dashboard.App.Runs;

/// <summary>
/// The Docker host a run acts on: the dashboard's own (<see cref="LocalRunHost"/>, the Host layer in this process) or
/// an agent's (the same Host layer in the agent, reached by commands with deadlines). Each call creates, reads or
/// removes one thing; the run's steps and records stay in <see cref="RunExecution"/>.
/// </summary>
public interface IRunHost
{
    /// <summary>The host's name as runs record it.</summary>
    string Name { get; }

    Task<string> EnsureImageAsync(CancellationToken ct);

    Task<ProvisionedNetwork> CreateNetworkAsync(string runKey, string name, bool isInternal, bool icc, CancellationToken ct);

    Task<ProvisionedContainer> RunContainerAsync(string runKey, string name, string network, CancellationToken ct);

    /// <summary>The engine's version and firewall backend, read now.</summary>
    Task<EngineInfo> ReadEngineAsync(CancellationToken ct);

    /// <summary>A fresh read of the rules, with the tools' text (kept with the run).</summary>
    Task<FirewallSnapshot> ReadFirewallAsync(FirewallBackend backend, CancellationToken ct);

    Task<RuleCommandResult> InsertRuleAsync(RuleSpec spec, CancellationToken ct);

    /// <summary>Removes every rule carrying exactly <paramref name="tag"/> (a run's own).</summary>
    Task<IReadOnlyList<RuleCommandResult>> DeleteTaggedAsync(string tag, CancellationToken ct);

    /// <summary>Starts a capture on <paramref name="bridge"/> for the run; bounded in time and size.</summary>
    Task<IRunCapture> StartCaptureAsync(string bridge, SessionOwner owner, CancellationToken ct);

    /// <summary>Why this host cannot trace now, or null when it can.</summary>
    Task<string?> TraceUnavailableReasonAsync(CancellationToken ct);

    Task<IRunTrace> StartTraceAsync(TraceRequest request, CancellationToken ct);

    Task<ProbeResult> PingAsync(string container, string address, int count, int timeoutSeconds, CancellationToken ct);

    Task<ProbeResult> TcpAsync(string container, string target, string address, int port, int count, int timeoutSeconds, CancellationToken ct);

    /// <summary>Removes the containers and networks labelled with the run; says what it removed.</summary>
    Task<IReadOnlyList<string>> RemoveAsync(string runKey, CancellationToken ct);
}

/// <summary>A run's capture on one bridge, wherever it runs.</summary>
public interface IRunCapture
{
    string Interface { get; }

    /// <summary>Stops it and writes its pcap to <paramref name="pcapPath"/>; returns the kernel's drop count when tcpdump said it.</summary>
    Task<long?> StopAsync(string pcapPath);
}

/// <summary>A run's trace of one flow, wherever it runs.</summary>
public interface IRunTrace
{
    TraceRequest Request { get; }

    /// <summary>The comment on its TRACE rules.</summary>
    string Tag { get; }

    /// <summary>Stops it (its rules removed) and gives the packets it traced.</summary>
    Task<IReadOnlyList<Dashboard.Core.Firewall.TracedPacket>> StopAsync();
}

/// <summary>The dashboard's own host: the Host layer's services in this process.</summary>
public sealed class LocalRunHost(
    string name,
    LabProvisioner provisioner,
    HostFirewallReader firewall,
    DockerTopologyReader topology,
    IptablesRuleWriter writer,
    CaptureService captures,
    TraceService traces,
    ContainerProbe probe) : IRunHost
{
    public string Name => name;

    public Task<string> EnsureImageAsync(CancellationToken ct) => provisioner.EnsureImageAsync(ct);

    public Task<ProvisionedNetwork> CreateNetworkAsync(string runKey, string name, bool isInternal, bool icc, CancellationToken ct) =>
        provisioner.CreateNetworkAsync(runKey, name, isInternal, icc, ct);

    public Task<ProvisionedContainer> RunContainerAsync(string runKey, string name, string network, CancellationToken ct) =>
        provisioner.RunContainerAsync(runKey, name, network, ct);

    public async Task<EngineInfo> ReadEngineAsync(CancellationToken ct) => (await topology.ReadAsync(ct)).Engine;

    public Task<FirewallSnapshot> ReadFirewallAsync(FirewallBackend backend, CancellationToken ct) => firewall.ReadAsync(backend, ct);

    public Task<RuleCommandResult> InsertRuleAsync(RuleSpec spec, CancellationToken ct) => writer.InsertAsync(spec, ct);

    public Task<IReadOnlyList<RuleCommandResult>> DeleteTaggedAsync(string tag, CancellationToken ct) => writer.DeleteTaggedAsync(tag, ct);

    public async Task<IRunCapture> StartCaptureAsync(string bridge, SessionOwner owner, CancellationToken ct) =>
        new LocalCapture(await captures.StartAsync(new CaptureRequest(bridge, TimeLimit: TimeSpan.FromMinutes(5), ByteLimit: 256L * 1024 * 1024, Owner: owner), ct));

    public Task<string?> TraceUnavailableReasonAsync(CancellationToken ct) => traces.UnavailableReasonAsync(ct);

    public async Task<IRunTrace> StartTraceAsync(TraceRequest request, CancellationToken ct) => new LocalTrace(traces, await traces.StartAsync(request, ct));

    public Task<ProbeResult> PingAsync(string container, string address, int count, int timeoutSeconds, CancellationToken ct) =>
        probe.PingAsync(container, address, count, timeoutSeconds, ct);

    public Task<ProbeResult> TcpAsync(string container, string target, string address, int port, int count, int timeoutSeconds, CancellationToken ct) =>
        probe.TcpAsync(container, target, address, port, count, timeoutSeconds, ct);

    public Task<IReadOnlyList<string>> RemoveAsync(string runKey, CancellationToken ct) => provisioner.RemoveAsync(runKey, null, ct);

    private sealed class LocalTrace(TraceService traces, TraceSession session) : IRunTrace
    {
        public TraceRequest Request => session.Request;

        public string Tag => session.Tag;

        public async Task<IReadOnlyList<Dashboard.Core.Firewall.TracedPacket>> StopAsync()
        {
            await traces.StopAsync(session);
            return session.Packets;
        }
    }

    private sealed class LocalCapture(CaptureSession session) : IRunCapture
    {
        public string Interface => session.Request.Interface;

        public async Task<long?> StopAsync(string pcapPath)
        {
            await session.StopAsync();
            File.Copy(session.PcapPath, pcapPath, overwrite: true);
            return session.Stats.DroppedByKernel;
        }
    }
}
