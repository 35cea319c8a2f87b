using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace Dashboard.Core.Experiments;

/// <summary>A lab network of a scenario: Docker bridge network, optionally internal or without inter-container communication.</summary>
public sealed record ScenarioNetwork(string Name, bool Internal = false, bool Icc = true);

/// <summary>A container of a scenario, on one network (busybox, sleeping).</summary>
public sealed record ScenarioContainer(string Name, string Network);

/// <summary>A probe: <c>ping</c> (count, timeout) or <c>tcp</c> (busybox nc to a port, with a listener started in the target).</summary>
public sealed record ScenarioProbe(string Kind, string From, string To, int Count = 3, int TimeoutSeconds = 1, int? Port = null);

/// <summary>
/// A rule held during the run. Source and destination are a network of the scenario (<c>net:net1</c>, its subnet at run
/// time), a container (<c>ctr:c1</c>, its address), or a CIDR inside 172.16.0.0/12.
/// </summary>
public sealed record ScenarioRule(string Chain, int? Position = 1, string? Source = null, string? Destination = null, string? Protocol = null, int? DestinationPort = null, string Target = "ACCEPT", string Table = "filter");

/// <summary>One way to run the scenario: a name and the rules held while it runs (none for the isolated baseline).</summary>
public sealed record ScenarioVariant(string Name, IReadOnlyList<ScenarioRule> Rules, string? Description = null);

/// <summary>
/// What a run provisions and does: networks, containers, probes, rule variants, captures (networks whose bridges are
/// captured) and whether the first probe's flow is traced. Bounded on every axis so a run always ends.
/// </summary>
public sealed partial record ScenarioDefinition(
    IReadOnlyList<ScenarioNetwork> Networks,
    IReadOnlyList<ScenarioContainer> Containers,
    IReadOnlyList<ScenarioProbe> Probes,
    IReadOnlyList<ScenarioVariant> Variants,
    IReadOnlyList<string> Captures,
    bool Trace = true)
{
    public const int MaxNetworks = 6;
    public const int MaxContainers = 12;
    public const int MaxProbes = 20;
    public const int MaxCount = 10;
    public const int MaxRules = 10;

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true, Converters = { new JsonStringEnumConverter() } };

    /// <summary>Reading a scenario someone wrote: a field the scenario does not have is an error (a typo would otherwise be lost silently).</summary>
    private static readonly JsonSerializerOptions Strict = new(Json) { UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow };

    /// <summary>
    /// The chains a variant's rules may go in: the user chain and the isolation chains of Docker's layouts. A variant runs
    /// without approval (Operator role), so it may only change what happens to the run's own traffic.
    /// </summary>
    public static readonly IReadOnlyList<string> VariantChains = ["DOCKER-USER", "DOCKER-ISOLATION", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER-INTERNAL"];

    private static string Describe(ScenarioRule? r)
    {
        if (r is null)
        {
            return "?";
        }

        var t = $"{r.Table} {r.Chain} {r.Position}{(r.Source is null ? "" : " -s " + r.Source)}{(r.Destination is null ? "" : " -d " + r.Destination)}{(r.Protocol is null ? "" : " -p " + r.Protocol)} -j {r.Target}";
        return t.Length > 120 ? t[..120] : t;
    }

    [GeneratedRegex("^[a-z][a-z0-9-]{0,19}$", RegexOptions.CultureInvariant)]
    private static partial Regex ShortName();


    /// <summary>
    /// Reads and validates a scenario. <paramref name="strict"/> (what someone just wrote or imported): a field the
    /// scenario does not have is an error; stored scenarios, already accepted, are read without it.
    /// </summary>
    public static ScenarioDefinition Parse(string json, bool strict = false)
    {
        ScenarioDefinition? d;
        try
        {
            d = JsonSerializer.Deserialize<ScenarioDefinition>(json, strict ? Strict : Json);
        }
        catch (JsonException ex)
        {
            throw new ScenarioException([ScenarioJsonErrors.Describe(json, ex)]);
        }

        if (d is null)
        {
            throw new ScenarioException(["empty scenario"]);
        }

        if (d.Validate() is { Count: > 0 } errors)
        {
            throw new ScenarioException(errors);
        }

        return d;
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Every problem, in words; empty when the scenario can run.</summary>
    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        var networks = Networks ?? [];
        var containers = Containers ?? [];
        var probes = Probes ?? [];
        var variants = Variants ?? [];
        if (networks.Count is < 1 or > MaxNetworks)
        {
            e.Add($"1-{MaxNetworks} networks");
        }

        if (containers.Count is < 1 or > MaxContainers)
        {
            e.Add($"1-{MaxContainers} containers");
        }

        if (probes.Count > MaxProbes)
        {
            e.Add($"at most {MaxProbes} probes");
        }

        if (variants.Count is < 1 or > 6)
        {
            e.Add("1-6 variants");
        }

        var names = new HashSet<string>();
        foreach (var n in networks)
        {
            if (n?.Name is null || !ShortName().IsMatch(n.Name))
            {
                e.Add($"network name '{n?.Name}': 1-20 lowercase letters, digits and '-', starting with a letter");
            }
            else if (!names.Add(n.Name))
            {
                e.Add($"network {n.Name} is named twice");
            }
        }

        var containerNames = new HashSet<string>();
        foreach (var c in containers)
        {
            if (c?.Name is null || !ShortName().IsMatch(c.Name))
            {
                e.Add($"container name '{c?.Name}': 1-20 lowercase letters, digits and '-', starting with a letter");
            }
            else if (!containerNames.Add(c.Name))
            {
                e.Add($"container {c.Name} is named twice");
            }

            if (c is not null && !names.Contains(c.Network))
            {
                e.Add($"container {c.Name}: network {c.Network} is not in the scenario");
            }
        }

        foreach (var p in probes)
        {
            if (p is null)
            {
                continue;
            }

            if (p.Kind is not ("ping" or "tcp"))
            {
                e.Add($"probe kind '{p.Kind}': ping or tcp");
            }

            if (!containerNames.Contains(p.From) || !containerNames.Contains(p.To))
            {
                e.Add($"probe {p.From} → {p.To}: both must be containers of the scenario");
            }

            if (p.Count is < 1 or > MaxCount || p.TimeoutSeconds is < 1 or > 5)
            {
                e.Add($"probe {p.From} → {p.To}: count 1-{MaxCount}, timeout 1-5 s");
            }

            if (p.Kind == "tcp" && p.Port is not (>= 1 and <= 65535) || p.Kind == "ping" && p.Port is not null)
            {
                e.Add($"probe {p.From} → {p.To}: a tcp probe has a port 1-65535, a ping none");
            }
        }

        var variantNames = new HashSet<string>();
        foreach (var v in variants)
        {
            if (v?.Name is null || !ShortName().IsMatch(v.Name) || !variantNames.Add(v.Name))
            {
                e.Add($"variant name '{v?.Name}': unique, 1-20 lowercase letters, digits and '-'");
            }

            if (v?.Rules is { Count: > MaxRules })
            {
                e.Add($"variant {v.Name}: at most {MaxRules} rules");
            }

            foreach (var r in v?.Rules ?? [])
            {
                var which = $"variant {v!.Name}: rule '{Describe(r)}'";
                if (r is null)
                {
                    e.Add($"variant {v.Name}: a rule is missing");
                    continue;
                }

                if (r.Table != "filter" || !VariantChains.Contains(r.Chain ?? "") || r.Target is not ("ACCEPT" or "DROP" or "RETURN") || r.Position is < 1 or > 1000)
                {
                    e.Add($"{which}: a variant's rule goes in table filter, in {string.Join(", ", VariantChains)} (never INPUT, OUTPUT, FORWARD or raw), targets ACCEPT, DROP or RETURN, at position 1-1000");
                }

                if (r.Source is null && r.Destination is null)
                {
                    e.Add($"{which}: names no source or destination, so it would match every packet the chain sees; name one of the run's networks (net:<name>) or containers (ctr:<name>)");
                }

                foreach (var end in new[] { r.Source, r.Destination })
                {
                    if (end is null)
                    {
                        continue;
                    }

                    var ok = end.StartsWith("net:", StringComparison.Ordinal) ? names.Contains(end[4..])
                        : end.StartsWith("ctr:", StringComparison.Ordinal) && containerNames.Contains(end[4..]);
                    if (!ok)
                    {
                        e.Add($"{which}: '{(end.Length > 40 ? end[..40] : end)}' is not net:<network> or ctr:<container> of this scenario (a variant touches only the run's own networks and containers, never other addresses)");
                    }
                }

                if (r.Protocol is not (null or "icmp" or "tcp" or "udp") || r.DestinationPort is not null && r.Protocol is not ("tcp" or "udp"))
                {
                    e.Add($"{which}: protocol icmp, tcp or udp; a port needs tcp or udp");
                }
            }
        }

        foreach (var c in Captures ?? [])
        {
            if (!names.Contains(c))
            {
                e.Add($"capture '{c}': captures name networks of the scenario");
            }
        }

        return e;
    }

    /// <summary>The built-in seed: two networks, c2 pings c1; isolated, and with ACCEPT rules in DOCKER-USER or (the seed's own form) at the head of the isolation chain.</summary>
    public static ScenarioDefinition Seed { get; } = new(
        [new ScenarioNetwork("net1"), new ScenarioNetwork("net2")],
        [new ScenarioContainer("c1", "net1"), new ScenarioContainer("c2", "net2")],
        [new ScenarioProbe("ping", "c2", "c1", 3, 1)],
        [
            new ScenarioVariant("isolated", [], "Docker's isolation as it is"),
            new ScenarioVariant("docker-user", [new ScenarioRule("DOCKER-USER", 1, "net:net2", "net:net1"), new ScenarioRule("DOCKER-USER", 1, "net:net1", "net:net2")], "two ACCEPT rules at the head of DOCKER-USER (the documented place)"),
            new ScenarioVariant("isolation-head", [new ScenarioRule("DOCKER-ISOLATION-STAGE-1", 1, "net:net2"), new ScenarioRule("DOCKER-ISOLATION-STAGE-1", 1, "net:net1")], "the seed's form: ACCEPT by source subnet at the head of the isolation chain"),
        ],
        ["net1", "net2"],
        Trace: true);
}

/// <summary>A scenario that cannot run, with every reason.</summary>
public sealed class ScenarioException(IReadOnlyList<string> errors) : Exception(string.Join("; ", errors))
{
    public IReadOnlyList<string> Errors { get; } = errors;
}
