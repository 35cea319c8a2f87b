using Dashboard.TestSupport;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;

namespace Dashboard.Benchmarks;

/// <summary>
/// How long the singleton duties go unheld when their replica ends: two Release dashboards on one PostgreSQL
/// database (scripts/postgres.sh's server), the holder ended with SIGKILL, then (next round) with SIGTERM, and the time
/// until the other replica's /api/replica says it holds them; a new replica replaces the ended one each round.
/// Default settings (Replicas:Retry 5 s), so a takeover waits at most one retry after the lock is released; each holder
/// is ended at a random moment of the other's retry period.
/// </summary>
internal static class FailoverBenchmark
{
    public static async Task<int> RunAsync(int rounds)
    {
        PostgresServer.Require();
        var work = Directory.CreateTempSubdirectory("netlab-failover-bench-").FullName;
        var connection = await PostgresServer.CreateDatabaseAsync("netlab_failover");
        var instance = "f" + Guid.NewGuid().ToString("N")[..8];
        var live = new List<(Process App, HttpClient Http, string Name)>();
        var killed = new List<double>();
        var stopped = new List<double>();
        var n = 0;
        (Process, HttpClient, string) Start()
        {
            var port = AppProcess.FreePort();
            var name = $"replica-{++n}";
            var app = AppProcess.StartReplica(port, work, instance, connection, name, null, "--Collector:Enabled", "false");
            var http = AppProcess.Client(port);
            http.Timeout = TimeSpan.FromSeconds(10);
            return (app, http, name);
        }

        try
        {
            live.Add(Start());
            await UntilAsync(live[0].Http, holds: true);
            live.Add(Start());
            await UntilAsync(live[1].Http, holds: false);
            for (var round = 0; round < rounds * 2; round++)
            {
                var holder = live.Single(r => IsHolder(r.Http).GetAwaiter().GetResult());
                var other = live.Single(r => r.Name != holder.Name);
                var hard = round % 2 == 0;

                // At a random moment of the waiting replica's retry period (a new replica asks once while starting:
                // ending the holder right after would always measure one whole period).
                await Task.Delay(Random.Shared.Next(0, 5000));
                if (hard)
                {
                    holder.App.Kill(entireProcessTree: true);
                }
                else
                {
                    Process.Start("kill", ["-TERM", holder.App.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
                }

                var clock = Stopwatch.StartNew();
                await UntilAsync(other.Http, holds: true);
                var seconds = clock.Elapsed.TotalSeconds;
                (hard ? killed : stopped).Add(seconds * 1000);
                Console.WriteLine($"round {round + 1}: {holder.Name} ended by {(hard ? "SIGKILL" : "SIGTERM")}, {other.Name} holds the duties after {seconds:0.00} s");
                await holder.App.WaitForExitAsync();
                holder.App.Dispose();
                holder.Http.Dispose();
                live.Remove(holder);
                var fresh = Start();
                live.Add(fresh);
                await UntilAsync(fresh.Item2, holds: false);
            }

            Console.WriteLine($"failover after SIGKILL of the holder: {Stats.Of(killed)}");
            Console.WriteLine($"failover after SIGTERM of the holder: {Stats.Of(stopped)}");
            return 0;
        }
        finally
        {
            foreach (var (app, http, _) in live)
            {
                app.Kill(entireProcessTree: true);
                await app.WaitForExitAsync();
                http.Dispose();
            }

            await PostgresServer.DropDatabaseAsync(connection);
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<bool> IsHolder(HttpClient http) =>
        (await http.GetFromJsonAsync<JsonElement>("/api/replica")).GetProperty("holdsDuties").GetBoolean();

    private static async Task UntilAsync(HttpClient http, bool holds)
    {
        var until = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < until)
        {
            try
            {
                if (await IsHolder(http) == holds)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Still starting.
            }

            await Task.Delay(20);
        }

        throw new TimeoutException($"a replica did not reach holds={holds} within 60 s");
    }
}
