using System.Globalization;
using Dashboard.App.Runs;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.TestSupport;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Benchmarks;

/// <summary>
/// The run history on both providers side by side, each a database made by its own migrations and seeded alike
/// (<see cref="HistorySeed"/>): the first page over N runs (with and without filters), the last page, and the comparison
/// of two runs with 10,000 captured packets each. SQLite is a file; PostgreSQL the server scripts/postgres.sh runs (a
/// Unix socket on this machine). The same queries, timed one provider after the other in one run.
/// </summary>
internal static class HistoryBenchmark
{
    public static async Task<int> RunAsync(int runs)
    {
        Console.WriteLine($"== Run history over {runs:N0} runs, and a comparison of two runs with 10,000 packets each, on SQLite and on PostgreSQL (schemas by the migrations) ==");
        var providers = new List<string> { DataOptions.Sqlite };
        if (PostgresServer.ConnectionString is not null)
        {
            providers.Add(DataOptions.Postgres);
        }
        else
        {
            Console.WriteLine("PostgreSQL: no server (run scripts/postgres.sh start as root): SQLite only");
        }

        var results = new Dictionary<string, Stats[]>();
        foreach (var provider in providers)
        {
            results[provider] = await OneAsync(provider, runs);
        }

        if (results.Count == 2)
        {
            string[] names = ["first page", "first page filtered", "last page", "comparison"];
            for (var i = 0; i < names.Length; i++)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{names[i]}: PostgreSQL / SQLite median = {results[DataOptions.Postgres][i].Median / results[DataOptions.Sqlite][i].Median:0.00}"));
            }
        }

        return 0;
    }

    private static async Task<Stats[]> OneAsync(string provider, int runs)
    {
        var folder = Directory.CreateTempSubdirectory("netlab-history-bench-").FullName;
        var connection = provider == DataOptions.Postgres ? await PostgresServer.CreateDatabaseAsync("netlab_bench") : null;
        try
        {
            var services = new ServiceCollection();
            services.AddDashboardData(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Data:Directory"] = folder,
                ["Data:Provider"] = provider,
                ["Data:ConnectionString"] = connection,
            }).Build());
            await using var sp = services.BuildServiceProvider();
            await sp.MigrateDashboardDatabaseAsync();
            var factory = sp.GetRequiredService<IDbContextFactory<DashboardDbContext>>();
            var seeding = System.Diagnostics.Stopwatch.StartNew();
            Guid experiment, a, b;
            await using (var db = await factory.CreateDbContextAsync())
            {
                (experiment, a, b) = await HistorySeed.SeedAsync(db, runs);
                if (db.Database.IsNpgsql())
                {
                    // A server's autovacuum soon does this for a table that grew: statistics and the visibility map
                    // (index-only counts), so the timings are of the steady state, not of the minute after a bulk load.
                    await db.Database.ExecuteSqlRawAsync("VACUUM ANALYZE");
                }
                else
                {
                    await db.Database.ExecuteSqlRawAsync("ANALYZE");
                }
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"-- {provider}: seeded in {seeding.Elapsed.TotalSeconds:0.0} s"));
            async Task<Stats> TimeAsync(Func<DashboardDbContext, Task> action) => await Measure.TimeAsync(async () =>
            {
                await using var db = await factory.CreateDbContextAsync();
                await action(db);
            }, warmup: 2, iterations: 15);

            var first = await TimeAsync(db => RunQueries.ListAsync(db, 1, new RunFilter()));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{provider}: first page (25, newest first, with the total): {first} (target < 100 ms: {(first.Median < 100 ? "MET" : "NOT MET")})"));
            var filtered = await TimeAsync(db => RunQueries.ListAsync(db, 1, new RunFilter(experiment, "docker-user", RunStatus.Succeeded, "bob")));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{provider}: first page filtered by experiment, variant, outcome and author: {filtered}"));
            var last = await TimeAsync(db => RunQueries.ListAsync(db, 1, new RunFilter(Page: runs / 25)));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{provider}: last page: {last}"));
            var compare = await TimeAsync(db => RunQueries.CompareAsync(db, 1, a, b));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{provider}: comparison of two runs, 10,000 packets each: {compare} (target < 300 ms: {(compare.Median < 300 ? "MET" : "NOT MET")})"));
            return [first, filtered, last, compare];
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            if (connection is not null)
            {
                await PostgresServer.DropDatabaseAsync(connection);
            }

            Directory.Delete(folder, recursive: true);
        }
    }
}
