using Dashboard.Benchmarks;

// Usage: dotnet run -c Release --project tests/Dashboard.Benchmarks -- readers [rules] | live [pings] | capture [senders [parallel [ring KiB]]] | matrix [networks] | history [runs] | changes [count] | explain [depth] | circuits [pages [replicas 1|2]] | agents [count] | metrics [rules] | firewall-history [rules [changes per minute]] | failover [rounds] | snap folder width height /path...
var what = args.Length > 0 ? args[0] : "readers";
int Arg(int fallback, int at = 1) => args.Length > at ? int.Parse(args[at], System.Globalization.CultureInfo.InvariantCulture) : fallback;
return what switch
{
    "readers" => await ReaderBenchmark.RunAsync(Arg(10_000)),
    "live" => await LiveBenchmark.RunAsync(Arg(20)),
    "capture" => await CaptureBenchmark.RunAsync(Arg(4), parallel: Arg(1, 2), bufferKiB: Arg(2048, 3)),
    "matrix" => MatrixBenchmark.Run(Arg(50), 10_000),
    "history" => await HistoryBenchmark.RunAsync(Arg(100_000)),
    "changes" => await ChangeBenchmark.RunAsync(Arg(20)),
    "explain" => ExplainBenchmark.Run(Arg(40)),
    "circuits" => await CircuitsBenchmark.RunAsync(Arg(100), Arg(1, 2)),
    "agents" => await AgentsBenchmark.RunAsync(Arg(50)),
    "metrics" => await MetricsBenchmark.RunAsync(Arg(10_000)),
    "firewall-history" => await FirewallHistoryBenchmark.RunAsync(Arg(2_000), Arg(1_000, 2)),
    "failover" => await FailoverBenchmark.RunAsync(Arg(5)),
    "snap" => await Snapshots.RunAsync(args[1], Arg(1440, 2), Arg(900, 3), args[4..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Dashboard.Benchmarks readers [rules] | live [pings] | capture [senders [parallel [ring KiB]]] | matrix [networks] | history [runs] | changes [count] | explain [depth] | circuits [pages [replicas 1|2]] | agents [count] | metrics [rules] | firewall-history [rules [changes per minute]] | failover [rounds] | snap folder width height /path...");
    return 64;
}
