using System.Diagnostics;
using Dashboard.Core.Changes;
using Dashboard.Data;
using Dashboard.Data.Entities;
using Dashboard.Host.Netfilter;
using Dashboard.TestSupport;
using Dashboard.App.Audit;
using Dashboard.App.Changes;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Benchmarks;

/// <summary>
/// Issue 7's figures on the real host: how long a proposal (field and host checks), an approval (iptables insert and
/// the verifying re-read) and a revert (delete and re-read) take, and the audit log's first page and CSV export over
/// many entries. Rules carry this run's own instance tag and are removed at the end.
/// </summary>
internal static class ChangeBenchmark
{
    public static async Task<int> RunAsync(int changes)
    {
        var instance = "b" + Guid.NewGuid().ToString("N")[..8];
        using var app = new DashboardFactory(new() { ["Host:InstanceId"] = instance, ["Logging:LogLevel:Default"] = "Warning" });
        try
        {
            var alice = await app.CreateUserAsync("alice", 1, LabRole.Operator);
            var bob = await app.CreateUserAsync("bob", 1, LabRole.Approver);
            var service = app.Services.GetRequiredService<ChangeRequestService>();
            var (propose, approve, revert) = (new List<double>(), new List<double>(), new List<double>());
            for (var i = 0; i < changes; i++)
            {
                var rule = new ChangeRule { Chain = "DOCKER-USER", Position = 1, Source = $"172.31.{200 + (i % 40)}.0/24", Destination = "172.31.199.0/24", Protocol = "icmp", Target = "ACCEPT" };
                var sw = Stopwatch.StartNew();
                var c = await service.ProposeAsync(alice.Actor, 1, rule, "benchmark", null);
                propose.Add(sw.Elapsed.TotalMilliseconds);
                sw.Restart();
                var applied = await service.ApproveAsync(bob.Actor, c.Id, null);
                approve.Add(sw.Elapsed.TotalMilliseconds);
                if (applied.State != ChangeState.Applied)
                {
                    Console.Error.WriteLine($"change {c.Id}: {applied.State} {applied.Outcome}");
                    return 1;
                }

                sw.Restart();
                await service.RevertAsync(alice.Actor, c.Id);
                revert.Add(sw.Elapsed.TotalMilliseconds);
            }

            var rules = (await new Dashboard.Host.Processes.ProcessRunner().RunAsync("iptables-save", [], TimeSpan.FromSeconds(30))).StdOut.Split('\n').Count(l => l.StartsWith("-A ", StringComparison.Ordinal));
            Console.WriteLine($"changes on a host with {rules} IPv4 rules, {changes} each:");
            Console.WriteLine($"  propose (fields, interfaces, chain from a fresh read)  {Stats.Of(propose)}");
            Console.WriteLine($"  approve (iptables -w insert + verifying re-read)      {Stats.Of(approve)}");
            Console.WriteLine($"  revert (delete by tag + verifying re-read)            {Stats.Of(revert)}");

            // The audit log under load: 100,000 entries in two labs.
            await using (var scope = app.Services.CreateAsyncScope())
            {
                var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
                db.ChangeTracker.AutoDetectChangesEnabled = false;
                var t0 = DateTimeOffset.UtcNow.AddDays(-30);
                for (var i = 0; i < 100_000; i++)
                {
                    db.AuditEntries.Add(new AuditEntry { At = t0.AddSeconds(i * 20), UserId = i % 2 == 0 ? alice.Id : bob.Id, Actor = i % 2 == 0 ? "alice" : "bob", LabId = 1, Action = i % 5 == 0 ? "change.applied" : "sign-in", Subject = $"change {i}", Detail = $"entry {i}", Succeeded = i % 17 != 0 });
                }

                await db.SaveChangesAsync();
            }

            var audit = app.Services.GetRequiredService<AuditLog>();
            var first = await Measure.TimeAsync(() => audit.QueryAsync(bob.Actor, new AuditFilter()), warmup: 2, iterations: 15);
            var filtered = await Measure.TimeAsync(() => audit.QueryAsync(bob.Actor, new AuditFilter(User: "alice", Action: "change.*", Text: "entry 9")), warmup: 2, iterations: 15);
            var csv = await Measure.TimeAsync(async () => await audit.WriteCsvAsync(bob.Actor, new AuditFilter(), Stream.Null), warmup: 1, iterations: 5);
            Console.WriteLine("audit log with 100,000 entries:");
            Console.WriteLine($"  first page (50 rows + total)                         {first}");
            Console.WriteLine($"  user + action prefix + text filter                   {filtered}");
            Console.WriteLine($"  CSV export of every entry                            {csv}");
            return 0;
        }
        finally
        {
            await app.Services.GetRequiredService<IptablesRuleWriter>().DeleteTaggedWhereAsync(c => c.StartsWith($"netlab:change-{instance}-", StringComparison.Ordinal));
        }
    }
}
