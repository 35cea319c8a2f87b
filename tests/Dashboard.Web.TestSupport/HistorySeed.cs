using Dashboard.App.Runs;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.TestSupport;

/// <summary>
/// A run history as runs leave it, written straight to a migrated database: <c>runs</c> runs of the built-in seed
/// experiment a minute apart (variants, authors and outcomes in turn), and for the first two a full record: topology,
/// two captures (with pcap files when a data folder is given), <c>packets</c> decoded packets each, a probe and 60 rule
/// deltas. Used by the move test and the history benchmarks.
/// </summary>
public static class HistorySeed
{
    public static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Seeds; returns the experiment and the two fully recorded runs.</summary>
    public static async Task<(Guid Experiment, Guid A, Guid B)> SeedAsync(DashboardDbContext db, int runs, int packets = 10_000, string? dataDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(db);
        await RunService.EnsureBuiltInsAsync(db);
        var experiment = (await db.Experiments.SingleAsync()).Id;
        var (a, b) = (Guid.NewGuid(), Guid.NewGuid());
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
                StartedAt = Start.AddMinutes(i),
                EndedAt = Start.AddMinutes(i).AddSeconds(9),
                ProbesSent = 3,
                ProbesReceived = ok ? 3 : 0,
                Outcome = ok ? "3 of 3 replies" : "0 of 3 replies",
            });
        }

        await db.SaveChangesAsync();
        db.ChangeTracker.Clear();

        // Two runs recorded in full, on two bridges: their packets decoded as a run stores them (NAT on net1).
        foreach (var (id, k) in new[] { (a, 0), (b, 1) })
        {
            db.RunArtifacts.Add(new RunArtifact { RunId = id, Kind = "topology", Content = $$"""{"networks":[{"name":"nlrun-{{k}}-net1","bridge":"br-{{k}}aaaaaaaaaa","subnet":"172.18.{{k}}.0/24","gateway":"172.18.{{k}}.1"},{"name":"nlrun-{{k}}-net2","bridge":"br-{{k}}bbbbbbbbbb","subnet":"172.19.{{k}}.0/24","gateway":"172.19.{{k}}.1"}],"containers":[{"name":"nlrun-{{k}}-c1","address":"172.18.{{k}}.2"},{"name":"nlrun-{{k}}-c2","address":"172.19.{{k}}.2"}]}""" });
            foreach (var (iface, net) in new[] { ($"br-{k}aaaaaaaaaa", "net1"), ($"br-{k}bbbbbbbbbb", "net2") })
            {
                string? file = null;
                if (dataDirectory is not null)
                {
                    file = Path.Combine("runs", id.ToString("N"), iface + ".pcap");
                    Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(dataDirectory, file))!);
                    await File.WriteAllBytesAsync(Path.Combine(dataDirectory, file), [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0]);
                }

                db.RunCaptures.Add(new RunCapture { RunId = id, Interface = iface, Network = net, PcapFile = file, Packets = packets / 2, Stored = packets / 2 });
            }

            for (var i = 0; i < packets; i++)
            {
                var (iface, src, dst) = i % 2 == 0 ? ($"br-{k}bbbbbbbbbb", $"172.19.{k}.2", $"172.18.{k}.2") : ($"br-{k}aaaaaaaaaa", $"172.18.{k}.1", $"172.18.{k}.2");
                db.RunPackets.Add(new RunPacket
                {
                    RunId = id, Interface = iface, Timestamp = Start.AddMilliseconds(i * 10), Length = 98, Protocol = "ICMP", Source = src, Destination = dst,
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
        db.ChangeTracker.Clear();
        return (experiment, a, b);
    }
}
