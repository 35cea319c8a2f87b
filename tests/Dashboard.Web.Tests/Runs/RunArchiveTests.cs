using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.App.Runs;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Runs;

/// <summary>Export then import gives an equal run; malformed and hostile archives are refused whole. A real SQLite file, schema by the migrations.</summary>
public sealed class RunArchiveTests : IDisposable
{
    private readonly DashboardFactory _factory = new();
    private readonly HttpClient _client;

    public RunArchiveTests() => _client = _factory.CreateClient();

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
    }

    private static readonly (string Network, string Bridge)[] FixtureBridges = [("net1", "br-c45a0ec488ce"), ("net2", "br-49a8c2441132")];

    private const string FixtureTopology = """
        {"networks":[{"name":"nlrun-0a1b2c3d-net1","id":"c45a0ec488ce","bridge":"br-c45a0ec488ce","subnet":"172.29.1.0/24","gateway":"172.29.1.1"},
                     {"name":"nlrun-0a1b2c3d-net2","id":"49a8c2441132","bridge":"br-49a8c2441132","subnet":"172.29.2.0/24","gateway":"172.29.2.1"}],
         "containers":[{"name":"nlrun-0a1b2c3d-c1","id":"1","network":"nlrun-0a1b2c3d-net1","address":"172.29.1.2"},
                       {"name":"nlrun-0a1b2c3d-c2","id":"2","network":"nlrun-0a1b2c3d-net2","address":"172.29.2.2"}]}
        """;

    private async Task<Guid> SeedRunAsync(bool legacyRows = false)
    {
        await using var scope = _factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        await RunService.EnsureBuiltInsAsync(db);
        var experiment = await db.Experiments.SingleAsync(e => e.BuiltIn);
        var id = Guid.NewGuid();
        var started = new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);
        db.Runs.Add(new Run { Id = id, LabId = 1, ExperimentId = experiment.Id, ExperimentName = experiment.Name, Variant = "docker-user", Status = RunStatus.Succeeded, Author = "alice", StartedAt = started, EndedAt = started.AddSeconds(9), Host = "lab-host", EngineVersion = "20.10.24", FirewallBackend = "IptablesNft", Layout = "Docker18To27", ProbesSent = 3, ProbesReceived = 3, Outcome = "3 of 3 replies" });
        db.RunArtifacts.Add(new RunArtifact { RunId = id, Kind = "ruleset-before", Content = "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n" });
        db.RunArtifacts.Add(new RunArtifact { RunId = id, Kind = "scenario", Content = experiment.ScenarioJson });
        db.RunProbes.Add(new RunProbe { RunId = id, Order = 0, Kind = "ping", From = "c2", To = "c1", Address = "172.29.1.2", Sent = 3, Received = 3, Predicted = true, PredictedRule = "filter DOCKER-USER #2: ...", Output = "3 packets transmitted, 3 packets received" });
        db.RunRuleDeltas.Add(new RunRuleDelta { RunId = id, Table = "filter", Chain = "DOCKER-USER", Position = 1, Rule = "-A DOCKER-USER -s 172.18.0.0/24 -d 172.19.0.0/24 -j ACCEPT", Owner = "Dashboard", DeltaPackets = 3, DeltaBytes = 252, Change = "added" });
        db.RunArtifacts.Add(new RunArtifact { RunId = id, Kind = "topology", Content = FixtureTopology });
        var folder = Path.Combine(_factory.DataDirectory, "runs", id.ToString("N"));
        Directory.CreateDirectory(folder);
        foreach (var (network, bridge) in FixtureBridges)
        {
            // The recorded seed (docker-user variant, with a gateway's IGMP, mDNS and MLD): see Fixtures/pcap/record-seed-noisy.sh.
            var pcap = Path.Combine(folder, bridge + ".pcap");
            File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "pcap", $"seed-docker-user-{network}.pcap"), pcap);
            await using var stream = File.OpenRead(pcap);
            var (total, rows) = await RunPackets.DecodeAsync(stream, id, bridge);
            if (legacyRows)
            {
                // As rows were kept before header fields were stored: summary only.
                rows = [.. rows.Select(r => new RunPacket { RunId = id, Interface = r.Interface, Timestamp = r.Timestamp, Length = r.Length, Protocol = r.Protocol, Source = r.Source, Destination = r.Destination, Summary = r.Summary })];
            }

            db.RunPackets.AddRange(rows);
            db.RunCaptures.Add(new RunCapture { RunId = id, Interface = bridge, Network = network, PcapFile = Path.Combine("runs", id.ToString("N"), bridge + ".pcap"), Packets = total, Stored = rows.Count, KernelDrops = 0 });
        }

        await db.SaveChangesAsync();
        return id;
    }

    private async Task<(int Runs, int Experiments)> CountsAsync()
    {
        await using var scope = _factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
        return (await db.Runs.CountAsync(), await db.Experiments.CountAsync());
    }

    [Fact]
    public async Task ExportThenImport_GivesAnEqualRun_MarkedWithItsOrigin()
    {
        var id = await SeedRunAsync();
        var zip = await _client.GetByteArrayAsync($"/api/runs/{id}/export");
        var response = await _client.PostAsync("/api/runs/import", new ByteArrayContent(zip));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var result = await response.Content.ReadFromJsonAsync<JsonElement>();
        var imported = result.GetProperty("runs")[0].GetGuid();
        Assert.NotEqual(id, imported);

        var a = await _client.GetFromJsonAsync<JsonElement>($"/api/runs/{id}");
        var b = await _client.GetFromJsonAsync<JsonElement>($"/api/runs/{imported}");
        foreach (var field in new[] { "variant", "status", "startedAt", "endedAt", "probesSent", "probesReceived", "outcome", "experiment" })
        {
            Assert.Equal(a.GetProperty("summary").GetProperty(field).ToString(), b.GetProperty("summary").GetProperty(field).ToString());
        }

        // The file cannot make a run someone else's here: the importer is its author, who recorded it is its origin.
        Assert.Equal("admin", b.GetProperty("summary").GetProperty("author").GetString());
        Assert.StartsWith("upload.zip from ", b.GetProperty("summary").GetProperty("origin").GetString(), StringComparison.Ordinal);
        Assert.EndsWith("recorded by alice", b.GetProperty("summary").GetProperty("origin").GetString(), StringComparison.Ordinal);
        foreach (var list in new[] { "probes", "deltas" })
        {
            Assert.Equal(Strip(a.GetProperty(list)), Strip(b.GetProperty(list)));
        }

        Assert.Equal(a.GetProperty("engineVersion").GetString(), b.GetProperty("engineVersion").GetString());
        Assert.Equal(a.GetProperty("artifacts").EnumerateArray().Select(x => x.GetString()).Order(), b.GetProperty("artifacts").EnumerateArray().Select(x => x.GetString()).Order());
        var capture = b.GetProperty("captures").EnumerateArray().Single(c => c.GetProperty("network").GetString() == "net1");
        Assert.Equal(15, capture.GetProperty("packets").GetInt64());
        var pcap = await _client.GetByteArrayAsync($"/api/runs/{imported}/captures/{capture.GetProperty("id").GetInt64()}/pcap");
        Assert.Equal(new FileInfo(Path.Combine(AppContext.BaseDirectory, "Fixtures", "pcap", "seed-docker-user-net1.pcap")).Length, pcap.Length);

        // Compared with its original, nothing differs.
        var cmp = await _client.GetFromJsonAsync<JsonElement>($"/api/runs/compare?a={id}&b={imported}");
        Assert.Empty(cmp.GetProperty("rulesOnlyInA").EnumerateArray());
        Assert.Equal(cmp.GetProperty("timelineA").GetArrayLength(), cmp.GetProperty("timelineB").GetArrayLength());
        Assert.Equal(cmp.GetProperty("natA").ToString(), cmp.GetProperty("natB").ToString());
    }

    [Fact]
    public async Task Compare_GatewayIgmpMdnsAndMld_AreOtherTraffic_NatComesFromTheProbesFlow()
    {
        var id = await SeedRunAsync();

        var cmp = await _client.GetFromJsonAsync<JsonElement>($"/api/runs/compare?a={id}&b={id}");

        // Before: every packet whose summary began "IP {gateway} >" was NAT, so the IGMP reports and the mDNS query were too.
        var nat = cmp.GetProperty("natA").EnumerateArray().Select(n => n.GetString()).ToList();
        Assert.Equal(["on net1: ping c2 → c1, echo request: source {c2} → {net1.gateway} (gateway of net1), source NAT, 3 packets"], nat);
        var other = cmp.GetProperty("otherA").EnumerateArray().ToDictionary(o => (o.GetProperty("network").GetString(), o.GetProperty("kind").GetString()), o => o.GetProperty("packets").GetInt32());
        Assert.Equal(3, other[("net1", "IGMP")]);
        Assert.Equal(1, other[("net1", "mDNS")]);
        Assert.True(other[("net1", "ICMPv6 MLD")] > 0);
        var timeline = cmp.GetProperty("timelineA").EnumerateArray().ToList();
        Assert.All(timeline.Where(p => p.GetProperty("kind").GetString() is "IGMP" or "mDNS" or "ARP" or "ICMPv6 MLD"), p => Assert.Equal(JsonValueKind.Null, p.GetProperty("probe").ValueKind));
        Assert.Equal(12, timeline.Count(p => p.GetProperty("probe").ValueKind == JsonValueKind.Number));
    }

    [Fact]
    public async Task Timeline_PacketsWithinATenthOfAMillisecondOnTwoBridges_KeepKernelOrderToTheMicrosecond()
    {
        var id = await SeedRunAsync();

        var cmp = await _client.GetFromJsonAsync<JsonElement>($"/api/runs/compare?a={id}&b={id}");

        // The first echo: request on net2, masqueraded request on net1 44 µs later, reply on net1, reply back on net2.
        var first = cmp.GetProperty("timelineA").EnumerateArray().Where(p => p.GetProperty("probe").ValueKind == JsonValueKind.Number).Take(4)
            .Select(p => (p.GetProperty("network").GetString(), p.GetProperty("direction").GetString(), Math.Round(p.GetProperty("offsetMs").GetDouble(), 3))).ToList();
        Assert.Equal([("net2", "Request"), ("net1", "Request"), ("net1", "Reply"), ("net2", "Reply")], first.Select(f => (f.Item1, f.Item2)));
        Assert.Equal(0.044, first[1].Item3 - first[0].Item3, 3);
        Assert.True(first[3].Item3 - first[0].Item3 < 0.2);
    }

    [Fact]
    public async Task RowsKeptBeforeHeaderFields_AreDecodedAgainFromTheRunsPcap()
    {
        var id = await SeedRunAsync(legacyRows: true);
        await using (var scope = _factory.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
            var before = await _client.GetFromJsonAsync<JsonElement>($"/api/runs/compare?a={id}&b={id}");
            Assert.Empty(before.GetProperty("natA").EnumerateArray());

            var redecoded = await RunPackets.DecodeLegacyRowsAsync(db, _factory.DataDirectory, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

            Assert.Equal(2, redecoded);
            Assert.False(await db.RunPackets.AnyAsync(p => p.RunId == id && !p.Decoded));
        }

        var after = await _client.GetFromJsonAsync<JsonElement>($"/api/runs/compare?a={id}&b={id}");
        Assert.Single(after.GetProperty("natA").EnumerateArray());
    }

    private static string Strip(JsonElement list) => string.Join('\n', list.EnumerateArray().Select(e =>
        string.Join(',', e.EnumerateObject().Where(p => p.Name is not ("id" or "runId")).Select(p => $"{p.Name}={p.Value}"))));

    private static byte[] Zip(params (string Name, byte[] Content)[] entries)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, content) in entries)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.SmallestSize).Open();
                s.Write(content);
            }
        }

        return ms.ToArray();
    }

    private static byte[] Text(string s) => Encoding.UTF8.GetBytes(s);

    private async Task<string> ManifestAsync(Guid id)
    {
        var zip = new ZipArchive(new MemoryStream(await _client.GetByteArrayAsync($"/api/runs/{id}/export")));
        using var r = new StreamReader(zip.GetEntry("manifest.json")!.Open());
        return await r.ReadToEndAsync();
    }

    [Fact]
    public async Task SchemaOneArchive_IsImported_WithPacketsDecodedFromItsPcaps()
    {
        var id = await SeedRunAsync();
        var zip = new ZipArchive(new MemoryStream(await _client.GetByteArrayAsync($"/api/runs/{id}/export")));
        var folder = $"runs/{id:N}/";
        var entries = new List<(string, byte[])>();
        foreach (var e in zip.Entries)
        {
            using var ms = new MemoryStream();
            await using (var s = e.Open())
            {
                await s.CopyToAsync(ms);
            }

            var bytes = ms.ToArray();
            if (e.FullName == "manifest.json")
            {
                bytes = Text(Encoding.UTF8.GetString(bytes).Replace("\"schemaVersion\": 2", "\"schemaVersion\": 1", StringComparison.Ordinal));
            }
            else if (e.FullName == $"{folder}packets.json")
            {
                // Schema 1 kept only the summary and addresses of each packet.
                var old = JsonSerializer.Deserialize<JsonElement>(bytes).EnumerateArray().Select(p => new
                {
                    @interface = p.GetProperty("interface").GetString(), timestamp = p.GetProperty("timestamp").GetDateTimeOffset(), length = p.GetProperty("length").GetInt32(),
                    protocol = p.GetProperty("protocol").GetString(), source = p.GetProperty("source").GetString(), destination = p.GetProperty("destination").GetString(), summary = p.GetProperty("summary").GetString(),
                });
                bytes = JsonSerializer.SerializeToUtf8Bytes(old);
            }

            entries.Add((e.FullName, bytes));
        }

        var response = await _client.PostAsync("/api/runs/import", new ByteArrayContent(Zip([.. entries])));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var imported = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("runs")[0].GetGuid();
        var cmp = await _client.GetFromJsonAsync<JsonElement>($"/api/runs/compare?a={id}&b={imported}");
        Assert.Equal(cmp.GetProperty("natA").ToString(), cmp.GetProperty("natB").ToString());
        Assert.Single(cmp.GetProperty("natB").EnumerateArray());
    }

    public static TheoryData<string> Hostile => ["not-a-zip", "traversal", "absolute", "bomb", "schema", "no-manifest", "bad-scenario", "fake-pcap", "foreign-pcap", "duplicate", "too-many-packets", "host-wide-variant"];

    /// <summary>More packet records than a run with two captures may bring (10,000 each), varied so they compress as real ones do.</summary>
    private static byte[] ManyPackets(int count)
    {
        var rng = new Random(7);
        var sb = new StringBuilder("[");
        for (var i = 0; i < count; i++)
        {
            sb.Append(i == 0 ? "" : ",").Append($$"""{"interface":"br-c45a0ec488ce","timestamp":"2026-11-28T12:00:{{i % 60:00}}.{{rng.Next(999999):000000}}Z","length":{{rng.Next(60, 1500)}},"protocol":"UDP","summary":"IP 172.29.1.{{rng.Next(255)}}.{{rng.Next(65535)}} > 172.29.1.{{rng.Next(255)}}.{{rng.Next(65535)}}: UDP, length {{rng.Next(1400)}}"}""");
        }

        return Text(sb.Append(']').ToString());
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public async Task MalformedOrHostileArchives_AreRefusedWhole_WithAMessage(string kind)
    {
        var id = await SeedRunAsync();
        var manifest = await ManifestAsync(id);
        var folder = $"runs/{id:N}/";
        byte[] body = kind switch
        {
            "not-a-zip" => Text("PK this is not a zip"),
            "traversal" => Zip(("manifest.json", Text(manifest)), ("../../etc/cron.d/evil", Text("* * * * * root reboot"))),
            "absolute" => Zip(("manifest.json", Text(manifest)), ("/etc/passwd", Text("x"))),
            "bomb" => Zip(("manifest.json", Text(manifest)), ($"{folder}packets.json", new byte[50 * 1024 * 1024])),
            "schema" => Zip(("manifest.json", Text(manifest.Replace("\"schemaVersion\": 2", "\"schemaVersion\": 3", StringComparison.Ordinal)))),
            "no-manifest" => Zip(($"{folder}packets.json", Text("[]"))),
            "bad-scenario" => Zip(("manifest.json", Text(manifest.Replace("\"to\": \"c1\"", "\"to\": \"nobody\"", StringComparison.Ordinal)))),
            "too-many-packets" => Zip(("manifest.json", Text(manifest)), ($"{folder}packets.json", ManyPackets(20_001))),
            "host-wide-variant" => Zip(("manifest.json", Text(manifest.Replace("\"chain\": \"DOCKER-USER\"", "\"chain\": \"FORWARD\"", StringComparison.Ordinal)))),
            "fake-pcap" => Zip(("manifest.json", Text(manifest)), ($"{folder}pcap/br-c45a0ec488ce.pcap", Text("#!/bin/sh\nreboot\n"))),
            "foreign-pcap" => Zip(("manifest.json", Text(manifest.Replace($"{folder}pcap/br-c45a0ec488ce.pcap", $"runs/{Guid.NewGuid():N}/pcap/br-c45a0ec488ce.pcap", StringComparison.Ordinal))), ($"runs/{Guid.NewGuid():N}/pcap/br-c45a0ec488ce.pcap", [0xd4, 0xc3, 0xb2, 0xa1])),
            _ => Zip(("manifest.json", Text(manifest)), ("manifest.json", Text(manifest))),
        };
        var before = await CountsAsync();
        var response = await _client.PostAsync("/api/runs/import", new ByteArrayContent(body));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("Nothing imported", problem.GetProperty("title").GetString());
        Assert.False(string.IsNullOrWhiteSpace(problem.GetProperty("detail").GetString()));
        Assert.Equal(before, await CountsAsync());
        Assert.False(File.Exists("/etc/cron.d/evil"));
        Assert.False(Directory.Exists(Path.Combine(_factory.DataDirectory, "import-staging")) && Directory.EnumerateFileSystemEntries(Path.Combine(_factory.DataDirectory, "import-staging")).Any());
    }
}
