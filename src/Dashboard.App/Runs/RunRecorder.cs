using Dashboard.Core.Firewall;
using Dashboard.Data;
using Dashboard.Data.Entities;

namespace Dashboard.App.Runs;

/// <summary>What a run keeps: its artifacts, its captures (pcaps copied into the run's folder, packets decoded) and its counter deltas.</summary>
public sealed class RunRecorder(DashboardDbContext db, Guid runId, string dataDirectory)
{
    public void Save(string kind, string content) => db.RunArtifacts.Add(new RunArtifact { RunId = runId, Kind = kind, Content = content });

    /// <summary>Stops the captures, keeps each pcap in the run's folder and its decoded packets (up to the per-capture cap) as rows.</summary>
    public async Task StopCapturesAsync(IReadOnlyList<(IRunCapture Session, string Network)> sessions)
    {
        var folder = Path.Combine(dataDirectory, "runs", runId.ToString("N"));
        Directory.CreateDirectory(folder);
        foreach (var (s, network) in sessions)
        {
            // An interface name (checked where it came from); never a path.
            var file = $"{Path.GetFileName(s.Interface)}.pcap";
            var path = Path.Combine(folder, file);
            var drops = await s.StopAsync(path);
            long total;
            List<RunPacket> rows;
            await using (var stream = File.OpenRead(path))
            {
                (total, rows) = await RunPackets.DecodeAsync(stream, runId, s.Interface, RunPackets.MaxStoredPerCapture);
            }

            db.RunPackets.AddRange(rows);
            var stored = rows.Count;
            db.RunCaptures.Add(new RunCapture { RunId = runId, Interface = s.Interface, Network = network, PcapFile = Path.Combine("runs", runId.ToString("N"), file), Packets = total, Stored = stored, KernelDrops = drops });
        }

        await db.SaveChangesAsync(CancellationToken.None);
    }

    /// <summary>Each rule's counter change across the run (and rules added or removed meanwhile).</summary>
    public void AddDeltas(Ruleset before, Ruleset after)
    {
        RuleClassifier.Classify(after);
        var old = before.Rules.ToDictionary(RuleId.Of, r => r);
        var seen = new HashSet<RuleId>();
        foreach (var r in after.Rules)
        {
            var id = RuleId.Of(r);
            seen.Add(id);
            var had = old.GetValueOrDefault(id);
            var deltaPackets = had is null ? (long)r.Packets : (long)r.Packets - (long)had.Packets;
            var deltaBytes = had is null ? (long)r.Bytes : (long)r.Bytes - (long)had.Bytes;
            if (had is null || deltaPackets != 0)
            {
                db.RunRuleDeltas.Add(new RunRuleDelta { RunId = runId, Table = r.Table, Chain = r.Chain, Position = r.Position, Rule = r.Text, Owner = r.Owner.ToString(), DeltaPackets = deltaPackets, DeltaBytes = deltaBytes, Change = had is null ? "added" : null });
            }
        }

        foreach (var (id, r) in old.Where(kv => !seen.Contains(kv.Key)))
        {
            db.RunRuleDeltas.Add(new RunRuleDelta { RunId = runId, Table = r.Table, Chain = r.Chain, Position = r.Position, Rule = r.Text, Owner = r.Owner.ToString(), Change = "removed" });
        }
    }
}
