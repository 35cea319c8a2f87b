using System.Net;
using System.Net.Sockets;

namespace Dashboard.Core.Topology;

/// <summary>
/// What the dashboard may capture and trace on a host: the interfaces of Docker's bridge networks (each network's
/// bridge, and the host ends of its endpoints' veth pairs) and addresses inside Docker networks' subnets. Never the
/// loopback, a physical NIC or anything else: those carry the dashboard's own sessions and the host's real traffic.
/// </summary>
public static class CaptureScope
{
    /// <summary>Every bridge of a Docker bridge network, and every host veth attached to one or owned by a container endpoint.</summary>
    public static IReadOnlySet<string> Interfaces(HostTopology topology)
    {
        ArgumentNullException.ThrowIfNull(topology);
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in topology.Networks)
        {
            if (n.Driver == "bridge" && n.BridgeName is { Length: > 0 } b)
            {
                set.Add(b);
            }
        }

        foreach (var c in topology.Containers)
        {
            foreach (var e in c.Endpoints)
            {
                if (e.Veth?.HostInterface is { Length: > 0 } v)
                {
                    set.Add(v);
                }
            }
        }

        foreach (var bridge in topology.Bridges.Where(b => set.Contains(b.Name)))
        {
            foreach (var port in bridge.Ports.Where(p => p.Kind == "veth"))
            {
                set.Add(port.Name);
            }
        }

        return set;
    }

    /// <summary>True when the IPv4 address lies inside the subnet of one of the host's Docker bridge networks.</summary>
    public static bool IsDockerAddress(HostTopology topology, string address)
    {
        ArgumentNullException.ThrowIfNull(topology);
        if (!IPAddress.TryParse(address, out var a) || a.AddressFamily != AddressFamily.InterNetwork)
        {
            return false;
        }

        // Bridge networks only: a macvlan, ipvlan or overlay subnet is often the physical network itself.
        return topology.Networks.Where(n => n.Driver == "bridge").SelectMany(n => n.Subnets).Select(s => s.ToNetwork()).Any(n => n is { } net && net.BaseAddress.AddressFamily == AddressFamily.InterNetwork && net.Contains(a));
    }
}
