using System.Text.RegularExpressions;

namespace Dashboard.Host.Tests.Oracle;

/// <summary>One case of the oracle: a dump as loaded, named by what was added to it.</summary>
internal sealed record OracleCase(string Variant, string Dump);

/// <summary>
/// The variants users try, generated from a dump for its two first user networks A and B (docker0 when the dump has
/// fewer): an ACCEPT pair in DOCKER-USER, one direction only, a DROP in DOCKER-USER, the seed's source ACCEPTs at the
/// head of the isolation chain, and for nftables an accept (or a drop) in a table of its own. Only what the dump's
/// layout has a place for: Docker 17 has no DOCKER-USER, 29 has no isolation chain, nftables has neither. Every
/// added rule carries the comment <c>netlab:oracle-variant</c>.
/// </summary>
internal static partial class OracleVariants
{
    public const string Tag = "netlab:oracle-variant";

    public static IReadOnlyList<OracleCase> Of(string dump)
    {
        var cases = new List<OracleCase> { new("as dumped", dump) };
        var networks = KernelOracle.NetworksOf(dump);
        var users = networks.Where(n => n.Bridge != "docker0").Concat(networks.Where(n => n.Bridge == "docker0")).Take(2).ToList();
        if (users.Count < 2)
        {
            return cases;
        }

        var (a, b) = (users[0], users[1]);
        if (IsNftables(dump))
        {
            cases.Add(new($"accept {a.Bridge}⇄{b.Bridge} in a table of its own", dump + NftTable("accept", $"iifname \"{a.Bridge}\" oifname \"{b.Bridge}\" counter accept", $"iifname \"{b.Bridge}\" oifname \"{a.Bridge}\" counter accept")));
            cases.Add(new($"drop into {a.Bridge} in a table of its own", dump + NftTable("drop", $"oifname \"{a.Bridge}\" counter drop")));
            return cases;
        }

        if (HasChain(dump, "DOCKER-USER"))
        {
            cases.Add(new($"ACCEPT pair {a.Bridge}⇄{b.Bridge} in DOCKER-USER", InsertAtHead(dump, "DOCKER-USER", $"-i {a.Bridge} -o {b.Bridge}", $"-i {b.Bridge} -o {a.Bridge}")));
            cases.Add(new($"ACCEPT {a.Bridge}→{b.Bridge} only, in DOCKER-USER", InsertAtHead(dump, "DOCKER-USER", $"-i {a.Bridge} -o {b.Bridge}")));
            cases.Add(new($"DROP into {a.Bridge} in DOCKER-USER", InsertRules(dump, "DOCKER-USER", "DROP", $"-o {a.Bridge}")));
        }

        var isolation = HasChain(dump, "DOCKER-ISOLATION-STAGE-1") ? "DOCKER-ISOLATION-STAGE-1" : HasChain(dump, "DOCKER-ISOLATION") ? "DOCKER-ISOLATION" : null;
        if (isolation is not null)
        {
            cases.Add(new($"source ACCEPTs for {a.Subnet} and {b.Subnet} at the head of {isolation}", InsertAtHead(dump, isolation, $"-s {a.Subnet}", $"-s {b.Subnet}")));
        }

        return cases;
    }

    public static bool IsNftables(string dump) => dump.Contains("table ip ", StringComparison.Ordinal) && !dump.Contains("\n*filter", StringComparison.Ordinal);

    private static bool HasChain(string dump, string chain) => dump.Contains($"\n:{chain} ", StringComparison.Ordinal);

    private static string InsertAtHead(string dump, string chain, params string[] matches) => InsertRules(dump, chain, "ACCEPT", matches);

    /// <summary>Rules inserted before the first rule of <paramref name="chain"/> in the filter table (or before its COMMIT when the chain is empty), as iptables-restore reads them.</summary>
    private static string InsertRules(string dump, string chain, string target, params string[] matches)
    {
        var filter = dump.IndexOf("*filter\n", StringComparison.Ordinal);
        var commit = dump.IndexOf("\nCOMMIT", filter, StringComparison.Ordinal);
        var counters = dump.Contains("] -A ", StringComparison.Ordinal) ? "[0:0] " : "";
        var lines = string.Concat(matches.Select(m => $"{counters}-A {chain} {m} -m comment --comment {Tag} -j {target}\n"));
        var first = FirstRule(chain).Match(dump, filter, commit - filter);
        var at = first.Success ? first.Index : commit + 1;
        return dump.Insert(at, lines);
    }

    private static Regex FirstRule(string chain) => new($@"^(?:\[\d+:\d+\] )?-A {Regex.Escape(chain)} ", RegexOptions.Multiline);

    private static string NftTable(string name, params string[] rules) =>
        $"table ip netlab-oracle-{name} {{\n\tchain forward {{\n\t\ttype filter hook forward priority filter - 10; policy accept;\n"
        + string.Concat(rules.Select(r => $"\t\t{r} comment \"{Tag}\"\n"))
        + "\t}\n}\n";
}
