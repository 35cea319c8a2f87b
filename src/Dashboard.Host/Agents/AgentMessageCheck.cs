using System.Net;
using Dashboard.Core.Topology;
using Dashboard.Host.Collector;

namespace Dashboard.Host.Agents;

/// <summary>
/// What the dashboard accepts from an agent before anything is stored: every member present where the model needs it,
/// addresses that parse, names unique where the dashboard keys by them, and counts bounded. An agent is a host's own
/// process, but a compromised host must not be able to break the dashboard for everyone: a message that fails here is
/// refused (the agent hears why) and changes nothing.
/// </summary>
public static class AgentMessageCheck
{
    public const int MaxNetworks = 1_000;
    public const int MaxContainers = 5_000;
    public const int MaxEndpoints = 64;
    public const int MaxBridges = 1_000;
    public const int MaxLinks = 20_000;
    public const int MaxWarnings = 100;
    public const int MaxCounterChanges = 200_000;
    public const int MaxText = 4_000;

    /// <summary>Null when acceptable, else what is wrong, naming the member.</summary>
    public static string? Problem(AgentSnapshot? s) =>
        s is null ? "the snapshot is empty"
        : s.Status is null ? "Status is missing"
        : Problem(s.Status) ?? (s.Topology is { } t ? Problem(t) : null) ?? (s.Firewall is { } f ? Problem(f) : null);

    public static string? Problem(AgentTopology? m) => m is null ? "the message is empty" : m.Topology is null ? "Topology is missing" : Problem(m.Topology);

    public static string? Problem(AgentFirewallChange? m) => m is null ? "the message is empty" : m.Firewall is null ? "Firewall is missing" : Problem(m.Firewall);

    public static string? Problem(AgentStatus? m) => m is null ? "the message is empty" : m.Status is null ? "Status is missing" : Problem(m.Status);

    public static string? Problem(AgentCounters? m)
    {
        if (m is null || m.Moved is null || m.Policies is null)
        {
            return "Counters needs Moved and Policies (lists, may be empty)";
        }

        if ((m.Moved.Count / 3) + m.Policies.Count > MaxCounterChanges)
        {
            return $"at most {MaxCounterChanges:N0} counter changes in one message";
        }

        return m.Moved.Count % 3 != 0 ? "Moved holds triples: index, packets, bytes"
            : m.Policies.Any(p => p is null || p.Table is null || p.Chain is null) ? "Policies[]: every change needs Table and Chain"
            : null;
    }

    public static string? Problem(AgentFirewall f) =>
        f.Text is null ? "Firewall.Text is missing"
        : !Enum.IsDefined(f.Format) ? "Firewall.Format is IptablesSave or NftJson"
        : null;

    public static string? Problem(CollectorStatus s) =>
        !Enum.IsDefined(s.Backend) ? "Status.Backend is not a firewall backend"
        : Long(s.EngineError) || Long(s.FirewallError) ? $"Status: an error text is at most {MaxText:N0} characters"
        : double.IsNaN(s.AchievedRateHz) || s.AchievedRateHz < 0 || s.AchievedRateHz > 1_000 ? "Status.AchievedRateHz is 0-1000"
        : null;

    public static string? Problem(HostTopology t)
    {
        if (t.Engine is null || t.Engine.EngineVersion is null || t.Engine.ApiVersion is null || t.Engine.FirewallBackendSource is null)
        {
            return "Topology.Engine needs EngineVersion, ApiVersion and FirewallBackendSource";
        }

        if (t.Networks is null || t.Containers is null || t.Bridges is null || t.Links is null || t.Warnings is null)
        {
            return "Topology needs Networks, Containers, Bridges, Links and Warnings (lists, may be empty)";
        }

        if (t.Networks.Count > MaxNetworks || t.Containers.Count > MaxContainers || t.Bridges.Count > MaxBridges || t.Links.Count > MaxLinks || t.Warnings.Count > MaxWarnings)
        {
            return $"Topology: at most {MaxNetworks:N0} networks, {MaxContainers:N0} containers, {MaxBridges:N0} bridges, {MaxLinks:N0} links and {MaxWarnings} warnings";
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < t.Networks.Count; i++)
        {
            var n = t.Networks[i];
            if (n is null || n.Id is null || n.Name is null || n.Driver is null || n.Scope is null || n.Subnets is null || n.Options is null || n.Labels is null)
            {
                return $"Topology.Networks[{i}] needs Id, Name, Driver, Scope, Subnets, Options and Labels";
            }

            if (!names.Add(n.Name))
            {
                return $"Topology.Networks[{i}]: the name '{Cut(n.Name)}' is given twice";
            }

            if (n.Subnets.Any(s => s is null || !IPNetwork.TryParse(s.Subnet, out _) || (s.Gateway is not null && !IPAddress.TryParse(s.Gateway, out _))))
            {
                return $"Topology.Networks[{i}].Subnets: each is a CIDR subnet with an optional gateway address";
            }
        }

        var containerNames = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < t.Containers.Count; i++)
        {
            var c = t.Containers[i];
            if (c is null || c.Id is null || c.Name is null || c.Image is null || c.State is null || c.Endpoints is null || c.Labels is null)
            {
                return $"Topology.Containers[{i}] needs Id, Name, Image, State, Endpoints and Labels";
            }

            if (!containerNames.Add(c.Name))
            {
                return $"Topology.Containers[{i}]: the name '{Cut(c.Name)}' is given twice";
            }

            if (c.Endpoints.Count > MaxEndpoints)
            {
                return $"Topology.Containers[{i}]: at most {MaxEndpoints} endpoints";
            }

            for (var j = 0; j < c.Endpoints.Count; j++)
            {
                var e = c.Endpoints[j];
                if (e is null || e.NetworkId is null || e.NetworkName is null)
                {
                    return $"Topology.Containers[{i}].Endpoints[{j}] needs NetworkId and NetworkName";
                }

                if ((e.Ipv4Address is not null && !IPAddress.TryParse(e.Ipv4Address, out _)) || (e.Ipv6Address is not null && !IPAddress.TryParse(e.Ipv6Address, out _))
                    || (e.Gateway is not null && !IPAddress.TryParse(e.Gateway, out _)))
                {
                    return $"Topology.Containers[{i}].Endpoints[{j}]: an address that does not parse";
                }

                if (e.Veth is { } v && (v.ContainerInterface is null || v.HostInterface is null))
                {
                    return $"Topology.Containers[{i}].Endpoints[{j}].Veth needs ContainerInterface and HostInterface";
                }
            }
        }

        for (var i = 0; i < t.Bridges.Count; i++)
        {
            if (t.Bridges[i] is not { Name: not null, Ports: not null } b || b.Ports.Any(p => p is null || p.Name is null))
            {
                return $"Topology.Bridges[{i}] needs Name and Ports (each with its Name)";
            }

            if (!AddressesAreCidrs(b.Addresses))
            {
                return $"Topology.Bridges[{i}].Addresses: at most {IpLink.MaxAddresses} addresses, each an address with its prefix (172.18.0.1/16)";
            }
        }

        if (t.Links.Any(l => l is null || l.Name is null) || t.Warnings.Any(w => w is null || w.Length > MaxText))
        {
            return "Topology: Links and Warnings hold no empty items, warnings at most 4,000 characters";
        }

        if (t.Links.Any(l => !AddressesAreCidrs(l.Addresses)))
        {
            return $"Topology.Links: at most {IpLink.MaxAddresses} addresses a link, each an address with its prefix (172.18.0.1/16)";
        }

        return null;
    }

    private static bool AddressesAreCidrs(IReadOnlyList<string>? addresses) =>
        addresses is not null && addresses.Count <= IpLink.MaxAddresses && addresses.All(a => a is { Length: <= 50 } && a.Contains('/', StringComparison.Ordinal) && IsCidr(a));

    private static bool IsCidr(string a)
    {
        // As ip prints them: four dotted numbers (IPAddress also reads "1" as 0.0.0.1), or IPv6 without a scope.
        var slash = a.IndexOf('/', StringComparison.Ordinal);
        return IPAddress.TryParse(a[..slash], out var address)
            && (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? a[..slash] == address.ToString() : !a.Contains('%', StringComparison.Ordinal))
            && int.TryParse(a[(slash + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var len)
            && len >= 0 && len <= (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
    }

    /// <summary>A host-wide capture's id as the dashboard gives it (12 lowercase hex digits).</summary>
    public static bool IsCaptureId(string? id) => id is { Length: 12 } && id.All(char.IsAsciiHexDigitLower);

    /// <summary>A host-wide trace's id as the dashboard gives it (10 lowercase hex digits).</summary>
    public static bool IsTraceId(string? id) => id is { Length: 10 } && id.All(char.IsAsciiHexDigitLower);

    public const int MaxFlowName = 200;
    public const int MaxTracedPackets = 500;
    public const int MaxTraceSteps = 256;
    public const int MaxTraceCommands = 64;

    /// <summary>A traced step's rule text at most (an iptables -S line; a longer one is not a rule Docker or the dashboard writes).</summary>
    public const int MaxRuleText = 512;

    /// <summary>The characters of rule texts and names one trace update may carry in all.</summary>
    public const int MaxTraceUpdateText = 1024 * 1024;

    public static string? Problem(AgentCaptureBatch? b)
    {
        if (b is null || b.Shown is null || b.NotShownFlows is null || b.Stats is null)
        {
            return "CaptureBatch needs Id, Shown, NotShownFlows and Stats";
        }

        if (!IsCaptureId(b.Id))
        {
            return "CaptureBatch.Id is the dashboard's capture id (12 lowercase hex digits)";
        }

        if (b.Sequence < 0 || b.NotShown < 0 || b.Shown.Count > Dashboard.Core.Capture.PacketTally.DefaultMaxShown || b.NotShownFlows.Count > Dashboard.Core.Capture.PacketTally.DefaultMaxFlows + 1)
        {
            return $"CaptureBatch: Sequence and NotShown are not negative, at most {Dashboard.Core.Capture.PacketTally.DefaultMaxShown} frames shown and {Dashboard.Core.Capture.PacketTally.DefaultMaxFlows + 1} flows counted";
        }

        for (var i = 0; i < b.Shown.Count; i++)
        {
            if (b.Shown[i] is not { Data: { Length: > 0 and <= AgentProtocol.MaxBatchFrameBytes } data } f || f.OriginalLength < data.Length || f.OriginalLength > 262_144)
            {
                return $"CaptureBatch.Shown[{i}]: 1 to {AgentProtocol.MaxBatchFrameBytes} bytes of a frame of at most 262,144, its original length at least what is sent";
            }
        }

        long counted = 0;
        for (var i = 0; i < b.NotShownFlows.Count; i++)
        {
            if (b.NotShownFlows[i] is not { Flow: { Length: > 0 and <= MaxFlowName } } f || f.Packets < 0 || f.Bytes < 0)
            {
                return $"CaptureBatch.NotShownFlows[{i}]: a flow named in at most {MaxFlowName} characters, with counts not negative";
            }

            counted += f.Packets;
        }

        var st = b.Stats;
        return counted != b.NotShown ? $"CaptureBatch: the flows count {counted} packets, NotShown says {b.NotShown}"
            : st.Read < 0 || st.DecodedForFlow < 0 || st.CapturedByTcpdump < 0 || st.ReceivedByFilter < 0 || st.DroppedByKernel < 0 ? "CaptureBatch.Stats: counts are not negative"
            : !Enum.IsDefined(b.EndReason) ? "CaptureBatch.EndReason is not an end reason"
            : Long(b.EndMessage) ? $"CaptureBatch.EndMessage is at most {MaxText:N0} characters"
            : b.Final && b.EndReason == Capture.CaptureEndReason.Running ? "CaptureBatch: the final batch says why the capture ended"
            : null;
    }

    public static string? Problem(AgentTraceUpdate? u)
    {
        if (u is null || u.Packets is null || u.Commands is null)
        {
            return "TraceUpdate needs Id, Packets and Commands";
        }

        if (!IsTraceId(u.Id))
        {
            return "TraceUpdate.Id is the dashboard's trace id (10 lowercase hex digits)";
        }

        if (u.Commands.Count > MaxTraceCommands || u.Commands.Any(c => c is null || c.CommandLine is null || c.Message is null || Long(c.CommandLine) || Long(c.Message)))
        {
            return $"TraceUpdate.Commands: at most {MaxTraceCommands}, each with its CommandLine and Message of at most {MaxText:N0} characters";
        }

        var problem = u.UnparsedLines < 0 ? "TraceUpdate.UnparsedLines is not negative"
            : Long(u.EndMessage) ? $"TraceUpdate.EndMessage is at most {MaxText:N0} characters"
            : Problem(u.Packets, "TraceUpdate.Packets");
        if (problem is not null)
        {
            return problem;
        }

        var text = u.Packets.Sum(p => (long)p.Key.Length + p.Steps.Sum(s => (long)s.Table.Length + s.Chain.Length + s.Verdict.Length + (s.JumpTarget?.Length ?? 0) + (s.RuleText?.Length ?? 0)));
        return text > MaxTraceUpdateText ? $"TraceUpdate: at most {MaxTraceUpdateText:N0} characters of names and rules in one update" : null;
    }

    /// <summary>
    /// An agent's answer to a session command, before anything of it is used: texts bounded, a trace's tag its own, a
    /// pcap piece within the piece size and the capture's byte limit (with room for pcap's record headers).
    /// </summary>
    public static string? Problem(AgentSessionReply? r, AgentSessionAction action, long? byteLimit = null)
    {
        if (r is null)
        {
            return "the reply is empty";
        }

        if (Long(r.Refused) || Long(r.Failed))
        {
            return $"Refused and Failed are at most {MaxText:N0} characters";
        }

        if (r.Commands is { } commands && (commands.Count > MaxTraceCommands || commands.Any(c => c is null || c.CommandLine is null || c.Message is null || Long(c.CommandLine) || Long(c.Message))))
        {
            return $"Commands: at most {MaxTraceCommands}, each with its CommandLine and Message of at most {MaxText:N0} characters";
        }

        if (r.Refused is not null || r.Failed is not null)
        {
            return null;
        }

        return action switch
        {
            AgentSessionAction.StartTrace when r.Tag is not { Length: <= 80 } tag || !tag.StartsWith(Dashboard.Core.Firewall.RuleTag.Prefix + "trace-", StringComparison.Ordinal)
                => "a started trace's Tag is its TRACE rules' comment (netlab:trace-…, at most 80 characters)",
            AgentSessionAction.ReadPcap when r.Pcap is not { Length: <= AgentProtocol.MaxPcapChunk } || r.PcapLength is not { } length || length < r.Pcap.Length
                || (byteLimit is { } limit && length > limit + (limit / 4) + (64 * 1024))
                => $"a piece of a pcap is at most {AgentProtocol.MaxPcapChunk:N0} bytes of a file no longer than the capture's byte limit allows",
            _ => null,
        };
    }

    /// <summary>Traced packets from an agent (a host-wide trace's, or a run's): bounded, addresses that parse, steps that name their chain.</summary>
    public static string? Problem(IReadOnlyList<Dashboard.Core.Firewall.TracedPacket>? packets, string what)
    {
        if (packets is null || packets.Count > MaxTracedPackets)
        {
            return $"{what}: a list of at most {MaxTracedPackets} packets";
        }

        for (var i = 0; i < packets.Count; i++)
        {
            var p = packets[i];
            if (p is null || p.Key is not { Length: > 0 and <= 100 } || p.Steps is null || p.Steps.Count > MaxTraceSteps
                || !IPAddress.TryParse(p.Source, out _) || !IPAddress.TryParse(p.Destination, out _) || p.InInterface is { Length: > 16 } || p.OutInterface is { Length: > 16 })
            {
                return $"{what}[{i}]: a key of at most 100 characters, source and destination addresses, interface names of at most 16 and at most {MaxTraceSteps} steps";
            }

            for (var j = 0; j < p.Steps.Count; j++)
            {
                if (p.Steps[j] is not { Table: { Length: > 0 and <= 64 }, Chain: { Length: > 0 and <= 64 }, Verdict: { Length: <= 64 } } step
                    || !Enum.IsDefined(step.Kind) || step.JumpTarget is { Length: > 64 } || step.RuleText is { Length: > MaxRuleText })
                {
                    return $"{what}[{i}].Steps[{j}]: a table, a chain and a verdict of at most 64 characters, a known kind, a rule of at most {MaxRuleText}";
                }
            }
        }

        return null;
    }

    private static bool Long(string? s) => s is { Length: > MaxText };

    /// <summary>A value from an agent or a dashboard, cut to 64 characters for a message (null: empty).</summary>
    public static string Cut(string? s) => s is null ? "" : s.Length <= 64 ? s : s[..64] + "…";
}
