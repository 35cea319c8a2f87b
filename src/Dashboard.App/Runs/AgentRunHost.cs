using Dashboard.App.Hosts;
using Dashboard.Core.Changes;
using Dashboard.Core.Topology;
using System.Net;
using Dashboard.Host;
using Dashboard.Host.Agents;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;

namespace Dashboard.App.Runs;

/// <summary>
/// A host reached through its agent: each of a run's steps is one <see cref="AgentProtocol.Step"/> command with a
/// deadline. The agent's rules text is parsed here with the dashboard's own readers; a capture's pcap comes back when
/// it stops, and a trace's packets when it stops.
/// </summary>
public sealed partial class AgentRunHost(string host, string run, IAgentCommands commands) : IRunHost
{
    public string Name => host;

    /// <summary>The run key steps carry (32 hex digits).</summary>
    public string RunKey => run;

    public async Task<string> EnsureImageAsync(CancellationToken ct) =>
        (await StepAsync(new AgentStep(AgentStepAction.EnsureImage, run), TimeSpan.FromMinutes(2), ct)).Text ?? "";

    public async Task<ProvisionedNetwork> CreateNetworkAsync(string runKey, string name, bool isInternal, bool icc, CancellationToken ct)
    {
        var n = (await StepAsync(new AgentStep(AgentStepAction.CreateNetwork, runKey, Name: name, Internal: isInternal, Icc: icc), TimeSpan.FromMinutes(1), ct)).Network
            ?? throw new ProvisioningException($"host '{host}' created no network {name}");

        // What the agent says goes into file names, rules and the record: the run's own name, a bridge's name, a lab /24.
        return n.Name == name && InterfaceName().IsMatch(n.Bridge ?? "") && n.Bridge is not ("." or "..") && IPNetwork.TryParse(n.Subnet, out var subnet) && subnet.PrefixLength == 24 && LabSubnetAllocator.IsInsideLabRange(subnet)
            && IPAddress.TryParse(n.Gateway, out var gateway) && subnet.Contains(gateway)
            ? n : throw new ProvisioningException($"host '{host}' answered network {name} with what a network is not (name {Cut(n.Name)}, bridge {Cut(n.Bridge)}, subnet {Cut(n.Subnet)}, gateway {Cut(n.Gateway)})");
    }

    public async Task<ProvisionedContainer> RunContainerAsync(string runKey, string name, string network, CancellationToken ct)
    {
        var c = (await StepAsync(new AgentStep(AgentStepAction.RunContainer, runKey, Name: name, Network: network), TimeSpan.FromMinutes(1), ct)).Container
            ?? throw new ProvisioningException($"host '{host}' started no container {name}");
        return c.Name == name && c.Network == network && IPAddress.TryParse(c.Address, out var a) && LabSubnetAllocator.IsInsideLabRange(new IPNetwork(a, 32)) && a.ToString() == c.Address
            ? c : throw new ProvisioningException($"host '{host}' answered container {name} with what a container is not (name {Cut(c.Name)}, address {Cut(c.Address)})");
    }

    /// <summary>A kernel interface name (the bridge becomes a file name and a capture's interface).</summary>
    [System.Text.RegularExpressions.GeneratedRegex("^[A-Za-z0-9_.-]{1,15}$", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex InterfaceName();

    private static string Cut(string? s) => AgentMessageCheck.Cut(s);

    public async Task<EngineInfo> ReadEngineAsync(CancellationToken ct) =>
        (await StepAsync(new AgentStep(AgentStepAction.ReadEngine, run), TimeSpan.FromSeconds(30), ct)).Engine
        ?? throw new ProvisioningException($"host '{host}' did not say its engine");

    public async Task<FirewallSnapshot> ReadFirewallAsync(FirewallBackend backend, CancellationToken ct)
    {
        var f = (await StepAsync(new AgentStep(AgentStepAction.ReadFirewall, run, Backend: backend), TimeSpan.FromSeconds(30), ct)).Firewall
            ?? throw new ProvisioningException($"host '{host}' sent no rules");
        if (f.Text.Length > AgentProtocol.MaxMessageBytes)
        {
            throw new ProvisioningException($"host '{host}' sent rules larger than {AgentProtocol.MaxMessageBytes} bytes");
        }

        return new FirewallSnapshot(f.Parse(), f.ReadAt, TimeSpan.Zero, [$"{f.Format} read by the agent of host '{host}'"], []) { RawText = f.Text, RawIpv6Text = f.Ipv6Text };
    }

    public async Task<RuleCommandResult> InsertRuleAsync(RuleSpec spec, CancellationToken ct) =>
        (await StepAsync(new AgentStep(AgentStepAction.InsertRule, run, Rule: spec), TimeSpan.FromSeconds(30), ct)).Rule
        ?? throw new ProvisioningException($"host '{host}' did not say what the insert did");

    public async Task<IReadOnlyList<RuleCommandResult>> DeleteTaggedAsync(string tag, CancellationToken ct) =>
        (await StepAsync(new AgentStep(AgentStepAction.DeleteTagged, run, Tag: tag), TimeSpan.FromSeconds(60), ct)).Rules ?? [];

    public async Task<IRunCapture> StartCaptureAsync(string bridge, SessionOwner owner, CancellationToken ct)
    {
        var id = (await StepAsync(new AgentStep(AgentStepAction.StartCapture, run, Interface: bridge), TimeSpan.FromSeconds(30), ct)).Capture
            ?? throw new ProvisioningException($"host '{host}' started no capture on {bridge}");
        return new AgentCapture(this, bridge, id);
    }

    public async Task<string?> TraceUnavailableReasonAsync(CancellationToken ct) =>
        (await StepAsync(new AgentStep(AgentStepAction.TraceAvailable, run), TimeSpan.FromSeconds(30), ct)).Text is { Length: > 0 } why ? $"on host '{host}': {why}" : null;

    public async Task<IRunTrace> StartTraceAsync(TraceRequest request, CancellationToken ct)
    {
        var reply = await StepAsync(new AgentStep(AgentStepAction.StartTrace, run, Trace: request), TimeSpan.FromSeconds(30), ct);
        return new AgentTrace(this, request, reply.Capture ?? throw new ProvisioningException($"host '{host}' started no trace"), reply.Text ?? "");
    }

    public Task<ProbeResult> PingAsync(string container, string address, int count, int timeoutSeconds, CancellationToken ct) =>
        commands.PingAsync(host, container, address, count, timeoutSeconds, ct);

    public async Task<ProbeResult> TcpAsync(string container, string target, string address, int port, int count, int timeoutSeconds, CancellationToken ct) =>
        (await StepAsync(new AgentStep(AgentStepAction.Tcp, run, Container: container, Target: target, Address: address, Port: port, Count: count, TimeoutSeconds: timeoutSeconds), TimeSpan.FromSeconds(20 + (Math.Clamp(count, 1, ContainerProbe.MaxCount) * Math.Clamp(timeoutSeconds, 1, 5))), ct)).Probe
        ?? throw new ProbeRejectedException($"host '{host}' sent no probe result");

    public async Task<IReadOnlyList<string>> RemoveAsync(string runKey, CancellationToken ct) =>
        (await StepAsync(new AgentStep(AgentStepAction.RemoveRun, runKey), TimeSpan.FromMinutes(2), ct)).Removed ?? [];

    /// <summary>One step; a refusal or a failure on the host is a <see cref="ProvisioningException"/> naming the host (a refused probe a <see cref="ProbeRejectedException"/>).</summary>
    private async Task<AgentStepReply> StepAsync(AgentStep command, TimeSpan deadline, CancellationToken ct)
    {
        var reply = await commands.StepAsync(host, command, deadline, ct);
        return reply switch
        {
            { Refused: { } why } when command.Action == AgentStepAction.Tcp => throw new ProbeRejectedException($"host '{host}' refused the probe: {why}"),
            { Refused: { } why } => throw new ProvisioningException($"host '{host}' refused {command.Action}: {why}"),
            { Failed: { } error } => throw new ProvisioningException($"host '{host}': {command.Action} failed: {error}"),
            _ => reply,
        };
    }

    private sealed class AgentTrace(AgentRunHost owner, TraceRequest request, string id, string tag) : IRunTrace
    {
        public TraceRequest Request => request;

        public string Tag => tag;

        public async Task<IReadOnlyList<Dashboard.Core.Firewall.TracedPacket>> StopAsync() =>
            (await owner.StepAsync(new AgentStep(AgentStepAction.StopTrace, owner.RunKey, Capture: id), TimeSpan.FromMinutes(1), CancellationToken.None)).Traced ?? [];
    }

    private sealed class AgentCapture(AgentRunHost owner, string bridge, string id) : IRunCapture
    {
        public string Interface => bridge;

        public async Task<long?> StopAsync(string pcapPath)
        {
            var reply = await owner.StepAsync(new AgentStep(AgentStepAction.StopCapture, owner.RunKey, Capture: id), TimeSpan.FromMinutes(1), CancellationToken.None);
            await File.WriteAllBytesAsync(pcapPath, reply.Pcap ?? []);
            return reply.KernelDrops;
        }
    }
}
