namespace Dashboard.Core.Topology;

/// <summary>
/// Finds the host end of a container's veth. Interface indexes are per network namespace, so equal numbers alone prove
/// nothing: the container interface's <c>iflink</c> must be the host veth's index <em>and</em> the host veth's peer index
/// must be the container interface's index, with the host veth's peer living in another namespace.
/// </summary>
public static class VethPairMatcher
{
    public static VethPair? Match(IpLink containerInterface, IReadOnlyList<IpLink> hostLinks)
    {
        if (containerInterface.LinkIndex is not { } iflink || iflink == containerInterface.IfIndex && containerInterface.LinkNetnsId is null)
        {
            return null;
        }

        foreach (var host in hostLinks)
        {
            if (host.IfIndex == iflink
                && host.IsVeth
                && host.LinkIndex == containerInterface.IfIndex
                && host.LinkNetnsId is not null)
            {
                return new VethPair(
                    containerInterface.Name,
                    containerInterface.IfIndex,
                    iflink,
                    host.Name,
                    host.IfIndex,
                    host.Master,
                    host.MacAddress,
                    host.OperState);
            }
        }

        return null;
    }

    /// <summary>Bridges and their ports from the host's links, as <c>brctl show</c> lists them.</summary>
    public static IReadOnlyList<BridgeInfo> Bridges(
        IReadOnlyList<IpLink> hostLinks,
        IReadOnlyList<DockerNetwork> networks,
        IReadOnlyList<DockerContainer> containers)
    {
        var containerByVeth = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var c in containers)
        {
            foreach (var ep in c.Endpoints)
            {
                if (ep.Veth is { } v)
                {
                    containerByVeth[v.HostInterface] = c.Name;
                }
            }
        }

        return hostLinks
            .Where(l => l.IsBridge)
            .OrderBy(l => l.Name, StringComparer.Ordinal)
            .Select(b => new BridgeInfo(
                b.Name,
                b.IfIndex,
                b.MacAddress,
                b.OperState,
                b.Mtu,
                networks.FirstOrDefault(n => n.BridgeName == b.Name)?.Name,
                hostLinks
                    .Where(p => p.Master == b.Name)
                    .OrderBy(p => p.Name, StringComparer.Ordinal)
                    .Select(p => new BridgePort(p.Name, p.IfIndex, p.Kind, p.BridgePortState ?? p.OperState, containerByVeth.GetValueOrDefault(p.Name)))
                    .ToList())
            {
                Addresses = b.Addresses,
            })
            .ToList();
    }
}
