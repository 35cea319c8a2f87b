using System.Globalization;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.App.Runs;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Benchmarks;

/// <summary>
/// Issue 6's benchmark on a real SQLite file made by the migrations: the history's first page over 10,000 runs (with
/// and without filters), and the comparison of two runs with 10,000 captured packets each.
/// </summary>
internal static class HistoryBenchmark
{
    public static async Task<int> RunAsync(int runs)
    {
        var folder = Directory.CreateTempSubdirectory("netlab-history-bench-").FullName;
        try
        {
            var services = new ServiceCollection();
            services.AddDashboardData(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Data:Directory"] = folder }).Build());
            await using var sp = services.BuildServiceProvider();
            await sp.MigrateDashboardDatabaseAsync();
            var factory = sp.GetRequiredService<IDbContextFactory<DashboardDbContext>>();
            Guid experiment;
            var (a, b) = (Guid.NewGuid(), Guid.NewGuid());
            await using (var db = await factory.CreateDbContextAsync())
            {
                await RunService.EnsureBuiltInsAsync(db);
                experiment = (await db.Experiments.SingleAsync()).Id;
                var t0 = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
                string[] variants = ["isolated", "docker-user", "isolation-head"];
                string[] authors = ["alice", "bob", "carol", "dave"];
                db.ChangeTracker.AutoDetectChangesEnabled = false;
                for (var i = 0; i < runs; i++)
                {
                    var ok = i % 3 != 0;
                    db.Runs.Add(new Run
                    {
                        Id = i == 0 ? a : i == 1 ? b : Guid.NewGuid(),
                        LabId = 1,
                        ExperimentId = experiment,
                        ExperimentName = RunService.BuiltInSeedName,
                        Variant = variants[i % 3],
                        Status = i % 50 == 0 ? RunStatus.Failed : RunStatus.Succeeded,
                        Author = authors[i % 4],
                        StartedAt = t0.AddMinutes(i),
                        EndedAt = t0.AddMinutes(i).AddSeconds(9),
                        ProbesSent = 3,
                        ProbesReceived = ok ? 3 : 0,
                        Outcome = ok ? "3 of 3 replies" : "0 of 3 replies",
                    });
                }

                await db.SaveChangesAsync();

                // Two runs with 10,000 packets each, on two bridges, and their rule deltas and topologies.
                foreach (var (id, k) in new[] { (a, 0), (b, 1) })
                {
                    db.RunArtifacts.Add(new RunArtifact { RunId = id, Kind = "topology", Content = $$"""{"networks":[{"name":"nlrun-{{k}}-net1","bridge":"br-{{k}}aaaaaaaaaa","subnet":"172.18.{{k}}.0/24","gateway":"172.18.{{k}}.1"},{"name":"nlrun-{{k}}-net2","bridge":"br-{{k}}bbbbbbbbbb","subnet":"172.19.{{k}}.0/24","gateway":"172.19.{{k}}.1"}],"containers":[{"name":"nlrun-{{k}}-c1","address":"172.18.{{k}}.2"},{"name":"nlrun-{{k}}-c2","address":"172.19.{{k}}.2"}]}""" });
                    db.RunCaptures.Add(new RunCapture { RunId = id, Interface = $"br-{k}aaaaaaaaaa", Network = "net1", Packets = 5000, Stored = 5000 });
                    db.RunCaptures.Add(new RunCapture { RunId = id, Interface = $"br-{k}bbbbbbbbbb", Network = "net2", Packets = 5000, Stored = 5000 });
                    for (var i = 0; i < 10_000; i++)
                    {
                        var (iface, src, dst) = i % 2 == 0 ? ($"br-{k}bbbbbbbbbb", $"172.19.{k}.2", $"172.18.{k}.2") : ($"br-{k}aaaaaaaaaa", $"172.18.{k}.1", $"172.18.{k}.2");
                        // Decoded as a run stores them, so the comparison's flow analysis does its real work (NAT on net1).
                        db.RunPackets.Add(new RunPacket
                        {
                            RunId = id, Interface = iface, Timestamp = t0.AddMilliseconds(i * 10), Length = 98, Protocol = "ICMP", Source = src, Destination = dst,
                            Summary = $"IP {src} > {dst}: ICMP echo request, id 7, seq {i / 2}, length 64",
                            Decoded = true, EtherType = 0x0800, IpProtocol = 1, IcmpType = 8, IcmpCode = 0, IcmpId = 7, IcmpSequence = i / 2,
                        });
                    }

                    db.RunProbes.Add(new RunProbe { RunId = id, Order = 0, Kind = "ping", From = "c2", To = "c1", Address = $"172.18.{k}.2", Sent = 3, Received = 0, Output = "" });

                    for (var i = 0; i < 60; i++)
                    {
                        db.RunRuleDeltas.Add(new RunRuleDelta { RunId = id, Table = "filter", Chain = i < 2 ? "DOCKER-USER" : "FORWARD", Position = i + 1, Rule = $"-A FORWARD -i br-{k}aaaaaaaaaa -o rule{i} -j ACCEPT", Owner = "Docker", DeltaPackets = (i + k) % 3, DeltaBytes = 84 });
                    }
                }

                await db.SaveChangesAsync();
            }

            Console.WriteLine($"== Run history over {runs:N0} runs, and a comparison of two runs with 10,000 packets each (SQLite file, schema by the migrations) ==");
            async Task<Stats> TimeAsync(Func<DashboardDbContext, Task> action) => await Measure.TimeAsync(async () =>
            {
                await using var db = await factory.CreateDbContextAsync();
                await action(db);
            }, warmup: 2, iterations: 15);

            var first = await TimeAsync(db => RunQueries.ListAsync(db, 1, new RunFilter()));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"first page (25, newest first, with the total): {first} (target < 100 ms: {(first.Median < 100 ? "MET" : "NOT MET")})"));
            var filtered = await TimeAsync(db => RunQueries.ListAsync(db, 1, new RunFilter(experiment, "docker-user", RunStatus.Succeeded, "bob")));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"first page filtered by experiment, variant, outcome and author: {filtered}"));
            var last = await TimeAsync(db => RunQueries.ListAsync(db, 1, new RunFilter(Page: runs / 25)));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"last page: {last}"));
            var compare = await TimeAsync(db => RunQueries.CompareAsync(db, 1, a, b));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"comparison of two runs, 10,000 packets each: {compare} (target < 300 ms: {(compare.Median < 300 ? "MET" : "NOT MET")})"));
            return 0;
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }
}
