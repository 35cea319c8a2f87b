using System.Diagnostics;
using System.Globalization;
using System.Text;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;

namespace Dashboard.Benchmarks;

/// <summary>
/// Issue 5's benchmark: the isolation matrix for 50 × 50 networks on a 10,000-rule ruleset (Docker 20.10's layout for
/// 50 bridges, the rest user rules in DOCKER-USER that every forwarded packet walks), request and reply per cell.
/// </summary>
internal static class MatrixBenchmark
{
    public static int Run(int networks, int rules)
    {
        var text = Ruleset(networks, rules, out var endpoints);
        var ruleset = IptablesSaveReader.Read(text, TableFamily.Ipv4);
        var context = new EvaluationContext { InterfaceAddresses = endpoints.ToDictionary(e => e.Interface, e => e.Peer!) };
        Console.WriteLine($"== Isolation matrix: {networks} x {networks} networks ({networks * networks} cells, request and reply each), {ruleset.RuleCount} rules, {Environment.ProcessorCount} cores ==");

        var sw = Stopwatch.StartNew();
        var first = IsolationMatrices.Build(ruleset, endpoints, MatrixProbe.Ping, context);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"first matrix (compiles the ruleset once): {sw.Elapsed.TotalMilliseconds:0} ms"));

        var stats = Measure.Time(() => IsolationMatrices.Build(ruleset, endpoints, MatrixProbe.Ping, context), warmup: 2, iterations: 15);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"matrix on the compiled ruleset: {stats} (target < 200 ms: {(stats.Median < 200 ? "MET" : "NOT MET")})"));
        var edited = IptablesSaveReader.Read(text, TableFamily.Ipv4);
        var cold = Measure.Time(() => IsolationMatrices.Build(IptablesSaveReader.Read(text, TableFamily.Ipv4), endpoints, MatrixProbe.Ping, context), warmup: 1, iterations: 7);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"parse + compile + matrix (a new ruleset each time, as after a rule change): {cold}"));
        var tcp = Measure.Time(() => IsolationMatrices.Build(edited, endpoints, new MatrixProbe("tcp", 443), context), warmup: 2, iterations: 15);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"TCP/443 matrix: {tcp}"));

        var ok = first.Cells.Count(c => c.Succeeds);
        Console.WriteLine($"sanity: {ok} of {first.Cells.Count} cells answered (the {networks} same-network cells; every other pair is isolated)");
        return 0;
    }

    private static string Ruleset(int networks, int total, out List<MatrixEndpoint> endpoints)
    {
        endpoints = [];
        var forward = new StringBuilder();
        var stage1 = new StringBuilder();
        var stage2 = new StringBuilder();
        var nat = new StringBuilder();
        for (var i = 0; i < networks; i++)
        {
            var br = $"br-{0xb000_0000_0000L + i:x12}";
            var subnet = $"172.{20 + i / 250}.{i % 250}";
            endpoints.Add(new MatrixEndpoint($"net{i}", $"net{i}", br, subnet + ".2", null, subnet + ".1", null, false, subnet + ".0/24"));
            forward.Append($"-A FORWARD -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -o {br} -j DOCKER\n-A FORWARD -i {br} ! -o {br} -j ACCEPT\n-A FORWARD -i {br} -o {br} -j ACCEPT\n");
            stage1.Append($"-A DOCKER-ISOLATION-STAGE-1 -i {br} ! -o {br} -j DOCKER-ISOLATION-STAGE-2\n");
            stage2.Append($"-A DOCKER-ISOLATION-STAGE-2 -o {br} -j DROP\n");
            nat.Append($"-A POSTROUTING -s {subnet}.0/24 ! -o {br} -j MASQUERADE\n-A DOCKER -i {br} -j RETURN\n");
        }

        var docker = networks * 6 + 3;
        var sb = new StringBuilder();
        sb.Append("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n:DOCKER-ISOLATION-STAGE-1 - [0:0]\n:DOCKER-ISOLATION-STAGE-2 - [0:0]\n:DOCKER-USER - [0:0]\n");
        sb.Append("-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-ISOLATION-STAGE-1\n").Append(forward);
        sb.Append(stage1).Append("-A DOCKER-ISOLATION-STAGE-1 -j RETURN\n").Append(stage2).Append("-A DOCKER-ISOLATION-STAGE-2 -j RETURN\n");

        // User rules that a lab packet walks past without matching (other addresses and ports), then RETURN.
        for (var i = 0; i < total - docker - networks * 2; i++)
        {
            sb.Append("-A DOCKER-USER ").Append(Generated.RuleBody(i).Replace("172.", "10.", StringComparison.Ordinal)).Append('\n');
        }

        sb.Append("-A DOCKER-USER -j RETURN\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n");
        sb.Append("-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n").Append(nat).Append("COMMIT\n");
        return sb.ToString();
    }
}
