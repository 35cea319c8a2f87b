namespace Dashboard.Core.Firewall;

/// <summary>The ways Docker has expressed bridge isolation, 17 → 29.</summary>
public enum DockerLayoutKind
{
    /// <summary>No Docker chains or tables at all (Docker absent, or started with iptables=false).</summary>
    None,

    /// <summary>Docker chains present but in a shape none of the known layouts has.</summary>
    Unknown,

    /// <summary>17.x: one DOCKER-ISOLATION chain with a DROP per ordered bridge pair.</summary>
    Docker17,

    /// <summary>18.05–27.x: DOCKER-ISOLATION-STAGE-1 and -STAGE-2.</summary>
    Docker18To27,

    /// <summary>28.x: 28.0.0 matches the ipset docker-ext-bridges in FORWARD; 28.0.1+ FORWARD → DOCKER-FORWARD → DOCKER-CT, STAGE-1, DOCKER-BRIDGE; raw direct-access DROPs per published port to 28.1, per container from 28.2.</summary>
    Docker28,

    /// <summary>29.x with iptables: no STAGE chains, DOCKER-INTERNAL, per-bridge DROPs in DOCKER.</summary>
    Docker29Iptables,

    /// <summary>29.x nftables backend: table ip docker-bridges, no DOCKER-USER.</summary>
    Docker29Nftables,
}

public sealed record DockerLayout(DockerLayoutKind Kind, string Description, IReadOnlyList<string> Evidence);

/// <summary>Recognises which of Docker's firewall layouts a ruleset holds, from the chains it has.</summary>
public static class DockerLayoutDetector
{
    public static DockerLayout Detect(Ruleset ruleset)
    {
        var evidence = new List<string>();
        if (ruleset.Tables.Any(t => t.Name == "docker-bridges"))
        {
            evidence.Add("nftables table docker-bridges");
            return new DockerLayout(DockerLayoutKind.Docker29Nftables, "Docker 29 nftables backend", evidence);
        }

        var filter = ruleset.FindTable("filter");
        var chains = filter?.Chains.Select(c => c.Name).ToHashSet(StringComparer.Ordinal) ?? [];
        if (!chains.Any(c => c.StartsWith("DOCKER", StringComparison.Ordinal)))
        {
            return new DockerLayout(DockerLayoutKind.None, "no Docker rules (Docker absent or not managing the firewall)", evidence);
        }

        var hasStages = chains.Contains("DOCKER-ISOLATION-STAGE-1") && chains.Contains("DOCKER-ISOLATION-STAGE-2");
        var directAccessDrops = ruleset.FindTable("raw")?.FindChain("PREROUTING")?.Rules.Where(r => r.Target == "DROP" && r.Find("-d") is not null && r.Find("-i") is { Negated: true }).ToList() ?? [];
        var directAccess = directAccessDrops.Count > 0;
        if (directAccess)
        {
            evidence.Add("raw PREROUTING direct-access DROP");
        }

        // 28.0.0 (only): FORWARD matches the ipset docker-ext-bridges-v4 (or -v6), and there is no DOCKER-FORWARD yet.
        var extBridgesSet = filter?.FindChain("FORWARD")?.Rules.Any(r => r.FindValue("--match-set")?.StartsWith("docker-ext-bridges", StringComparison.Ordinal) == true) == true;
        if (extBridgesSet && hasStages && !chains.Contains("DOCKER-FORWARD"))
        {
            evidence.Add("FORWARD matches ipset docker-ext-bridges, no DOCKER-FORWARD");
            return new DockerLayout(DockerLayoutKind.Docker28, "Docker 28.0.0 (ipset docker-ext-bridges in FORWARD)", evidence);
        }

        if (chains.Contains("DOCKER-ISOLATION") && !hasStages)
        {
            evidence.Add("single DOCKER-ISOLATION chain");
            return new DockerLayout(DockerLayoutKind.Docker17, "Docker 17.x (pairwise DROPs in DOCKER-ISOLATION)", evidence);
        }

        if (chains.Contains("DOCKER-FORWARD") && hasStages)
        {
            evidence.Add("DOCKER-FORWARD with STAGE-1/STAGE-2");
            // 28.0.1–28.1 drop direct access per published port (-p tcp --dport); 28.2+ per container, every port.
            var perContainer = directAccess && directAccessDrops.Any(r => r.Find("--dport") is null);
            return new DockerLayout(DockerLayoutKind.Docker28, perContainer ? "Docker 28.2+ (DOCKER-FORWARD, raw direct-access drops per container)" : "Docker 28.0.1–28.1 (DOCKER-FORWARD)", evidence);
        }

        if (hasStages)
        {
            evidence.Add("DOCKER-ISOLATION-STAGE-1/STAGE-2, no DOCKER-FORWARD");
            return new DockerLayout(DockerLayoutKind.Docker18To27, "Docker 18.05–27.x (two-stage isolation)", evidence);
        }

        if (chains.Contains("DOCKER-FORWARD") || chains.Contains("DOCKER-INTERNAL"))
        {
            evidence.Add("DOCKER-FORWARD/DOCKER-INTERNAL without STAGE chains");
            return new DockerLayout(DockerLayoutKind.Docker29Iptables, "Docker 29 iptables (per-bridge DROPs in DOCKER, DOCKER-INTERNAL)", evidence);
        }

        evidence.Add("Docker chains: " + string.Join(", ", chains.Where(c => c.StartsWith("DOCKER", StringComparison.Ordinal)).Order(StringComparer.Ordinal)));
        return new DockerLayout(DockerLayoutKind.Unknown, "Docker chains in an unrecognised layout", evidence);
    }
}
