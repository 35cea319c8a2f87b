using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Core.Changes;
using Dashboard.Core.Firewall;
using Dashboard.Data.Entities;
using Dashboard.Host.Netfilter;
using Dashboard.App.Changes;
using Dashboard.App.Labs;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Dashboard.Web.Tests.Changes;

/// <summary>
/// Change requests on the real host: approve → applied with iptables and present exactly once; the ping between two lab
/// networks starts to succeed; revert removes exactly that rule and the ping fails again; a time-to-live expires by
/// itself; a restart reconciles the host with the database. Every rule is tagged with this test app's instance id and
/// removed in finally blocks.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class ChangeHostTests
{
    private static ChangeRule Accept(string fromBridge, string toBridge) =>
        new() { Chain = "DOCKER-USER", Position = 1, InInterface = fromBridge, OutInterface = toBridge, Target = "ACCEPT" };

    private static async Task<int> CopiesOnHostAsync(string tag)
    {
        var save = await new Dashboard.Host.Processes.ProcessRunner().RunAsync("iptables-save", [], TimeSpan.FromSeconds(20));
        return IptablesSaveReader.Read(save.StdOut).Rules.Count(r => r.Comment == tag);
    }

    private static async Task RemoveInstanceRulesAsync(DashboardFactory factory, string instance) =>
        await factory.Services.GetRequiredService<IptablesRuleWriter>().DeleteTaggedWhereAsync(c => c.StartsWith($"netlab:change-{instance}-", StringComparison.Ordinal));

    /// <summary>The app with its own instance id, Alice (Operator) and Bob (Approver); disposing removes every rule of that instance.</summary>
    private sealed class ChangeApp : IAsyncDisposable
    {
        private ChangeApp(bool collector)
        {
            Instance = "c" + Guid.NewGuid().ToString("N")[..8];
            Factory = new DashboardFactory(new() { ["Host:InstanceId"] = Instance, ["Collector:Enabled"] = collector ? "true" : "false" });
        }

        public string Instance { get; }

        public DashboardFactory Factory { get; }

        public TestUser Alice { get; private set; } = default!;

        public TestUser Bob { get; private set; } = default!;

        public ChangeRequestService Changes => Factory.Services.GetRequiredService<ChangeRequestService>();

        /// <summary>Starts the app; with <paramref name="collector"/> its collector reads the host (the live counters).</summary>
        public static async Task<ChangeApp> StartAsync(bool collector = false)
        {
            var app = new ChangeApp(collector);
            app.Alice = await app.Factory.CreateUserAsync("alice", 1, LabRole.Operator);
            app.Bob = await app.Factory.CreateUserAsync("bob", 1, LabRole.Approver);
            return app;
        }

        public async ValueTask DisposeAsync()
        {
            await RemoveInstanceRulesAsync(Factory, Instance);
            Factory.Dispose();
        }
    }

    [SkippableFact]
    public async Task Approve_AppliesVerifiedOnce_PingSucceeds_RevertRemovesExactlyThatRule()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        await using var app = await ChangeApp.StartAsync();
        var (factory, alice, bob, changes) = (app.Factory, app.Alice, app.Bob, app.Changes);

        Assert.Equal((3, 0), await lab.PingAsync(seed.C2, seed.C1Ip));

        // Both directions: a request-only ACCEPT delivers the echo request while the isolation chains drop the reply.
        var request = await changes.ProposeAsync(alice.Actor, 1, Accept(seed.Bridge2, seed.Bridge1), "c2 must reach c1 for the experiment", null);
        var reply = await changes.ProposeAsync(alice.Actor, 1, Accept(seed.Bridge1, seed.Bridge2), "replies from c1 to c2", null);
        Assert.Equal(0, await CopiesOnHostAsync(request.Tag));

        var applied = await changes.ApproveAsync(bob.Actor, request.Id, "ok for the lab");
        Assert.True(applied.State == ChangeState.Applied, applied.Outcome);
        Assert.Equal("bob", applied.DecidedBy);
        Assert.False(applied.SelfApproved);
        Assert.Equal(applied.Command, applied.ApplyCommand);
        Assert.Contains($"-w 5 -t filter -I DOCKER-USER 1 -i {seed.Bridge2} -o {seed.Bridge1} -m comment --comment {request.Tag} -j ACCEPT", applied.ApplyCommand, StringComparison.Ordinal);
        Assert.Equal(1, await CopiesOnHostAsync(request.Tag));
        Assert.Equal(ChangeState.Applied, (await changes.ApproveAsync(bob.Actor, reply.Id, null)).State);
        Assert.Equal(1, await CopiesOnHostAsync(reply.Tag));

        var (sent, received) = await lab.PingAsync(seed.C2, seed.C1Ip);
        Assert.True(received > 0, $"ping after approval: {received}/{sent}");

        // Revert one: exactly that rule goes, the other stays; the ping fails again (the reply is dropped).
        var reverted = await changes.RevertAsync(alice.Actor, reply.Id);
        Assert.Equal(ChangeState.Reverted, reverted.State);
        Assert.Equal(0, await CopiesOnHostAsync(reply.Tag));
        Assert.Equal(1, await CopiesOnHostAsync(request.Tag));
        Assert.Equal((3, 0), await lab.PingAsync(seed.C2, seed.C1Ip));
        Assert.Equal(ChangeState.Reverted, (await changes.RevertAsync(alice.Actor, request.Id)).State);
        Assert.Equal(0, await CopiesOnHostAsync(request.Tag));

        // The audit has every step with its command line and result.
        using var http = factory.CreateClient();
        var rows = (await http.GetFromJsonAsync<JsonElement>($"/api/audit?action=change.*&pageSize=100")).GetProperty("rows").EnumerateArray().ToList();
        var applyRow = rows.Single(r => r.GetProperty("action").GetString() == "change.apply" && r.GetProperty("subject").GetString() == $"change {request.Id}");
        Assert.Equal(applied.ApplyCommand, applyRow.GetProperty("commandLine").GetString());
        Assert.Equal("ok", applyRow.GetProperty("result").GetString());
        var revertRow = rows.Single(r => r.GetProperty("action").GetString() == "change.reverted" && r.GetProperty("subject").GetString() == $"change {reply.Id}");
        Assert.Contains($"-D DOCKER-USER -i {seed.Bridge1} -o {seed.Bridge2}", revertRow.GetProperty("commandLine").GetString(), StringComparison.Ordinal);
        foreach (var step in new[] { "change.proposed", "change.approved", "change.applied", "change.reverted" })
        {
            Assert.Contains(rows, r => r.GetProperty("action").GetString() == step);
        }

        // The audit cannot be rewritten, not even by the database's own users.
        await using var scope = factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<Dashboard.Data.DashboardDbContext>();
        var entry = db.AuditEntries.First();
        entry.Detail = "rewritten";
        Assert.Throws<InvalidOperationException>(() => db.SaveChanges());
        var raw = await Assert.ThrowsAnyAsync<Exception>(() => Microsoft.EntityFrameworkCore.RelationalDatabaseFacadeExtensions.ExecuteSqlRawAsync(db.Database, "DELETE FROM AuditEntries"));
        Assert.Contains("append-only", raw.ToString(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task TimeToLive_RevertsByItself_AsExpired()
    {
        RealHost.Require();
        await using var app = await ChangeApp.StartAsync();
        var (factory, alice, bob, changes) = (app.Factory, app.Alice, app.Bob, app.Changes);

        var rule = new ChangeRule { Chain = "DOCKER-USER", Position = 1, Source = "172.31.252.0/24", Destination = "172.31.253.0/24", Protocol = "icmp", Target = "ACCEPT" };
        var c = await changes.ProposeAsync(alice.Actor, 1, rule, "five seconds only", 5);
        var applied = await changes.ApproveAsync(bob.Actor, c.Id, null);
        Assert.Equal(ChangeState.Applied, applied.State);
        Assert.NotNull(applied.ExpiresAt);
        Assert.Equal(1, await CopiesOnHostAsync(c.Tag));

        var waited = System.Diagnostics.Stopwatch.StartNew();
        ChangeDto now;
        do
        {
            await Task.Delay(500);
            now = await changes.GetAsync(alice.Actor, c.Id);
        }
        while (now.State == ChangeState.Applied && waited.Elapsed < TimeSpan.FromSeconds(20));

        Assert.True(now.State == ChangeState.Expired, $"{now.State}: {now.Outcome}");
        Assert.Equal("system", now.EndedBy);
        Assert.Equal(0, await CopiesOnHostAsync(c.Tag));
        Assert.True(now.EndedAt >= applied.ExpiresAt, $"ended {now.EndedAt:O} before expiry {applied.ExpiresAt:O}");
    }

    [SkippableFact]
    public async Task Restart_ReconcilesHostAndDatabase_ByTheStatedPolicy()
    {
        RealHost.Require();
        var instance = "c" + Guid.NewGuid().ToString("N")[..8];
        var data = Directory.CreateTempSubdirectory("netlab-reconcile-").FullName;
        var settings = new Dictionary<string, string?> { ["Host:InstanceId"] = instance };
        var writer = new IptablesRuleWriter(new Dashboard.Host.Processes.ProcessRunner(), Microsoft.Extensions.Options.Options.Create(new Dashboard.Host.DockerHostOptions()));
        int kept, deleted, expiring;
        string orphanTag = RuleTag.For($"change-{instance}-9999");
        try
        {
            using (var first = new DashboardFactory(settings, dataDirectory: data))
            {
                var alice = await first.CreateUserAsync("alice", 1, LabRole.Operator);
                var bob = await first.CreateUserAsync("bob", 1, LabRole.Approver);
                var changes = first.Services.GetRequiredService<ChangeRequestService>();
                ChangeRule Rule(int n) => new() { Chain = "DOCKER-USER", Position = 1, Source = $"172.31.24{n}.0/24", Destination = "172.31.249.0/24", Target = "ACCEPT" };
                kept = (await changes.ProposeAsync(alice.Actor, 1, Rule(0), "stays", null)).Id;
                deleted = (await changes.ProposeAsync(alice.Actor, 1, Rule(1), "deleted behind the dashboard's back", null)).Id;
                expiring = (await changes.ProposeAsync(alice.Actor, 1, Rule(2), "expires while stopped", 5)).Id;
                foreach (var id in new[] { kept, deleted, expiring })
                {
                    Assert.Equal(ChangeState.Applied, (await changes.ApproveAsync(bob.Actor, id, null)).State);
                }
            }

            // While the dashboard is stopped: someone deletes one rule by hand, someone adds a tagged rule of this instance
            // that no change stands behind, and the third change's time-to-live runs out.
            var tagDeleted = RuleTag.For($"change-{instance}-{deleted}");
            Assert.Single(await writer.DeleteTaggedAsync(tagDeleted));
            Assert.Equal(0, await CopiesOnHostAsync(tagDeleted));
            Assert.True((await writer.InsertAsync(new RuleSpec { Chain = "DOCKER-USER", Source = "172.31.248.0/24", Target = "RETURN", Tag = orphanTag })).Succeeded);
            await Task.Delay(TimeSpan.FromSeconds(6));

            using var second = new DashboardFactory(settings, dataDirectory: data);
            var service = second.Services.GetRequiredService<ChangeRequestService>();
            var reconciler = second.Services.GetRequiredService<ChangeReconciler>();
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (reconciler.LastReconciliation is null && waited.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(200);
            }

            var report = Assert.IsType<ReconciliationReport>(reconciler.LastReconciliation);
            var admin = await second.AdminAsync();
            var byId = (await service.ListAsync(admin, 1)).ToDictionary(c => c.Id);
            Assert.Equal(ChangeState.Applied, byId[kept].State);
            Assert.Equal(1, await CopiesOnHostAsync(RuleTag.For($"change-{instance}-{kept}")));
            Assert.Equal(ChangeState.Failed, byId[deleted].State);
            Assert.Contains("removed outside the dashboard", byId[deleted].Outcome, StringComparison.Ordinal);
            Assert.Equal(0, await CopiesOnHostAsync(tagDeleted));
            Assert.Equal(ChangeState.Expired, byId[expiring].State);
            Assert.Equal(0, await CopiesOnHostAsync(RuleTag.For($"change-{instance}-{expiring}")));
            Assert.Equal(0, await CopiesOnHostAsync(orphanTag));
            Assert.Contains(report.Findings, f => f.StartsWith($"change {deleted}:", StringComparison.Ordinal));
            Assert.Contains(report.Findings, f => f.StartsWith($"change {expiring}:", StringComparison.Ordinal));
            Assert.Contains(report.Findings, f => f.StartsWith(orphanTag, StringComparison.Ordinal));

            using var http = second.CreateClient();
            var rows = (await http.GetFromJsonAsync<JsonElement>("/api/audit?action=reconcile*&pageSize=50")).GetProperty("rows").EnumerateArray().Select(r => r.GetProperty("action").GetString()).ToList();
            Assert.Contains("reconcile", rows);
            Assert.Contains("reconcile.orphan-removed", rows);
            Assert.Equal(JsonValueKind.Object, (await http.GetFromJsonAsync<JsonElement>("/api/changes/reconciliation")).ValueKind);
        }
        finally
        {
            await writer.DeleteTaggedWhereAsync(c => c.StartsWith($"netlab:change-{instance}-", StringComparison.Ordinal));
            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    [SkippableFact]
    public async Task SelfApproval_OnlyInASingleMemberLabWithTheSetting_AndTheChangeSaysSo()
    {
        RealHost.Require();
        var instance = "c" + Guid.NewGuid().ToString("N")[..8];
        using var factory = new DashboardFactory(new() { ["Host:InstanceId"] = instance });
        try
        {
            var admin = await factory.AdminAsync();
            var access = factory.Services.GetRequiredService<LabAccess>();
            var changes = factory.Services.GetRequiredService<ChangeRequestService>();
            var solo = await access.CreateLabAsync(admin, "Solo lab", null);
            var rule = new ChangeRule { Chain = "DOCKER-USER", Position = 1, Source = "172.31.247.0/24", Destination = "172.31.246.0/24", Target = "RETURN" };

            var first = await changes.ProposeAsync(admin, solo, rule, "alone, setting off", null);
            Assert.Equal(Dashboard.App.Access.AccessDenial.Forbidden, (await Assert.ThrowsAsync<Dashboard.App.Access.LabAccessException>(() => changes.ApproveAsync(admin, first.Id, null))).Reason);

            await access.SetSelfApprovalAsync(admin, solo, true);
            var self = await changes.ApproveAsync(admin, first.Id, null);
            Assert.Equal(ChangeState.Applied, self.State);
            Assert.True(self.SelfApproved);
            Assert.Equal(ChangeState.Reverted, (await changes.RevertAsync(admin, first.Id)).State);

            // A second member ends it, setting or not.
            var carolOne = await factory.CreateUserAsync("carol", solo, LabRole.Viewer);
            var second = await changes.ProposeAsync(admin, solo, rule, "two members now", null);
            Assert.Equal(Dashboard.App.Access.AccessDenial.Forbidden, (await Assert.ThrowsAsync<Dashboard.App.Access.LabAccessException>(() => changes.ApproveAsync(admin, second.Id, null))).Reason);

            // The bypass: the lab is made single-member again after the proposal. Still refused: it has not been alone since.
            var carol = await factory.CreateUserAsync("carol2", solo, LabRole.Approver);
            var third = await changes.ProposeAsync(admin, solo, rule, "proposed with carol2 present", null);
            await access.RemoveMemberAsync(admin, solo, carolOne.Id);
            await access.RemoveMemberAsync(admin, solo, carol.Id);
            var bypass = await Assert.ThrowsAsync<Dashboard.App.Access.LabAccessException>(() => changes.ApproveAsync(admin, third.Id, null));
            Assert.Equal(403, bypass.Status);
            Assert.Contains("has had one member since the change was proposed", bypass.Message, StringComparison.Ordinal);

            // A lab Admin who is not a site administrator cannot turn self-approval on.
            var lena = await factory.CreateUserAsync("lena", solo, LabRole.Admin);
            Assert.Equal(Dashboard.App.Access.AccessDenial.Forbidden, (await Assert.ThrowsAsync<Dashboard.App.Access.LabAccessException>(() => access.SetSelfApprovalAsync(lena.Actor, solo, true))).Reason);
            await access.SetSelfApprovalAsync(lena.Actor, solo, false);

            using var http = factory.CreateClient();
            var audit = await http.GetFromJsonAsync<JsonElement>($"/api/audit?text=SELF-APPROVED&lab={solo}");
            Assert.Equal(1, audit.GetProperty("total").GetInt32());
        }
        finally
        {
            await RemoveInstanceRulesAsync(factory, instance);
        }
    }

    /// <summary>The packets the host's counters give the rule tagged <paramref name="tag"/> (iptables-save -c), or null when it is not there.</summary>
    private static async Task<ulong?> PacketsOnHostAsync(string tag)
    {
        var save = await new Dashboard.Host.Processes.ProcessRunner().RunAsync("iptables-save", ["-c"], TimeSpan.FromSeconds(20));
        return IptablesSaveReader.Read(save.StdOut).Rules.FirstOrDefault(r => r.Comment == tag)?.Packets;
    }

    [SkippableFact]
    public async Task Stage_CountsWithoutChangingTheFate_ApprovalSwapsItForTheRealRuleInOneTransaction()
    {
        RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        await using var app = await ChangeApp.StartAsync(collector: true);
        var (factory, alice, bob, changes) = (app.Factory, app.Alice, app.Bob, app.Changes);
        var carol = await factory.CreateUserAsync("carol", 1, LabRole.Viewer);

        Assert.Equal((3, 0), await lab.PingAsync(seed.C2, seed.C1Ip));
        var request = await changes.ProposeAsync(alice.Actor, 1, Accept(seed.Bridge2, seed.Bridge1), "c2 must reach c1", null);
        var reply = await changes.ProposeAsync(alice.Actor, 1, Accept(seed.Bridge1, seed.Bridge2), "replies from c1 to c2", null);

        // A viewer may not stage: refused on the server, and audited.
        await Assert.ThrowsAsync<LabAccessException>(() => changes.StageAsync(carol.Actor, request.Id, null));

        var staged = await changes.StageAsync(alice.Actor, request.Id, null);
        Assert.True(staged.Stage is { Counting: true }, staged.Stage?.Outcome);
        Assert.Equal($"{request.Tag}-staged", staged.Stage!.Tag);
        Assert.Contains($"-I DOCKER-USER 1 -i {seed.Bridge2} -o {seed.Bridge1} -m comment --comment {request.Tag}-staged", staged.Stage.Command, StringComparison.Ordinal);
        Assert.DoesNotContain("-j", staged.Stage.Command!.Split("--comment")[1], StringComparison.Ordinal);
        Assert.Equal(ChangeState.Proposed, staged.State);
        Assert.Equal(ChangeState.Proposed, (await changes.StageAsync(alice.Actor, reply.Id, null)).State);
        await Assert.ThrowsAsync<ChangeStateException>(() => changes.StageAsync(alice.Actor, reply.Id, null));
        Assert.Equal(1, await CopiesOnHostAsync(staged.Stage.Tag));
        Assert.Equal(0, await CopiesOnHostAsync(request.Tag));

        // The fate stays: the echo requests are counted by the staged rule and still dropped; no reply is made.
        Assert.Equal((3, 0), await lab.PingAsync(seed.C2, seed.C1Ip));
        Assert.True(await PacketsOnHostAsync(staged.Stage.Tag) >= 3, $"staged request rule counted {await PacketsOnHostAsync(staged.Stage.Tag)}");
        Assert.Equal(0UL, await PacketsOnHostAsync($"{reply.Tag}-staged"));

        // The dashboard's live feed shows the same counter (what the change page draws).
        var feed = factory.Services.GetRequiredService<Dashboard.App.Live.LiveFeed>();
        var deadline = DateTime.UtcNow.AddSeconds(15);
        ulong live = 0;
        while (DateTime.UtcNow < deadline && live < 3)
        {
            live = feed.Ruleset?.Rules.FirstOrDefault(r => r.Comment == staged.Stage.Tag) is { } r ? feed.CountersOf(r).Packets : 0;
            await Task.Delay(200);
        }

        Assert.True(live >= 3, $"live counter of the staged rule: {live}");

        // Approval replaces the staged rule by the real one in one iptables-restore transaction, then verifies both.
        var applied = await changes.ApproveAsync(bob.Actor, request.Id, null);
        Assert.True(applied.State == ChangeState.Applied, applied.Outcome);
        Assert.Contains("iptables-restore -w 5 --noflush", applied.ApplyCommand, StringComparison.Ordinal);
        Assert.Contains($"-D DOCKER-USER -i {seed.Bridge2} -o {seed.Bridge1} -m comment --comment {request.Tag}-staged", applied.ApplyCommand, StringComparison.Ordinal);
        Assert.Contains($"-I DOCKER-USER 1 -i {seed.Bridge2} -o {seed.Bridge1} -m comment --comment {request.Tag} -j ACCEPT", applied.ApplyCommand, StringComparison.Ordinal);
        Assert.True(applied.Stage is { Counting: false }, applied.Stage?.Outcome);
        Assert.Contains("replaced by the real rule", applied.Stage!.Outcome, StringComparison.Ordinal);
        Assert.Equal(0, await CopiesOnHostAsync(staged.Stage.Tag));
        Assert.Equal(1, await CopiesOnHostAsync(request.Tag));
        Assert.Equal(ChangeState.Applied, (await changes.ApproveAsync(bob.Actor, reply.Id, null)).State);
        Assert.Equal(0, await CopiesOnHostAsync($"{reply.Tag}-staged"));

        // Now the fate changes.
        var (sent, received) = await lab.PingAsync(seed.C2, seed.C1Ip);
        Assert.True(received > 0, $"ping after approval: {received}/{sent}");
        await changes.RevertAsync(alice.Actor, request.Id);
        await changes.RevertAsync(alice.Actor, reply.Id);

        using var http = factory.CreateClient();
        var rows = (await http.GetFromJsonAsync<JsonElement>($"/api/audit?action=change.*&pageSize=200")).GetProperty("rows").EnumerateArray().ToList();
        Assert.Contains(rows, r => r.GetProperty("action").GetString() == "change.staged" && r.GetProperty("subject").GetString() == $"change {request.Id}");
        Assert.Contains(rows, r => r.GetProperty("action").GetString() == "change.stage" && r.GetProperty("commandLine").GetString() == staged.Stage.Command);
        Assert.Contains(rows, r => r.GetProperty("action").GetString() == "change.refused" && r.GetProperty("actor").GetString() == "carol");
    }

    [SkippableFact]
    public async Task StagedRule_GoesAtRejection_AtItsTimeToLive_AndReconciliationKeepsHostAndDatabaseAgreeing()
    {
        RealHost.Require();
        await using var app = await ChangeApp.StartAsync();
        var (factory, alice, bob, changes) = (app.Factory, app.Alice, app.Bob, app.Changes);
        var reconciler = factory.Services.GetRequiredService<ChangeReconciler>();
        var writer = factory.Services.GetRequiredService<IptablesRuleWriter>();
        ChangeRule Rule(int n) => new() { Chain = "DOCKER-USER", Position = 1, Source = $"172.31.{240 + n}.0/24", Destination = "172.31.253.0/24", Protocol = "icmp", Target = "DROP" };
        var ids = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            ids.Add((await changes.ProposeAsync(alice.Actor, 1, Rule(i), $"staged {i}", null)).Id);
        }

        // Bad staging times are refused naming the field, over HTTP too.
        using var http = factory.CreateClient(alice.Token);
        var bad = await http.PostAsJsonAsync($"/api/changes/{ids[0]}/stage", new { ttlSeconds = 5 });
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("TtlSeconds", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var ok = await http.PostAsJsonAsync($"/api/changes/{ids[0]}/stage", new { ttlSeconds = 600 });
        Assert.Equal(System.Net.HttpStatusCode.OK, ok.StatusCode);
        var stagedTag = (await changes.GetAsync(alice.Actor, ids[0])).Stage!.Tag;
        Assert.Equal(1, await CopiesOnHostAsync(stagedTag));

        // Rejection takes it off.
        var rejected = await changes.RejectAsync(bob.Actor, ids[0], "not this one");
        Assert.Equal(ChangeState.Rejected, rejected.State);
        Assert.True(rejected.Stage is { Counting: false }, rejected.Stage?.Outcome);
        Assert.Contains("rejected; staged rule removed and verified gone", rejected.Stage!.Outcome, StringComparison.Ordinal);
        Assert.Equal(0, await CopiesOnHostAsync(stagedTag));

        // Its staging time runs out: taken off by the expiry check.
        var second = await changes.StageAsync(alice.Actor, ids[1], 30);
        await using (var scope = factory.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<Dashboard.Data.DashboardDbContext>();
            var row = await db.ChangeRequests.SingleAsync(c => c.Id == ids[1]);
            row.StageExpiresAt = DateTimeOffset.UtcNow.AddSeconds(-1);
            await db.SaveChangesAsync();
        }

        await reconciler.ExpireDueAsync();
        var expired = await changes.GetAsync(alice.Actor, ids[1]);
        Assert.True(expired.Stage is { Counting: false }, expired.Stage?.Outcome);
        Assert.Contains("staging time ran out", expired.Stage!.Outcome, StringComparison.Ordinal);
        Assert.Equal(ChangeState.Proposed, expired.State);
        Assert.Equal(0, await CopiesOnHostAsync(second.Stage!.Tag));

        // Reconciliation: a staged rule removed by hand is marked unstaged; one whose change was decided meanwhile goes.
        var third = await changes.StageAsync(alice.Actor, ids[2], null);
        var fourth = await changes.StageAsync(alice.Actor, ids[3], null);
        await writer.DeleteTaggedAsync(third.Stage!.Tag);
        await using (var scope = factory.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<Dashboard.Data.DashboardDbContext>();
            var row = await db.ChangeRequests.SingleAsync(c => c.Id == ids[3]);
            row.State = ChangeState.Rejected;
            await db.SaveChangesAsync();
        }

        var report = await reconciler.ReconcileAsync();
        Assert.Contains(report.Findings, f => f.Contains($"change {ids[2]}: staged in the database but its counting rule is missing", StringComparison.Ordinal));
        Assert.Contains(report.Findings, f => f.Contains($"change {ids[3]}: rejected but staged in the database; 1 staged copy removed", StringComparison.Ordinal));
        Assert.True((await changes.GetAsync(alice.Actor, ids[2])).Stage is { Counting: false });
        Assert.Equal(0, await CopiesOnHostAsync(fourth.Stage!.Tag));

        // Unstaging by hand: staged again, then off, the change still proposed.
        await changes.StageAsync(alice.Actor, ids[2], null);
        var off = await changes.UnstageAsync(alice.Actor, ids[2]);
        Assert.Contains("unstaged by alice; staged rule removed and verified gone", off.Stage!.Outcome, StringComparison.Ordinal);
        Assert.Equal(0, await CopiesOnHostAsync(off.Stage.Tag));
        Assert.Equal(ChangeState.Proposed, off.State);
    }
}
