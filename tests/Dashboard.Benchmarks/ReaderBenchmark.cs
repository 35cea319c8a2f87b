using System.Globalization;
using System.Text;
using Dashboard.Core.Firewall;
using Dashboard.Host.Processes;

namespace Dashboard.Benchmarks;

/// <summary>
/// Issue 2's benchmark: reader throughput on generated 10,000-rule dumps, and parse time of the host's own
/// <c>iptables-save -c</c> output beside the time iptables-save takes to print it, with 10,000 rules in a scratch chain.
/// </summary>
internal static class ReaderBenchmark
{
    public static async Task<int> RunAsync(int rules)
    {
        Console.WriteLine($"== Ruleset readers, {rules:N0} rules ==");
        var save = Generated.IptablesSave(rules);
        var json = Generated.NftJson(rules);
        Check(IptablesSaveReader.Read(save).RuleCount == rules, "generated iptables-save parses to every rule");
        Check(NftJsonReader.Read(json).RuleCount == rules, "generated nft JSON parses to every rule");
        Console.WriteLine("(clean heap: collected before each timed run; back-to-back: GC of earlier results included)");
        foreach (var (name, size, read) in new (string, int, Action)[]
        {
            ("iptables-save text", save.Length, () => IptablesSaveReader.Read(save)),
            ("nft JSON          ", json.Length, () => NftJsonReader.Read(json)),
        })
        {
            var clean = Measure.Time(read, collectFirst: true);
            var busy = Measure.Time(read);
            Console.WriteLine($"{name} ({size / 1024.0 / 1024:0.00} MiB) clean heap:   {clean}  → {rules / clean.Median * 1000:N0} rules/s");
            Console.WriteLine($"{name} ({size / 1024.0 / 1024:0.00} MiB) back-to-back: {busy}  → {rules / busy.Median * 1000:N0} rules/s");
        }

        // Incremental: the same rules with other counters, read in turn through one cache.
        var moved = Generated.IptablesSave(rules, counterSeed: 1);
        Check(moved != save, "the second generated dump differs in its counters");
        var cache = new IptablesParseCache();
        var turn = 0;
        var incremental = Measure.Time(() => IptablesSaveReader.Read(turn++ % 2 == 0 ? moved : save, TableFamily.Ipv4, cache));
        Console.WriteLine($"iptables-save text incremental (cache, counters changed): {incremental}  → {rules / incremental.Median * 1000:N0} rules/s");

        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            Console.WriteLine("host comparison skipped: needs root on Linux with iptables");
            return 0;
        }

        return await CompareWithHostAsync(rules);
    }

    private static async Task<int> CompareWithHostAsync(int rules)
    {
        var runner = new ProcessRunner();
        var id = Guid.NewGuid().ToString("N")[..6];
        var chain = $"NETLAB-BENCH-{id}";
        var tag = RuleTag.For($"bench-{id}");
        var bodies = Enumerable.Range(0, rules).Select(i => Generated.RuleBody(i, tag)).ToList();
        var load = new StringBuilder($"*filter\n:{chain} - [0:0]\n");
        foreach (var b in bodies)
        {
            load.Append("-A ").Append(chain).Append(' ').Append(b).Append('\n');
        }

        load.Append("COMMIT\n");
        Console.WriteLine($"\n== Host: {rules:N0} rules loaded into scratch chain {chain} (not jumped to from anywhere; tagged {tag}) ==");
        var loaded = await runner.RunAsync("iptables-restore", ["-w", "5", "--noflush"], load.ToString(), TimeSpan.FromMinutes(5));
        if (!loaded.Succeeded)
        {
            Console.WriteLine($"could not load the scratch chain: {loaded.Message}");
            return 1;
        }

        try
        {
            string output = "";
            var printStats = await Measure.TimeAsync(async () =>
            {
                var r = await runner.RunAsync("iptables-save", ["-c"], TimeSpan.FromMinutes(2));
                output = r.StdOut;
            });
            var parsed = IptablesSaveReader.Read(output);
            var inChain = parsed.FindTable("filter")!.FindChain(chain)!.Rules.Count;
            Check(inChain == rules, $"the host printed all {rules} scratch rules and they parse ({inChain})");
            var parseStats = Measure.Time(() => IptablesSaveReader.Read(output), collectFirst: true);
            var parseBusy = Measure.Time(() => IptablesSaveReader.Read(output));
            var classifyStats = Measure.Time(() => RuleClassifier.Classify(parsed), collectFirst: true);

            // The collector's way: one parse cache per host, two real reads of the host taken in turn (what changes
            // between them is counters), each read parsing only what the cache does not hold.
            var again = (await runner.RunAsync("iptables-save", ["-c"], TimeSpan.FromMinutes(2))).StdOut;
            var cache = new IptablesParseCache();
            IptablesSaveReader.Read(output, TableFamily.Ipv4, cache);
            var turn = 0;
            var incremental = Measure.Time(() => IptablesSaveReader.Read(turn++ % 2 == 0 ? again : output, TableFamily.Ipv4, cache));
            Check(IptablesSaveReader.Read(again, TableFamily.Ipv4, cache).RuleCount == IptablesSaveReader.Read(again).RuleCount, "the cached read gives every rule");
            var ratio = parseStats.Median / printStats.Median;
            var ratioBusy = parseBusy.Median / printStats.Median;
            var ratioIncremental = incremental.Median / printStats.Median;
            Console.WriteLine($"iptables-save -c (whole host, {parsed.RuleCount:N0} rules, {output.Length / 1024.0 / 1024:0.00} MiB): {printStats}");
            Console.WriteLine($"IptablesSaveReader.Read, clean heap:               {parseStats}");
            Console.WriteLine($"IptablesSaveReader.Read, back-to-back:             {parseBusy}");
            Console.WriteLine($"IptablesSaveReader.Read, incremental (cache):      {incremental}  ({cache.Hits:N0} rule lines from the cache, {cache.Misses:N0} parsed)");
            Console.WriteLine($"RuleClassifier.Classify on that ruleset:           {classifyStats}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"parse / print = {ratio:P1} clean heap, {ratioBusy:P1} back-to-back (target < 10%): {(ratio < 0.10 ? "MET" : "NOT MET")} clean, {(ratioBusy < 0.10 ? "MET" : "NOT MET")} back-to-back"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"incremental parse / print = {ratioIncremental:P1} back-to-back (target ≤ 5%): {(ratioIncremental <= 0.05 ? "MET" : "NOT MET")}"));

            var nft = await runner.RunAsync("nft", ["-j", "list", "ruleset"], TimeSpan.FromMinutes(2));
            if (nft.Succeeded)
            {
                var nftPrint = await Measure.TimeAsync(() => runner.RunAsync("nft", ["-j", "list", "ruleset"], TimeSpan.FromMinutes(2)));
                var nftParse = Measure.Time(() => NftJsonReader.Read(nft.StdOut), collectFirst: true);
                Console.WriteLine($"nft -j list ruleset (same host, iptables-nft rules as xt expressions, {nft.StdOut.Length / 1024.0 / 1024:0.00} MiB): {nftPrint}");
                Console.WriteLine($"NftJsonReader.Read on that output, clean heap:     {nftParse}");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"parse / print = {nftParse.Median / nftPrint.Median:P1}"));
            }
            else
            {
                Console.WriteLine($"nft not available ({nft.Message}): nft comparison skipped");
            }

            return ratio < 0.10 ? 0 : 2;
        }
        finally
        {
            // Remove exactly the rules loaded above, by specification, then the chain (empty, created here).
            var remove = new StringBuilder("*filter\n");
            foreach (var b in bodies)
            {
                remove.Append("-D ").Append(chain).Append(' ').Append(b).Append('\n');
            }

            remove.Append("COMMIT\n");
            var removed = await runner.RunAsync("iptables-restore", ["-w", "5", "--noflush"], remove.ToString(), TimeSpan.FromMinutes(5));
            var dropped = await runner.RunAsync("iptables", ["-w", "5", "-t", "filter", "-X", chain], TimeSpan.FromMinutes(1));
            Console.WriteLine(removed.Succeeded && dropped.Succeeded
                ? $"scratch chain {chain} and its {rules:N0} rules removed"
                : $"CLEANUP PROBLEM: {removed.Message} {dropped.Message}");
        }
    }

    private static void Check(bool ok, string what)
    {
        if (!ok)
        {
            throw new InvalidOperationException("benchmark self-check failed: " + what);
        }
    }
}
