using System.Net;
using Dashboard.Core.Topology;

namespace Dashboard.Core.Evaluation;

/// <summary>
/// One side of a matrix cell: a network (its bridge, a representative address: a running container's, else the first
/// address after the gateway, marked assumed) or a container endpoint. <see cref="Peer"/> is a second address on the
/// same network for the network's own cell (intra-bridge traffic). <see cref="Prefix"/> is what a rule would name it by:
/// the network's subnet, or the container's address as a /32.
/// </summary>
public sealed record MatrixEndpoint(string Key, string Label, string Interface, string Address, string? Container, string? Peer, string? PeerContainer, bool AddressAssumed, string Prefix);

/// <summary>What the cells test: ICMP echo, or a TCP connection to a port.</summary>
public sealed record MatrixProbe(string Protocol = "icmp", int? Port = null)
{
    public static readonly MatrixProbe Ping = new();

    public override string ToString() => Protocol == "tcp" ? $"TCP to port {Port}" : "ICMP echo";
}

/// <summary>From one endpoint to another: request and reply verdicts, the round trip, and the rule that decided.</summary>
public sealed record MatrixCell(string From, string To, Verdict Request, Verdict? Reply, bool Succeeds, string Outcome, RuleRef? DecidingRule, string? NatSource, string? Reason);

public sealed record IsolationMatrix(IReadOnlyList<MatrixEndpoint> Endpoints, MatrixProbe Probe, IReadOnlyList<MatrixCell> Cells)
{
    public MatrixCell Cell(string from, string to) => Cells.First(c => c.From == from && c.To == to);
}

/// <summary>A cell whose answer differs between two matrices (e.g. before and after a proposed rule).</summary>
public sealed record MatrixChange(string From, string To, MatrixCell Before, MatrixCell After);

/// <summary>Builds isolation matrices from a ruleset and the topology, with the evaluator.</summary>
public static class IsolationMatrices
{
    /// <summary>Bridge networks with an IPv4 subnet, each with a representative address and a second one for its own cell.</summary>
    public static IReadOnlyList<MatrixEndpoint> Networks(HostTopology topology)
    {
        ArgumentNullException.ThrowIfNull(topology);
        var list = new List<MatrixEndpoint>();
        foreach (var n in topology.Networks.Where(n => n.BridgeName is not null).OrderBy(n => n.Name, StringComparer.Ordinal))
        {
            var subnet = n.Subnets.FirstOrDefault(s => s.ToNetwork() is { BaseAddress.AddressFamily: System.Net.Sockets.AddressFamily.InterNetwork });
            if (subnet?.ToNetwork() is not { } net)
            {
                continue;
            }

            var members = topology.Containers.Where(c => c.State == "running")
                .SelectMany(c => c.Endpoints.Where(e => e.NetworkName == n.Name && e.Ipv4Address is not null).Select(e => (Container: c.Name, Address: e.Ipv4Address!)))
                .OrderBy(m => m.Container, StringComparer.Ordinal)
                .ToList();
            var gateway = topology.GatewayOf(n, subnet).Address is { } g && IPAddress.TryParse(g, out var ga) ? Ipv4.ToUInt(ga) : Ipv4.ToUInt(net.BaseAddress) + 1;
            var assumed = members.Count == 0;
            var first = assumed ? (Container: (string?)null, Address: Ipv4.ToText(gateway + 1)) : (members[0].Container, members[0].Address);
            var second = members.Count > 1 ? (Container: (string?)members[1].Container, Address: members[1].Address) : (Container: null, Address: Ipv4.ToText(Ipv4.ToUInt(IPAddress.Parse(first.Address)) + 1));
            list.Add(new MatrixEndpoint(n.Name, $"{n.Name} ({n.BridgeName}{(n.Internal ? ", internal" : "")}{(n.Icc ? "" : ", ICC off")})", n.BridgeName!, first.Address, first.Container, second.Address, second.Container, assumed, subnet.Subnet));
        }

        return list;
    }

    /// <summary>Every running container's IPv4 endpoint on a bridge network.</summary>
    public static IReadOnlyList<MatrixEndpoint> Containers(HostTopology topology)
    {
        ArgumentNullException.ThrowIfNull(topology);
        var bridges = topology.Networks.Where(n => n.BridgeName is not null).ToDictionary(n => n.Name, n => n.BridgeName!);
        return [.. topology.Containers.Where(c => c.State == "running")
            .SelectMany(c => c.Endpoints.Where(e => e.Ipv4Address is not null && bridges.ContainsKey(e.NetworkName))
                .Select(e => new MatrixEndpoint($"{c.Name}@{e.NetworkName}", $"{c.Name} ({e.Ipv4Address}, {e.NetworkName})", bridges[e.NetworkName], e.Ipv4Address!, c.Name, null, null, false, e.Ipv4Address + "/32")))
            .OrderBy(e => e.Key, StringComparer.Ordinal)];
    }

    /// <summary>What the topology tells the evaluator: each bridge's address (its gateway) and the host's addresses on them.</summary>
    public static EvaluationContext ContextFor(HostTopology topology)
    {
        ArgumentNullException.ThrowIfNull(topology);
        var addresses = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var n in topology.Networks.Where(n => n.BridgeName is not null))
        {
            // Docker's IPAM gateway, else the bridge's own address in the subnet (a network made with --subnet alone).
            if (n.Subnets.Select(s => topology.GatewayOf(n, s).Address).FirstOrDefault(g => g is not null && !g.Contains(':', StringComparison.Ordinal)) is { } gw)
            {
                addresses[n.BridgeName!] = gw;
            }
        }

        return new EvaluationContext { InterfaceAddresses = addresses };
    }

    public static IsolationMatrix Build(Dashboard.Core.Firewall.Ruleset ruleset, IReadOnlyList<MatrixEndpoint> endpoints, MatrixProbe probe, EvaluationContext context)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(probe);
        var pairs = endpoints.SelectMany(a => endpoints.Select(b => (a, b))).ToArray();
        var cells = new MatrixCell[pairs.Length];
        Parallel.For(0, pairs.Length, i => cells[i] = Evaluate(ruleset, pairs[i].a, pairs[i].b, probe, context));
        return new IsolationMatrix(endpoints, probe, cells);
    }

    public static MatrixCell Evaluate(Dashboard.Core.Firewall.Ruleset ruleset, MatrixEndpoint from, MatrixEndpoint to, MatrixProbe probe, EvaluationContext context)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        if (StaysInside(from, to))
        {
            // A container's own addresses are local to its namespace: the packet goes through its loopback and never
            // reaches the host's bridge, so no rule of the host decides it.
            return new MatrixCell(from.Key, to.Key, Verdict.Accept, Verdict.Accept, true, "delivered inside the container (its own address: the host never sees it)", null, null,
                $"{to.Address} is {from.Container}'s own address: the packet stays in its network namespace");
        }

        var destination = from.Key == to.Key ? to.Peer ?? to.Address : to.Address;
        var flow = new FlowSpec
        {
            InInterface = from.Interface,
            OutInterface = to.Interface,
            Source = from.Address,
            Destination = destination,
            Protocol = probe.Protocol,
            DestinationPort = probe.Protocol == "icmp" ? null : probe.Port,
        };
        var rt = PacketEvaluator.Explain(ruleset, flow, context, recordPath: false);
        var deciding = rt.Request.Verdict != Verdict.Accept || rt.Reply is null || rt.Reply.Verdict == Verdict.Accept ? rt.Request.DecidingRule : rt.Reply.DecidingRule;
        var reason = rt.Request.Reason ?? rt.Reply?.Reason;
        return new MatrixCell(from.Key, to.Key, rt.Request.Verdict, rt.Reply?.Verdict, rt.Succeeds, rt.Outcome, deciding, rt.Request.NatSource, reason);
    }

    /// <summary>
    /// Whether a cell's packet stays inside one container: from a container endpoint to the same container (itself, or
    /// its endpoint on another network), whose addresses are all its own.
    /// </summary>
    public static bool StaysInside(MatrixEndpoint from, MatrixEndpoint to)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        return from.Peer is null && to.Peer is null && from.Container is not null && from.Container == to.Container;
    }

    /// <summary>The cells whose round trip, verdicts or deciding rule differ.</summary>
    public static IReadOnlyList<MatrixChange> Diff(IsolationMatrix before, IsolationMatrix after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        var index = after.Cells.ToDictionary(c => (c.From, c.To));
        return [.. before.Cells
            .Where(b => index.TryGetValue((b.From, b.To), out var a) && (a.Succeeds != b.Succeeds || a.Request != b.Request || a.Reply != b.Reply || a.DecidingRule != b.DecidingRule))
            .Select(b => new MatrixChange(b.From, b.To, b, index[(b.From, b.To)]))];
    }

}
