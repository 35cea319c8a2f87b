using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Host.Tests.Oracle;

/// <summary>
/// The evaluator against the kernel, on the real Docker dumps of <c>../shared/fixtures</c>: each dump is loaded into a
/// scratch router namespace and every ordered pair of its networks is probed with one real echo request. The
/// evaluator's request verdict must equal whether the request arrived, its reply verdict whether the reply came back,
/// and its deciding rule must be one the packets met (its counter moved in the router). No expectation is written by
/// hand: the kernel decides.
/// </summary>
[Trait("Category", "RealHost")]
public partial class KernelOracleTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>The dump's published ports: <c>-A DOCKER ! -i BRIDGE -p tcp -m tcp --dport PORT -j DNAT --to-destination ADDRESS:PORT</c>.</summary>
    private static IEnumerable<(int Port, string Target, int TargetPort)> PublishedPorts(string dump) =>
        Dnat().Matches(dump).Concat(NftDnat().Matches(dump)).Select(m => (int.Parse(m.Groups["port"].Value, System.Globalization.CultureInfo.InvariantCulture), m.Groups["to"].Value, int.Parse(m.Groups["toport"].Value, System.Globalization.CultureInfo.InvariantCulture)));

    [System.Text.RegularExpressions.GeneratedRegex(@"-A DOCKER ! -i \S+ -p tcp -m tcp --dport (?<port>\d+) -j DNAT --to-destination (?<to>[\d.]+):(?<toport>\d+)")]
    private static partial System.Text.RegularExpressions.Regex Dnat();

    /// <summary>Docker 29's nftables form: <c>iifname != "BRIDGE" tcp dport PORT counter dnat to ADDRESS:PORT</c>.</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"iifname != ""\S+"" tcp dport (?<port>\d+) .*dnat to (?<to>[\d.]+):(?<toport>\d+)")]
    private static partial System.Text.RegularExpressions.Regex NftDnat();

    [SkippableTheory]
    [InlineData("docker-17-seed-isolated.save")]
    [InlineData("docker-17-seed-accept.save")]
    [InlineData("docker-20.10-two-networks-isolated.save")]
    [InlineData("docker-20.10-two-networks-docker-user-accept.save")]
    [InlineData("docker-20.10-two-networks-stage1-accept.save")]
    [InlineData("docker-28.5-bridge1-published-port.save")]
    [InlineData("docker-20.10-two-networks-isolated.save", "-s 172.19.0.0/16 -d 172.18.0.0/16 -j ACCEPT")]
    public async Task EveryPairOfTheDumpsNetworks_TheEvaluatorSaysWhatTheKernelDoes(string fixture, string? dockerUserRule = null)
    {
        Dashboard.TestSupport.RealHost.Require();
        // Probes use lab addresses only: the 28.5 dump's network in TEST-NET-1 (192.0.2.0/24) moves into 172.16.0.0/12,
        // in the text both the kernel and the evaluator read.
        var dump = TestPaths.ReadShared(Path.Combine("iptables", fixture)).Replace("192.0.2.", "172.31.250.", StringComparison.Ordinal);
        if (dockerUserRule is not null)
        {
            // A flow's extra rule (here a one-direction ACCEPT: the request gets through, the reply dies in isolation).
            dump = dump.Replace("-A DOCKER-USER -j RETURN", $"-A DOCKER-USER {dockerUserRule}\n-A DOCKER-USER -j RETURN", StringComparison.Ordinal);
            Assert.Contains(dockerUserRule, dump, StringComparison.Ordinal);
        }

        await AgreesAsync(dump, IptablesSaveReader.Read(dump, TableFamily.Ipv4));
    }

    /// <summary>Docker 29's nftables layout: the kernel loads the <c>nft list ruleset</c> text, the evaluator reads the same ruleset as <c>nft -j</c> JSON.</summary>
    [SkippableFact]
    public async Task Docker29Nftables_EveryPairAndThePublishedPort_TheEvaluatorSaysWhatTheKernelDoes()
    {
        Dashboard.TestSupport.RealHost.Require();
        var text = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "tests", "Dashboard.Core.Tests", "Fixtures", "nft", "docker-29-bridge1-published-port.nft")).Replace("192.0.2.", "172.31.250.", StringComparison.Ordinal);
        var json = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "tests", "Dashboard.Core.Tests", "Fixtures", "nft", "docker-29-bridge1-published-port.json")).Replace("192.0.2.", "172.31.250.", StringComparison.Ordinal);
        await AgreesAsync(text, NftJsonReader.Read(json));
    }

    private async Task AgreesAsync(string dump, Ruleset ruleset)
    {
        await using var oracle = await KernelOracle.BuildAsync(dump);
        var context = new EvaluationContext { InterfaceAddresses = oracle.Networks.ToDictionary(n => n.Bridge, n => n.Gateway) };

        var disagreements = new List<string>();
        var probes = 0;
        foreach (var from in oracle.Networks)
        {
            foreach (var to in oracle.Networks.Where(n => n != from))
            {
                var flow = new FlowSpec { InInterface = from.Bridge, OutInterface = to.Bridge, Source = from.Endpoint, Destination = to.Endpoint };
                var predicted = PacketEvaluator.Explain(ruleset, flow, context);
                var kernel = await oracle.PingAsync(from, to);
                probes++;
                output.WriteLine($"{from.Bridge} → {to.Bridge}: predicted {predicted.Outcome}; kernel: request {(kernel.RequestArrived ? "delivered" : "not delivered")}, reply {(kernel.ReplyArrived ? "back" : "not back")}");
                var requestPredicted = predicted.Request.Verdict == Verdict.Accept;
                var replyPredicted = requestPredicted && predicted.Reply?.Verdict == Verdict.Accept;
                var where = $"{from.Bridge} {from.Endpoint} → {to.Bridge} {to.Endpoint}";
                if (requestPredicted != kernel.RequestArrived)
                {
                    disagreements.Add($"{where}: request predicted {predicted.Request.Verdict} by {predicted.Request.DecidingRule?.Rule}, kernel {(kernel.RequestArrived ? "delivered it" : "did not deliver it")}");
                }
                else if (replyPredicted != kernel.ReplyArrived)
                {
                    disagreements.Add($"{where}: reply predicted {predicted.Reply?.Verdict} by {predicted.Reply?.DecidingRule?.Rule}, kernel {(kernel.ReplyArrived ? "delivered it" : "did not deliver it")}");
                }

                if (predicted.Request.DecidingRule is { Position: { } position } rule && !kernel.RulesMet.Contains((rule.Table, rule.Chain, position)))
                {
                    disagreements.Add($"{where}: the request's deciding rule {rule.Chain} {position} ({rule.Rule}) is not among the rules the kernel's counters say it met");
                }
            }
        }

        // Published ports (a DNAT in the dump's nat DOCKER chain): a TCP connection from outside Docker's networks (as
        // from the host's NIC) to the router's address there, at the published port.
        foreach (var (port, target, targetPort) in PublishedPorts(dump))
        {
            var listener = oracle.Networks.Single(n => n.Endpoint == target);
            var from = oracle.Outside;
            var flow = new FlowSpec { InInterface = from.Bridge, OutInterface = listener.Bridge, Source = from.Endpoint, Destination = from.Gateway, Protocol = "tcp", DestinationPort = port };
            var local = new EvaluationContext
            {
                InterfaceAddresses = oracle.Networks.Append(from).ToDictionary(n => n.Bridge, n => n.Gateway),
                LocalAddresses = oracle.Networks.Append(from).Select(n => n.Gateway).ToHashSet(),
            };
            var predicted = PacketEvaluator.Explain(ruleset, flow, local);
            var kernel = await oracle.ConnectAsync(from, from.Gateway, port, listener, targetPort);
            probes++;
            var seen = $"{from.Endpoint} → {from.Gateway}:{port} (published, to {target}:{targetPort}): predicted {predicted.Outcome} (NAT to {predicted.Request.NatDestination}); kernel: SYN {(kernel.RequestArrived ? "delivered" : "not delivered")}, connection {(kernel.ReplyArrived ? "established" : "not established")}";
            output.WriteLine(seen);
            var requestPredicted = predicted.Request.Verdict == Verdict.Accept && predicted.Request.NatDestination == target;
            if (requestPredicted != kernel.RequestArrived || (requestPredicted && predicted.Reply?.Verdict == Verdict.Accept) != kernel.ReplyArrived)
            {
                disagreements.Add(seen);
            }
        }

        output.WriteLine($"agreement: {probes} probes, {probes - disagreements.Count} agreed, {disagreements.Count} disagreed");
        Assert.True(probes >= 2, $"{probes} probes");
        Assert.Empty(disagreements);
    }
}
