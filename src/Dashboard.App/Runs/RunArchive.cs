using System.IO.Compression;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dashboard.Core.Experiments;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.App.Runs;

/// <summary>An archive that is not imported, and why; nothing of it was kept.</summary>
public sealed class ImportRejectedException(string message) : Exception(message);

public sealed record ImportResult(Guid ExperimentId, string Experiment, IReadOnlyList<Guid> Runs);

/// <summary>
/// One file for a run or an experiment: a zip with <c>manifest.json</c> (schema version, experiment and scenario, each
/// run's record, probes, counter deltas, captures), each run's artifacts (rulesets, topology, commands) as text, its
/// decoded packets, and its pcaps. Import checks everything before it writes anything (size, entry names, compression
/// ratio, schema, scenario, pcap headers) and then stores it in one transaction: all of it or none.
/// </summary>
public static partial class RunArchive
{
    /// <summary>2: packets carry their decoded header fields and microsecond timestamps. 1 is still read (its packets are decoded again from the pcaps).</summary>
    public const int SchemaVersion = 2;
    public const long MaxArchiveBytes = 100L * 1024 * 1024;
    public const long MaxUnpackedBytes = 400L * 1024 * 1024;
    public const int MaxEntries = 2_000;
    public const int MaxCompressionRatio = 200;
    public const int MaxDeltasPerRun = 50_000;

    /// <summary>Packets (from packets.json and decoded pcaps) one archive brings at most: bounds memory and the time the database is locked.</summary>
    public const int MaxPacketsPerArchive = 200_000;

    private static readonly JsonSerializerOptions Json = ScenarioDefinition.Json;

    [GeneratedRegex(@"^(manifest\.json|runs/[0-9a-f]{32}/(artifacts/[a-z-]{1,40}\.txt|packets\.json|pcap/[A-Za-z0-9_.@-]{1,20}\.pcap))$", RegexOptions.CultureInvariant)]
    private static partial Regex AllowedEntry();

    public sealed record Manifest(int SchemaVersion, string Kind, DateTimeOffset ExportedAt, string? SourceHost, ExperimentRecord Experiment, IReadOnlyList<RunRecord> Runs);

    public sealed record ExperimentRecord(string Name, string? Description, JsonElement Scenario);

    public sealed record RunRecord(Guid Id, string Variant, RunStatus Status, string Author, DateTimeOffset StartedAt, DateTimeOffset? EndedAt, string? Host, string? EngineVersion, string? FirewallBackend,
        string? Layout, int ProbesSent, int ProbesReceived, string? Outcome, string? Error, string? LastStep, string? Origin,
        IReadOnlyList<ProbeRecord> Probes, IReadOnlyList<DeltaRecord> Deltas, IReadOnlyList<CaptureRecord> Captures, IReadOnlyList<string> Artifacts);

    public sealed record ProbeRecord(int Order, string Kind, string From, string To, string Address, int? Port, int Sent, int Received, bool? Predicted, string? PredictedRule, string Output);

    public sealed record DeltaRecord(string Table, string Chain, int Position, string Rule, string Owner, long DeltaPackets, long DeltaBytes, string? Change);

    public sealed record CaptureRecord(string Interface, string Network, string? Pcap, long Packets, long Stored, long? KernelDrops);

    public sealed record PacketRecord(string Interface, DateTimeOffset Timestamp, int Length, string Protocol, string? Source, string? Destination, string Summary,
        int? EtherType = null, int? IpProtocol = null, int? SourcePort = null, int? DestinationPort = null, int? IcmpType = null, int? IcmpCode = null,
        int? IcmpId = null, int? IcmpSequence = null, int? TcpFlags = null);

    /// <summary>Writes the runs (all of one experiment) to <paramref name="output"/> as a zip.</summary>
    public static async Task ExportAsync(DashboardDbContext db, string dataDirectory, Guid experimentId, IReadOnlyList<Guid> runIds, string kind, string host, Stream output, CancellationToken ct = default)
    {
        var experiment = await db.Experiments.AsNoTracking().SingleAsync(e => e.Id == experimentId, ct);
        var records = new List<RunRecord>();
        using var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true);
        foreach (var id in runIds)
        {
            var r = await db.Runs.AsNoTracking().SingleAsync(x => x.Id == id, ct);
            var folder = $"runs/{id:N}/";
            var artifacts = await db.RunArtifacts.AsNoTracking().Where(a => a.RunId == id).ToListAsync(ct);
            foreach (var a in artifacts)
            {
                await WriteAsync(zip, $"{folder}artifacts/{a.Kind}.txt", a.Content, ct);
            }

            var packets = await db.RunPackets.AsNoTracking().Where(p => p.RunId == id).OrderBy(p => p.Timestamp)
                .Select(p => new PacketRecord(p.Interface, p.Timestamp, p.Length, p.Protocol, p.Source, p.Destination, p.Summary,
                    p.Decoded ? p.EtherType : null, p.IpProtocol, p.SourcePort, p.DestinationPort, p.IcmpType, p.IcmpCode, p.IcmpId, p.IcmpSequence, p.TcpFlags)).ToListAsync(ct);
            await WriteAsync(zip, $"{folder}packets.json", JsonSerializer.Serialize(packets, Json), ct);

            var captures = new List<CaptureRecord>();
            foreach (var c in await db.RunCaptures.AsNoTracking().Where(c => c.RunId == id).ToListAsync(ct))
            {
                string? pcap = null;
                if (c.PcapFile is { } f && File.Exists(Path.Combine(dataDirectory, f)))
                {
                    pcap = $"{folder}pcap/{c.Interface}.pcap";
                    await using var entry = zip.CreateEntry(pcap, CompressionLevel.Optimal).Open();
                    await using var file = File.OpenRead(Path.Combine(dataDirectory, f));
                    await file.CopyToAsync(entry, ct);
                }

                captures.Add(new CaptureRecord(c.Interface, c.Network, pcap, c.Packets, c.Stored, c.KernelDrops));
            }

            var probes = await db.RunProbes.AsNoTracking().Where(p => p.RunId == id).OrderBy(p => p.Order)
                .Select(p => new ProbeRecord(p.Order, p.Kind, p.From, p.To, p.Address, p.Port, p.Sent, p.Received, p.Predicted, p.PredictedRule, p.Output)).ToListAsync(ct);
            var deltas = await db.RunRuleDeltas.AsNoTracking().Where(d => d.RunId == id).OrderBy(d => d.Id)
                .Select(d => new DeltaRecord(d.Table, d.Chain, d.Position, d.Rule, d.Owner, d.DeltaPackets, d.DeltaBytes, d.Change)).ToListAsync(ct);
            records.Add(new RunRecord(r.Id, r.Variant, r.Status, r.Author, r.StartedAt, r.EndedAt, r.Host, r.EngineVersion, r.FirewallBackend, r.Layout, r.ProbesSent, r.ProbesReceived,
                r.Outcome, r.Error, r.LastStep, r.Origin, probes, deltas, captures, [.. artifacts.Select(a => a.Kind)]));
        }

        var manifest = new Manifest(SchemaVersion, kind, DateTimeOffset.UtcNow, host,
            new ExperimentRecord(experiment.Name, experiment.Description, JsonSerializer.Deserialize<JsonElement>(experiment.ScenarioJson)), records);
        await WriteAsync(zip, "manifest.json", JsonSerializer.Serialize(manifest, Json), ct);
    }

    private static async Task WriteAsync(ZipArchive zip, string name, string content, CancellationToken ct)
    {
        await using var s = zip.CreateEntry(name, CompressionLevel.Optimal).Open();
        await using var w = new StreamWriter(s);
        await w.WriteAsync(content.AsMemory(), ct);
    }

    /// <summary>
    /// Validates the whole archive, then stores it in <paramref name="labId"/>; throws <see cref="ImportRejectedException"/>
    /// with the first problem, having stored nothing. The steps: a bounded read of the upload, the entries' checks, the
    /// manifest, each run read and checked, then one transaction.
    /// </summary>
    public static async Task<ImportResult> ImportAsync(DashboardDbContext db, string dataDirectory, int labId, Stream archive, string fileName, string importedBy, CancellationToken ct = default)
    {
        using var buffer = await ReadUploadAsync(archive, ct);
        using var zip = OpenZip(buffer);
        CheckEntries(zip);
        var (manifest, scenario, experimentName) = await ReadManifestAsync(zip, ct);
        var origin = Shorten($"{Path.GetFileName(fileName)}{(manifest.SourceHost is null ? "" : " from " + manifest.SourceHost)}", 280)!;
        var batch = new ImportBatch(zip, labId, importedBy, origin, manifest.SchemaVersion, experimentName);
        foreach (var r in manifest.Runs)
        {
            batch.Runs.Add(await ReadRunAsync(batch, r, scenario, ct));
        }

        return await StoreAsync(db, dataDirectory, batch, manifest, scenario, ct);
    }

    /// <summary>What one import gathers before it stores anything.</summary>
    private sealed class ImportBatch(ZipArchive zip, int labId, string importedBy, string origin, int schemaVersion, string experimentName)
    {
        public ZipArchive Zip { get; } = zip;
        public int LabId { get; } = labId;
        public string ImportedBy { get; } = importedBy;
        public string Origin { get; } = origin;
        public int SchemaVersion { get; } = schemaVersion;
        public string ExperimentName { get; } = experimentName;
        public List<(string Entry, string Target)> StagedPcaps { get; } = [];
        public List<ImportedRun> Runs { get; } = [];
        public int TotalPackets { get; set; }
    }

    private sealed record ImportedRun(Run Run, List<RunArtifact> Artifacts, List<RunProbe> Probes, List<RunRuleDelta> Deltas, List<RunCapture> Captures, List<RunPacket> Packets);

    /// <summary>1. Bounded copy: the upload itself.</summary>
    private static async Task<MemoryStream> ReadUploadAsync(Stream archive, CancellationToken ct)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = await archive.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + n > MaxArchiveBytes)
            {
                throw new ImportRejectedException($"the file is larger than {MaxArchiveBytes / 1024 / 1024} MiB");
            }

            buffer.Write(chunk, 0, n);
        }

        buffer.Position = 0;
        return buffer;
    }

    private static ZipArchive OpenZip(MemoryStream buffer)
    {
        try
        {
            return new ZipArchive(buffer, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException ex)
        {
            throw new ImportRejectedException($"not a zip archive: {ex.Message}");
        }
    }

    /// <summary>2. Entries: allowed names only, bounded count, size and compression ratio (zip bombs), no duplicates.</summary>
    private static void CheckEntries(ZipArchive zip)
    {
        if (zip.Entries.Count > MaxEntries)
        {
            throw new ImportRejectedException($"more than {MaxEntries} entries");
        }

        long unpacked = 0;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in zip.Entries)
        {
            if (!AllowedEntry().IsMatch(e.FullName))
            {
                throw new ImportRejectedException($"unexpected entry '{Shorten(e.FullName)}' (only manifest.json and runs/<id>/... are allowed; no paths outside the archive)");
            }

            if (!names.Add(e.FullName))
            {
                throw new ImportRejectedException($"entry '{e.FullName}' appears twice");
            }

            unpacked += e.Length;
            if (e.Length > MaxUnpackedBytes || unpacked > MaxUnpackedBytes)
            {
                throw new ImportRejectedException($"the archive unpacks to more than {MaxUnpackedBytes / 1024 / 1024} MiB");
            }

            if (e.CompressedLength > 0 && e.Length / e.CompressedLength > MaxCompressionRatio)
            {
                throw new ImportRejectedException($"entry '{e.FullName}' is compressed {e.Length / e.CompressedLength}:1, more than a real export ever is");
            }
        }
    }

    /// <summary>3. The manifest: schema version, experiment name, scenario, records.</summary>
    private static async Task<(Manifest Manifest, ScenarioDefinition Scenario, string ExperimentName)> ReadManifestAsync(ZipArchive zip, CancellationToken ct)
    {
        var manifestEntry = zip.GetEntry("manifest.json") ?? throw new ImportRejectedException("manifest.json is missing");
        Manifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<Manifest>(await ReadBoundedAsync(manifestEntry, ct), Json) ?? throw new ImportRejectedException("manifest.json is empty");
        }
        catch (JsonException ex)
        {
            throw new ImportRejectedException($"manifest.json is not valid: {ex.Message}");
        }

        if (manifest.SchemaVersion is not (1 or SchemaVersion))
        {
            throw new ImportRejectedException($"schema version {manifest.SchemaVersion} is not supported (this dashboard reads 1 and {SchemaVersion})");
        }

        if (manifest.Experiment?.Name is not { Length: >= 1 and <= 100 } experimentName || manifest.Runs is null || manifest.Runs.Count > 1000)
        {
            throw new ImportRejectedException("the manifest needs an experiment name (1-100 characters) and at most 1,000 runs");
        }

        ScenarioDefinition scenario;
        try
        {
            scenario = ScenarioDefinition.Parse(manifest.Experiment.Scenario.GetRawText(), strict: true);
        }
        catch (ScenarioException ex)
        {
            throw new ImportRejectedException($"the scenario is not valid: {ex.Message}");
        }

        return (manifest, scenario, experimentName);
    }

    /// <summary>One run of the manifest, read and checked: its record, artifacts, packets, captures, probes and deltas.</summary>
    private static async Task<ImportedRun> ReadRunAsync(ImportBatch batch, RunRecord? r, ScenarioDefinition scenario, CancellationToken ct)
    {
        if (r is null || !scenario.Variants.Any(v => v.Name == r.Variant) || r.Author is not { Length: >= 1 and <= 100 } || (r.Probes?.Count ?? 0) > ScenarioDefinition.MaxProbes || (r.Artifacts?.Count ?? 0) > 20)
        {
            throw new ImportRejectedException($"run {r?.Id} does not fit its scenario (variant, author, probes)");
        }

        if ((r.Captures?.Count ?? 0) > ScenarioDefinition.MaxNetworks || (r.Deltas?.Count ?? 0) > MaxDeltasPerRun)
        {
            throw new ImportRejectedException($"run {r.Id}: at most {ScenarioDefinition.MaxNetworks} captures and {MaxDeltasPerRun:N0} counter deltas per run");
        }

        var id = Guid.NewGuid();
        var folder = $"runs/{r.Id:N}/";
        var run = new Run
        {
            Id = id,
            LabId = batch.LabId,
            ExperimentName = batch.ExperimentName,
            Variant = r.Variant,
            Status = r.Status == RunStatus.Running ? RunStatus.Interrupted : r.Status,
            // The importer is the author here; who recorded it elsewhere is part of its origin, not a claim.
            Author = Shorten(batch.ImportedBy, 100)!,
            StartedAt = r.StartedAt,
            EndedAt = r.EndedAt,
            Host = Shorten(r.Host, 200),
            EngineVersion = Shorten(r.EngineVersion, 100),
            FirewallBackend = Shorten(r.FirewallBackend, 100),
            Layout = Shorten(r.Layout, 100),
            ProbesSent = r.ProbesSent,
            ProbesReceived = r.ProbesReceived,
            Outcome = Shorten(r.Outcome, 200),
            Error = Shorten(r.Error, 3900),
            LastStep = Shorten(r.LastStep, 200),
            Origin = Shorten($"{r.Origin ?? batch.Origin} · recorded by {r.Author}", 300),
        };
        var artifacts = new List<RunArtifact>();
        foreach (var kind in r.Artifacts ?? [])
        {
            var entry = batch.Zip.GetEntry($"{folder}artifacts/{kind}.txt") ?? throw new ImportRejectedException($"run {r.Id}: artifact '{Shorten(kind)}' is listed but missing");
            artifacts.Add(new RunArtifact { RunId = id, Kind = kind, Content = await ReadBoundedAsync(entry, ct) });
        }

        var packets = await ReadPacketsAsync(batch, r, id, folder, ct);
        var captures = await ReadCapturesAsync(batch, r, id, folder, packets, ct);
        var probes = (r.Probes ?? []).Select(p => new RunProbe { RunId = id, Order = p.Order, Kind = Shorten(p.Kind, 10)!, From = Shorten(p.From, 40)!, To = Shorten(p.To, 40)!, Address = Shorten(p.Address, 60)!, Port = p.Port, Sent = p.Sent, Received = p.Received, Predicted = p.Predicted, PredictedRule = Shorten(p.PredictedRule, 1000), Output = Shorten(p.Output, 4000) ?? "" }).ToList();
        var deltas = (r.Deltas ?? []).Select(d => new RunRuleDelta { RunId = id, Table = Shorten(d.Table, 40)!, Chain = Shorten(d.Chain, 100)!, Position = d.Position, Rule = Shorten(d.Rule, 4000)!, Owner = Shorten(d.Owner, 20)!, DeltaPackets = d.DeltaPackets, DeltaBytes = d.DeltaBytes, Change = Shorten(d.Change, 10) }).ToList();
        return new ImportedRun(run, artifacts, probes, deltas, captures, packets);
    }

    /// <summary>A run's packets.json, streamed record by record and counted as it goes (refused at the first one over the cap).</summary>
    private static async Task<List<RunPacket>> ReadPacketsAsync(ImportBatch batch, RunRecord r, Guid id, string folder, CancellationToken ct)
    {
        var packets = new List<RunPacket>();
        if (batch.Zip.GetEntry($"{folder}packets.json") is { } pe)
        {
            // Streamed record by record and counted as it goes: a packets.json of millions of records is refused
            // at the first one over the cap, never held whole in memory.
            var cap = Math.Min(RunPackets.MaxStoredPerCapture * Math.Max(1, r.Captures?.Count ?? 0), MaxPacketsPerArchive - batch.TotalPackets);
            var list = new List<PacketRecord>();
            if (pe.Length > 64 * 1024 * 1024)
            {
                throw new ImportRejectedException($"run {r.Id}: packets.json is larger than 64 MiB");
            }

            try
            {
                // .NET inflates an entry to its declared length at most, checked just above.
                await using var ps = pe.Open();
                await foreach (var p in JsonSerializer.DeserializeAsyncEnumerable<PacketRecord>(ps, Json, ct))
                {
                    if (list.Count >= cap)
                    {
                        throw new ImportRejectedException($"run {r.Id}: packets.json holds more than {cap:N0} packets (at most {RunPackets.MaxStoredPerCapture:N0} per capture and {MaxPacketsPerArchive:N0} per archive)");
                    }

                    if (p is not null)
                    {
                        list.Add(p);
                    }
                }
            }
            catch (JsonException ex)
            {
                throw new ImportRejectedException($"run {r.Id}: packets.json is not valid: {ex.Message}");
            }

            batch.TotalPackets += list.Count;
            packets.AddRange(list.Select(p => new RunPacket
            {
                RunId = id, Interface = Shorten(p.Interface, 20) ?? "", Timestamp = p.Timestamp, Length = p.Length, Protocol = Shorten(p.Protocol, 20) ?? "",
                Source = Shorten(p.Source, 60), Destination = Shorten(p.Destination, 60), Summary = Shorten(p.Summary, 500) ?? "",
                Decoded = batch.SchemaVersion >= 2 && p.EtherType is not null, EtherType = p.EtherType ?? -1, IpProtocol = p.IpProtocol, SourcePort = p.SourcePort,
                DestinationPort = p.DestinationPort, IcmpType = p.IcmpType, IcmpCode = p.IcmpCode, IcmpId = p.IcmpId, IcmpSequence = p.IcmpSequence, TcpFlags = p.TcpFlags,
            }));
        }

        return packets;
    }

    /// <summary>A run's captures: pcaps checked and staged, their packets decoded from the pcap (authoritative over packets.json).</summary>
    private static async Task<List<RunCapture>> ReadCapturesAsync(ImportBatch batch, RunRecord r, Guid id, string folder, List<RunPacket> packets, CancellationToken ct)
    {
        var captures = new List<RunCapture>();
        foreach (var c in r.Captures ?? [])
        {
            string? target = null;
            if (c.Pcap is not null)
            {
                var entry = batch.Zip.GetEntry(c.Pcap) ?? throw new ImportRejectedException($"run {r.Id}: pcap '{Shorten(c.Pcap)}' is listed but missing");
                if (!c.Pcap.StartsWith(folder, StringComparison.Ordinal))
                {
                    throw new ImportRejectedException($"run {r.Id}: pcap '{Shorten(c.Pcap)}' belongs to another run");
                }

                await using (var s = entry.Open())
                {
                    var magic = new byte[4];
                    if (await s.ReadAtLeastAsync(magic, 4, throwOnEndOfStream: false, ct) < 4 || !IsPcapMagic(magic))
                    {
                        throw new ImportRejectedException($"run {r.Id}: '{Shorten(c.Pcap)}' is not a pcap file");
                    }
                }

                target = Path.Combine("runs", id.ToString("N"), Path.GetFileName(c.Pcap));
                batch.StagedPcaps.Add((c.Pcap, target));

                // The pcap is the record of what was seen: its packets are decoded here rather than taken from packets.json.
                var iface = Shorten(c.Interface, 20) ?? "";
                try
                {
                    await using var ps = entry.Open();
                    var removed = packets.RemoveAll(p => p.Interface == iface);
                    var (_, rows) = await RunPackets.DecodeAsync(ps, id, iface, Math.Min(RunPackets.MaxStoredPerCapture, MaxPacketsPerArchive - batch.TotalPackets + removed), ct);
                    packets.AddRange(rows);
                    batch.TotalPackets += rows.Count - removed;
                }
                catch (InvalidDataException ex)
                {
                    throw new ImportRejectedException($"run {r.Id}: '{Shorten(c.Pcap)}' is not a readable pcap: {ex.Message}");
                }
            }

            captures.Add(new RunCapture { RunId = id, Interface = Shorten(c.Interface, 20)!, Network = Shorten(c.Network, 40)!, PcapFile = target, Packets = c.Packets, Stored = c.Stored, KernelDrops = c.KernelDrops });
        }

        return captures;
    }

    /// <summary>4. Store: one transaction; pcaps written to a staging folder and moved in only after the commit.</summary>
    private static async Task<ImportResult> StoreAsync(DashboardDbContext db, string dataDirectory, ImportBatch batch, Manifest manifest, ScenarioDefinition scenario, CancellationToken ct)
    {
        var staging = Directory.CreateDirectory(Path.Combine(dataDirectory, "import-staging", Guid.NewGuid().ToString("N"))).FullName;
        try
        {
            foreach (var (entry, target) in batch.StagedPcaps)
            {
                var staged = Path.Combine(staging, target);
                Directory.CreateDirectory(Path.GetDirectoryName(staged)!);
                var e = batch.Zip.GetEntry(entry)!;
                await using var input = e.Open();
                await using var output = File.Create(staged);
                await CopyBoundedAsync(input, output, e.Length, entry, ct);
            }

            await using var tx = await db.Database.BeginTransactionAsync(ct);
            var scenarioJson = scenario.ToJson();
            var experiment = await db.Experiments.FirstOrDefaultAsync(e => e.LabId == batch.LabId && e.Name == batch.ExperimentName, ct);
            if (experiment is null || experiment.ScenarioJson != scenarioJson)
            {
                var name = experiment is null ? batch.ExperimentName : Shorten($"{batch.ExperimentName} (imported {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm:ss})", 100)!;
                experiment = new Experiment { Id = Guid.NewGuid(), LabId = batch.LabId, Name = name, Description = Shorten(manifest.Experiment.Description, 2000), ScenarioJson = scenarioJson, CreatedBy = "import", CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow, Origin = batch.Origin };
                db.Experiments.Add(experiment);
            }

            foreach (var (run, artifacts, probes, deltas, captures, packets) in batch.Runs)
            {
                run.ExperimentId = experiment.Id;
                run.ExperimentName = experiment.Name;
                db.Runs.Add(run);
                db.RunArtifacts.AddRange(artifacts);
                db.RunProbes.AddRange(probes);
                db.RunRuleDeltas.AddRange(deltas);
                db.RunCaptures.AddRange(captures);
                db.RunPackets.AddRange(packets);
            }

            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
            foreach (var (_, target) in batch.StagedPcaps)
            {
                var final = Path.Combine(dataDirectory, target);
                Directory.CreateDirectory(Path.GetDirectoryName(final)!);
                File.Move(Path.Combine(staging, target), final, overwrite: true);
            }

            return new ImportResult(experiment.Id, experiment.Name, [.. batch.Runs.Select(r => r.Run.Id)]);
        }
        catch (DbUpdateException ex)
        {
            throw new ImportRejectedException($"the archive's records do not fit this database: {ex.InnerException?.Message ?? ex.Message}");
        }
        catch (InvalidDataException ex)
        {
            throw new ImportRejectedException($"the archive is damaged: {ex.Message}");
        }
        finally
        {
            Directory.Delete(staging, recursive: true);
        }
    }

    private static bool IsPcapMagic(byte[] m) =>
        (m[0], m[1], m[2], m[3]) is (0xd4, 0xc3, 0xb2, 0xa1) or (0xa1, 0xb2, 0xc3, 0xd4) or (0x4d, 0x3c, 0xb2, 0xa1) or (0xa1, 0xb2, 0x3c, 0x4d);

    private static async Task<string> ReadBoundedAsync(ZipArchiveEntry entry, CancellationToken ct)
    {
        if (entry.Length > 64 * 1024 * 1024)
        {
            throw new ImportRejectedException($"'{entry.FullName}' is larger than 64 MiB");
        }

        // Bounded whatever the entry claims: a forged size cannot make this read more.
        await using var s = entry.Open();
        using var ms = new MemoryStream();
        await CopyBoundedAsync(s, ms, 64 * 1024 * 1024, entry.FullName, ct);
        return System.Text.Encoding.UTF8.GetString(ms.GetBuffer(), 0, (int)ms.Length);
    }

    private static async Task CopyBoundedAsync(Stream from, Stream to, long max, string name, CancellationToken ct)
    {
        var buffer = new byte[81920];
        long total = 0;
        int n;
        while ((n = await from.ReadAsync(buffer, ct)) > 0)
        {
            total += n;
            if (total > max)
            {
                throw new ImportRejectedException($"'{name}' unpacks to more than it says");
            }

            await to.WriteAsync(buffer.AsMemory(0, n), ct);
        }
    }

    /// <summary>At most <paramref name="max"/> characters, NUL (which PostgreSQL's text cannot hold) shown as U+FFFD.</summary>
    private static string? Shorten(string? s, int max = 80) => s is null ? null : (s.Length > max ? s[..max] : s).Replace('\0', '\uFFFD');
}
