using System.Diagnostics;
using System.Net;
using Dashboard.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Hosting;

public class WebRootAndDatabaseTests
{
    [Fact]
    public async Task Get_CssFromRootWwwroot_IsServedAsInTheRepository()
    {
        using var factory = new DashboardFactory();
        using var client = factory.CreateClient();

        var css = await client.GetStringAsync("/css/app.css");

        Assert.Equal(await File.ReadAllTextAsync(Path.Combine(TestPaths.RepoRoot, "wwwroot", "css", "app.css")), css);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/img/favicon.svg")).StatusCode);
    }

    [Fact]
    public async Task Startup_EmptyDataFolder_AppliesMigrationsAndCreatesTheFirstLab()
    {
        // The embedded default: a SQLite file in the data folder (PostgreSQL's start from empty: Data.ProviderTests).
        using var factory = new DashboardFactory(provider: DataOptions.Sqlite);
        using var client = factory.CreateClient();
        await client.GetAsync("/css/app.css");

        var dbFactory = factory.Services.GetRequiredService<IDbContextFactory<DashboardDbContext>>();
        await using var db = await dbFactory.CreateDbContextAsync();
        Assert.True(File.Exists(factory.DatabasePath));
        Assert.Contains(await db.Database.GetAppliedMigrationsAsync(), m => m.EndsWith("_InitialCreate", StringComparison.Ordinal));
        Assert.Empty(await db.Database.GetPendingMigrationsAsync());
        Assert.Equal("Default lab", (await db.Labs.SingleAsync()).Name);
        var mode = await db.Database.SqlQueryRaw<string>("PRAGMA journal_mode").ToListAsync();
        Assert.Equal("wal", mode.Single());
    }

    [Fact]
    public async Task Migration_RunPacketFields_TurnsTheOldTimestampsIntoTheSameInstantsInUtcTicks()
    {
        var folder = Directory.CreateTempSubdirectory("netlab-migration-").FullName;
        try
        {
            var options = new DbContextOptionsBuilder<DashboardDbContext>()
                .UseSqlite($"Data Source={Path.Combine(folder, "old.db")};Pooling=False", b => b.MigrationsAssembly(Dashboard.Data.ServiceCollectionExtensions.MigrationsAssembly)).Options;
            await using var db = new DashboardDbContext(options);
            var migrator = Microsoft.EntityFrameworkCore.Infrastructure.AccessorExtensions.GetService<Microsoft.EntityFrameworkCore.Migrations.IMigrator>(db);
            await migrator.MigrateAsync("20261128213048_TeamLabs");

            // Written as the earlier schema did: EF's DateTimeOffset binary form, at +02:00 and at UTC.
            var converter = new Microsoft.EntityFrameworkCore.Storage.ValueConversion.DateTimeOffsetToBinaryConverter();
            var atPlusTwo = new DateTimeOffset(2026, 11, 28, 14, 0, 0, 123, TimeSpan.FromHours(2)).AddTicks(4000);
            var atUtc = new DateTimeOffset(2026, 11, 28, 12, 0, 1, 0, TimeSpan.Zero);
            await db.Database.OpenConnectionAsync();
            await db.Database.ExecuteSqlRawAsync("PRAGMA foreign_keys = OFF");
            foreach (var (t, i) in new[] { (atPlusTwo, 1), (atUtc, 2) })
            {
                var binary = (long)converter.ConvertToProvider(t)!;
                await db.Database.ExecuteSqlAsync($"INSERT INTO RunPackets (Id, RunId, Interface, Timestamp, Length, Protocol, Summary) VALUES ({i}, {Guid.NewGuid()}, 'br-x', {binary}, 60, 'ICMP', 'x')");
            }

            await db.Database.MigrateAsync();

            var stamps = await db.RunPackets.OrderBy(p => p.Id).Select(p => p.Timestamp).ToListAsync();
            Assert.Equal([atPlusTwo.UtcDateTime, atUtc.UtcDateTime], stamps.Select(s => s.UtcDateTime));
            Assert.False(await db.RunPackets.AnyAsync(p => p.Decoded));
            Assert.Equal(-1, (await db.RunPackets.FirstAsync()).EtherType);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    [Trait("Category", "Publish")]
    public async Task Publish_Output_ServesTheRootWwwroot()
    {
        var outDir = Directory.CreateTempSubdirectory("netlab-publish-").FullName;
        Process? app = null;
        try
        {
            var publish = await RunAsync("dotnet", ["publish", Path.Combine(TestPaths.RepoRoot, "src", "Dashboard.Web"), "-c", "Release", "-o", outDir, "--nologo", "-v", "q"], TimeSpan.FromMinutes(5));
            Assert.True(publish.ExitCode == 0, publish.Output);
            Assert.True(File.Exists(Path.Combine(outDir, "wwwroot", "css", "app.css")), "wwwroot/css/app.css is in the published output");

            var port = LoopbackPort.Free();
            var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = outDir, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { Path.Combine(outDir, "Dashboard.Web.dll"), "--urls", $"http://127.0.0.1:{port}", "--Data:Directory", Path.Combine(outDir, "data") })
            {
                psi.ArgumentList.Add(a);
            }

            psi.Environment["HOME"] = Directory.CreateDirectory(Path.Combine(outDir, "home")).FullName;
            var log = new System.Text.StringBuilder();
            app = new Process { StartInfo = psi };
            app.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
            app.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
            app.Start();
            app.BeginOutputReadLine();
            app.BeginErrorReadLine();
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
            string? css = null;
            for (var i = 0; i < 60 && css is null; i++)
            {
                try
                {
                    css = await http.GetStringAsync("/css/app.css");
                }
                catch (HttpRequestException)
                {
                    Assert.False(app.HasExited, "the published app exited: " + log);
                    await Task.Delay(500);
                }
            }

            Assert.Equal(await File.ReadAllTextAsync(Path.Combine(TestPaths.RepoRoot, "wwwroot", "css", "app.css")), css);
        }
        finally
        {
            if (app is { HasExited: false })
            {
                app.Kill(entireProcessTree: true);
                await app.WaitForExitAsync();
            }

            Directory.Delete(outDir, recursive: true);
        }
    }


    private static async Task<(int ExitCode, string Output)> RunAsync(string file, string[] args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        using var cts = new CancellationTokenSource(timeout);
        var stdout = p.StandardOutput.ReadToEndAsync(cts.Token);
        var stderr = p.StandardError.ReadToEndAsync(cts.Token);
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout + await stderr);
    }
}
