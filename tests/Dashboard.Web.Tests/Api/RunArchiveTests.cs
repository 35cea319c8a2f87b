using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.Web.Experiments;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Api;

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

    private async Task<Guid> SeedRunAsync()
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
        db.RunProbes.Add(new RunProbe { RunId = id, Order = 0, Kind = "ping", From = "c2", To = "c1", Address = "172.18.0.2", Sent = 3, Received = 3, Predicted = true, PredictedRule = "filter DOCKER-USER #2: ...", Output = "3 packets transmitted, 3 packets received" });
        db.RunRuleDeltas.Add(new RunRuleDelta { RunId = id, Table = "filter", Chain = "DOCKER-USER", Position = 1, Rule = "-A DOCKER-USER -s 172.18.0.0/24 -d 172.19.0.0/24 -j ACCEPT", Owner = "Dashboard", DeltaPackets = 3, DeltaBytes = 252, Change = "added" });
        var folder = Path.Combine(_factory.DataDirectory, "runs", id.ToString("N"));
        Directory.CreateDirectory(folder);
        await File.WriteAllBytesAsync(Path.Combine(folder, "br-test.pcap"), [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0]);
        db.RunCaptures.Add(new RunCapture { RunId = id, Interface = "br-test", Network = "net1", PcapFile = Path.Combine("runs", id.ToString("N"), "br-test.pcap"), Packets = 2, Stored = 2, KernelDrops = 0 });
        for (var i = 0; i < 2; i++)
        {
            db.RunPackets.Add(new RunPacket { RunId = id, Interface = "br-test", Timestamp = started.AddMilliseconds(i), Length = 98, Protocol = "ICMP", Source = "172.18.0.1", Destination = "172.18.0.2", Summary = $"IP 172.18.0.1 > 172.18.0.2: ICMP echo request, id 1, seq {i}, length 64" });
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
        foreach (var field in new[] { "variant", "status", "author", "startedAt", "endedAt", "probesSent", "probesReceived", "outcome", "experiment" })
        {
            Assert.Equal(a.GetProperty("summary").GetProperty(field).ToString(), b.GetProperty("summary").GetProperty(field).ToString());
        }

        Assert.StartsWith("upload.zip from ", b.GetProperty("summary").GetProperty("origin").GetString(), StringComparison.Ordinal);
        foreach (var list in new[] { "probes", "deltas" })
        {
            Assert.Equal(Strip(a.GetProperty(list)), Strip(b.GetProperty(list)));
        }

        Assert.Equal(a.GetProperty("engineVersion").GetString(), b.GetProperty("engineVersion").GetString());
        Assert.Equal(a.GetProperty("artifacts").EnumerateArray().Select(x => x.GetString()).Order(), b.GetProperty("artifacts").EnumerateArray().Select(x => x.GetString()).Order());
        var capture = b.GetProperty("captures")[0];
        Assert.Equal(2, capture.GetProperty("packets").GetInt64());
        var pcap = await _client.GetByteArrayAsync($"/api/runs/{imported}/captures/{capture.GetProperty("id").GetInt64()}/pcap");
        Assert.Equal(24, pcap.Length);

        // Compared with its original, nothing differs.
        var cmp = await _client.GetFromJsonAsync<JsonElement>($"/api/runs/compare?a={id}&b={imported}");
        Assert.Empty(cmp.GetProperty("rulesOnlyInA").EnumerateArray());
        Assert.Equal(cmp.GetProperty("timelineA").GetArrayLength(), cmp.GetProperty("timelineB").GetArrayLength());
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

    public static TheoryData<string> Hostile => ["not-a-zip", "traversal", "absolute", "bomb", "schema", "no-manifest", "bad-scenario", "fake-pcap", "foreign-pcap", "duplicate"];

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
            "schema" => Zip(("manifest.json", Text(manifest.Replace("\"schemaVersion\": 1", "\"schemaVersion\": 2", StringComparison.Ordinal)))),
            "no-manifest" => Zip(($"{folder}packets.json", Text("[]"))),
            "bad-scenario" => Zip(("manifest.json", Text(manifest.Replace("\"to\": \"c1\"", "\"to\": \"nobody\"", StringComparison.Ordinal)))),
            "fake-pcap" => Zip(("manifest.json", Text(manifest)), ($"{folder}pcap/br-test.pcap", Text("#!/bin/sh\nreboot\n"))),
            "foreign-pcap" => Zip(("manifest.json", Text(manifest.Replace($"{folder}pcap/br-test.pcap", $"runs/{Guid.NewGuid():N}/pcap/br-test.pcap", StringComparison.Ordinal))), ($"runs/{Guid.NewGuid():N}/pcap/br-test.pcap", [0xd4, 0xc3, 0xb2, 0xa1])),
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
