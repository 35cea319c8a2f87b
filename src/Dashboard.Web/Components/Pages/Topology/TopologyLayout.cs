using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;

namespace Dashboard.Web.Components.Pages.Topology;

/// <summary>Positions for the topology drawing: one lane per bridge, containers → veths → bridge → host router.</summary>
public sealed class TopologyLayout
{
    public const int ContainerX = 20;
    public const int ContainerWidth = 170;
    public const int VethX = 250;
    public const int BridgeX = 430;
    public const int BridgeWidth = 190;
    public const int VethWidth = 130;
    public const int RouterX = 770;
    public const int RouterWidth = 110;
    public const int Width = RouterX + RouterWidth + 10;
    public const int LaneGap = 24;
    public const int RowHeight = 54;

    public required IReadOnlyList<Lane> Lanes { get; init; }

    public int Height { get; init; }

    public int RouterY => Height / 2;

    public static TopologyLayout Of(HostTopology topology, Ruleset? ruleset)
    {
        var lanes = new List<Lane>();
        var y = 20;
        foreach (var bridge in topology.Bridges)
        {
            var network = topology.Networks.FirstOrDefault(n => n.BridgeName == bridge.Name);
            var members = topology.Containers
                .SelectMany(c => c.Endpoints.Where(e => e.Veth?.Bridge == bridge.Name).Select(e => (Container: c, Endpoint: e)))
                .ToList();
            var rows = Math.Max(1, members.Count);
            var height = rows * RowHeight;
            var endpoints = members.Select((m, i) => new LaneEndpoint(m.Container, m.Endpoint, y + (i * RowHeight) + (RowHeight / 2))).ToList();
            var drops = ruleset?.Rules.Where(r => IsIsolationDrop(r, bridge.Name)).ToList() ?? [];
            lanes.Add(new Lane(bridge, network, endpoints, y, height, drops));
            y += height + LaneGap;
        }

        return new TopologyLayout { Lanes = lanes, Height = Math.Max(y, 120) };
    }

    /// <summary>
    /// The text cut to what fits <paramref name="width"/> SVG units in the drawing's monospace font of
    /// <paramref name="fontSize"/> (a character is 0.6 of the size), with an ellipsis; the node's tooltip has it whole.
    /// </summary>
    public static string Fit(string text, int width, int fontSize)
    {
        ArgumentNullException.ThrowIfNull(text);
        var max = Math.Max(2, (int)(width / (fontSize * 0.6)));
        return text.Length <= max ? text : text[..(max - 1)] + "…";
    }

    /// <summary>Docker's rules that drop traffic into or out of this bridge (isolation, ICC off, internal, direct access).</summary>
    public static bool IsIsolationDrop(FirewallRule r, string bridge) =>
        r.Owner == RuleOwner.Docker && r.Target is "DROP" or "drop" && r.Bridges.Contains(bridge);
}

public sealed record Lane(BridgeInfo Bridge, DockerNetwork? Network, IReadOnlyList<LaneEndpoint> Endpoints, int Top, int Height, IReadOnlyList<FirewallRule> Drops)
{
    public int CenterY => Top + (Height / 2);
}

public sealed record LaneEndpoint(DockerContainer Container, ContainerEndpoint Endpoint, int Y);

/// <summary>A node of the drawing picked for its detail.</summary>
public abstract record TopologyPick;

public sealed record ContainerPick(string Name) : TopologyPick;

public sealed record VethPick(string Name) : TopologyPick;

public sealed record BridgePick(string Name) : TopologyPick;

public sealed record RouterPick : TopologyPick;
