using System.Net;
using System.Text.RegularExpressions;
using Dashboard.Core.Topology;

namespace Dashboard.Core.Firewall;

/// <summary>
/// Decides who owns each rule and which networks it concerns.
/// <list type="bullet">
/// <item>Dashboard: the comment starts with the dashboard's tag (<see cref="RuleTag"/>).</item>
/// <item>Docker: everything in nftables table <c>docker-bridges</c>; in iptables, the shapes Docker writes (17 → 29):
/// jumps to DOCKER* chains, the bare <c>RETURN</c> closing DOCKER-USER and the isolation chains, rules in Docker's chains
/// or built-in chains that name Docker bridges with Docker's targets, MASQUERADE of Docker subnets, the raw direct-access DROPs.</item>
/// <item>User: anything else, including ACCEPT rules inserted into Docker's own chains (the seed's form) and everything in DOCKER-USER but its RETURN.</item>
/// </list>
/// Without a topology (a pasted dump), bridges are recognised by Docker's names: <c>docker0</c> and <c>br-</c> + 12 hex.
/// </summary>
public static partial class RuleClassifier
{
    [GeneratedRegex("^(docker0|br-[0-9a-f]{12})$", RegexOptions.CultureInvariant)]
    private static partial Regex DockerBridgeName();

    private static readonly HashSet<string> DockerTargets = new(StringComparer.Ordinal)
    {
        "ACCEPT", "DROP", "RETURN", "MASQUERADE", "DNAT", "REJECT",
    };

    public static void Classify(Ruleset ruleset, IReadOnlyList<DockerNetwork>? networks = null, IReadOnlyList<DockerContainer>? containers = null)
    {
        var bridges = new Dictionary<string, DockerNetwork?>(StringComparer.Ordinal);
        var subnets = new List<(IPNetwork Net, DockerNetwork Network)>();
        foreach (var n in networks ?? [])
        {
            if (n.BridgeName is { } b)
            {
                bridges[b] = n;
            }

            foreach (var s in n.Subnets)
            {
                if (s.ToNetwork() is { } p)
                {
                    subnets.Add((p, n));
                }
            }
        }

        var containerAddresses = new HashSet<IPAddress>();
        foreach (var c in containers ?? [])
        {
            foreach (var ep in c.Endpoints)
            {
                if (ep.Ipv4Address is { } a && IPAddress.TryParse(a, out var ip))
                {
                    containerAddresses.Add(ip);
                }
            }
        }

        var knowsTopology = networks is { Count: > 0 };
        bool IsBridge(string name) => bridges.ContainsKey(name) || (!knowsTopology && DockerBridgeName().IsMatch(name));

        foreach (var table in ruleset.Tables)
        {
            var isNftDocker = ruleset.Format == RulesetFormat.NftJson && table.Name == "docker-bridges";
            foreach (var chain in table.Chains)
            {
                foreach (var rule in chain.Rules)
                {
                    var named = NamedInterfaces(rule).Where(IsBridge).Distinct().ToList();
                    if (isNftDocker)
                    {
                        // Docker 29 names the bridge in per-bridge chain names (filter-forward-in__bridge1) rather than in the rule.
                        var sep = chain.Name.IndexOf("__", StringComparison.Ordinal);
                        if (sep > 0 && !named.Contains(chain.Name[(sep + 2)..]))
                        {
                            named.Add(chain.Name[(sep + 2)..]);
                        }
                    }

                    rule.Bridges = named;
                    rule.Networks = LinkedNetworks(rule, named, bridges, subnets);
                    rule.Owner = RuleTag.IsDashboardComment(rule.Comment) ? RuleOwner.Dashboard
                        : isNftDocker ? RuleOwner.Docker
                        : ruleset.Format == RulesetFormat.IptablesSave && IsDockerIptablesRule(rule, chain, named, subnets, containerAddresses, knowsTopology) ? RuleOwner.Docker
                        : RuleOwner.User;
                }
            }
        }
    }

    private static IEnumerable<string> NamedInterfaces(FirewallRule rule)
    {
        foreach (var m in rule.Matches)
        {
            if (m.Value is null)
            {
                continue;
            }

            if (m.Option is "-i" or "-o" or "meta iifname" or "meta oifname" or "--physdev-in" or "--physdev-out")
            {
                yield return m.Value;
            }
        }
    }

    private static IReadOnlyList<string> LinkedNetworks(
        FirewallRule rule,
        List<string> namedBridges,
        Dictionary<string, DockerNetwork?> bridges,
        List<(IPNetwork Net, DockerNetwork Network)> subnets)
    {
        if (bridges.Count == 0 && subnets.Count == 0)
        {
            return [];
        }

        var result = new List<string>();
        foreach (var b in namedBridges)
        {
            if (bridges.GetValueOrDefault(b) is { } n && !result.Contains(n.Name))
            {
                result.Add(n.Name);
            }
        }

        foreach (var m in rule.Matches)
        {
            if (m.Value is null || m.Option is not ("-s" or "-d" or "ip saddr" or "ip daddr" or "ip6 saddr" or "ip6 daddr"))
            {
                continue;
            }

            if (!TryParsePrefix(m.Value, out var addr))
            {
                continue;
            }

            foreach (var (net, network) in subnets)
            {
                if (Overlaps(net, addr) && !result.Contains(network.Name))
                {
                    result.Add(network.Name);
                }
            }
        }

        return result;
    }

    /// <summary>Parses "a.b.c.d", "a.b.c.d/len" and "a.b.c.d/255.255.0.0" (iptables-save prints masks as lengths, old versions as dotted masks).</summary>
    public static bool TryParsePrefix(string value, out IPNetwork network)
    {
        network = default;
        var slash = value.IndexOf('/');
        if (slash < 0)
        {
            if (!IPAddress.TryParse(value, out var ip))
            {
                return false;
            }

            network = new IPNetwork(ip, ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
            return true;
        }

        if (IPNetwork.TryParse(value, out network))
        {
            return true;
        }

        if (IPAddress.TryParse(value[..slash], out var baseIp) && IPAddress.TryParse(value[(slash + 1)..], out var mask))
        {
            var bits = mask.GetAddressBytes().Sum(b => System.Numerics.BitOperations.PopCount(b));
            try
            {
                network = new IPNetwork(baseIp, bits);
                return true;
            }
            catch (ArgumentException)
            {
                return false;
            }
        }

        return false;
    }

    private static bool Overlaps(IPNetwork a, IPNetwork b) =>
        a.BaseAddress.AddressFamily == b.BaseAddress.AddressFamily && (a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress));

    private static bool IsDockerChain(string chain) => chain.StartsWith("DOCKER", StringComparison.Ordinal);

    private static bool IsDockerIptablesRule(
        FirewallRule rule,
        FirewallChain chain,
        List<string> namedBridges,
        List<(IPNetwork Net, DockerNetwork Network)> subnets,
        HashSet<IPAddress> containerAddresses,
        bool knowsTopology)
    {
        var target = rule.Target;
        var inDockerChain = IsDockerChain(chain.Name);
        if (chain.Name == "DOCKER-USER")
        {
            // Docker writes only the closing RETURN here; everything else is the administrator's.
            return target == "RETURN" && rule.Matches.Count == 0;
        }

        if (!inDockerChain && !chain.IsBuiltin)
        {
            return false;
        }

        // Jumps into Docker's chains (FORWARD -j DOCKER-USER, -o br -j DOCKER, nat PREROUTING -m addrtype ... -j DOCKER).
        if (target is not null && IsDockerChain(target) && rule.JumpChains.Count > 0)
        {
            return rule.Matches.All(m => m.Option is "-i" or "-o" or "--dst-type" or "-d" or "--ctstate") && !HasForeignAddress(rule, subnets, knowsTopology);
        }

        if (target is null || !DockerTargets.Contains(target))
        {
            return false;
        }

        // The bare RETURN closing Docker's chains.
        if (inDockerChain && target == "RETURN" && rule.Matches.Count == 0)
        {
            return true;
        }

        if (chain.Name.StartsWith("DOCKER-ISOLATION", StringComparison.Ordinal) && target == "ACCEPT")
        {
            return false;
        }

        // Docker never accepts from one bridge into a different one by name (that is what isolation forbids).
        if (target == "ACCEPT" && rule.Find("-i") is { Negated: false } inIf
            && rule.Find("-o") is { Negated: false } outIf && inIf.Value != outIf.Value)
        {
            return false;
        }

        // Hairpin MASQUERADE for a published port: -s c/32 -d c/32 -p tcp --dport N -j MASQUERADE.
        if (target == "MASQUERADE" && rule.FindValue("-s") is { } src && src == rule.FindValue("-d"))
        {
            return !knowsTopology || (TryParsePrefix(src, out var hp) && containerAddresses.Contains(hp.BaseAddress));
        }

        if (namedBridges.Count == 0)
        {
            return false;
        }

        // Interfaces it names are all Docker bridges; addresses, when present, are Docker's subnets or containers.
        var allInterfacesDocker = rule.Matches
            .Where(m => m.Option is "-i" or "-o" && m.Value is not null)
            .All(m => namedBridges.Contains(m.Value!));
        return allInterfacesDocker && !HasForeignAddress(rule, subnets, knowsTopology);
    }

    private static bool HasForeignAddress(
        FirewallRule rule,
        List<(IPNetwork Net, DockerNetwork Network)> subnets,
        bool knowsTopology)
    {
        if (!knowsTopology)
        {
            return false;
        }

        foreach (var m in rule.Matches)
        {
            if (m.Option is not ("-s" or "-d") || m.Value is null)
            {
                continue;
            }

            if (m.Value == "127.0.0.0/8")
            {
                continue;
            }

            if (!TryParsePrefix(m.Value, out var p))
            {
                return true;
            }

            // Docker names its subnets, and single container addresses inside them (published ports, direct-access drops).
            var isSubnet = subnets.Any(s => s.Net.Equals(p));
            var isHostInSubnet = p.PrefixLength is 32 or 128 && subnets.Any(s => s.Net.Contains(p.BaseAddress));
            if (!isSubnet && !isHostInSubnet)
            {
                return true;
            }
        }

        return false;
    }
}
