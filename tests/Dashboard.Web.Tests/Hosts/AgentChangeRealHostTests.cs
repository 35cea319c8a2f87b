using Dashboard.App.Changes;
using Dashboard.App.Hosts;
using Dashboard.Core.Changes;
using Dashboard.Core.Firewall;
using Dashboard.Data.Entities;
using Dashboard.Host;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Dashboard.Web.Tests.Hosts;

/// <summary>
/// Approved changes on an agent's host (Docker 26.1.5 in its own namespace): checked against that host, applied and
/// verified by its agent, reverted; refused while it is disconnected; reconciled when its agent connects again.
/// </summary>
[Trait("Category", "RealHost")]
public sealed class AgentChangeRealHostTests
{
    private static ChangeRule Accept(string fromBridge, string toBridge) =>
        new() { Chain = "DOCKER-USER", Position = 1, InInterface = fromBridge, OutInterface = toBridge, Target = "ACCEPT" };

    private static async Task<int> CopiesAsync(LabScope lab, string tag) =>
        IptablesSaveReader.Read(await lab.RunAsync("iptables-save")).Rules.Count(r => r.Comment == tag);

    [SkippableFact]
    public async Task AChangeForAnAgentsHost_IsAppliedAndVerifiedThere_RevertedThere_AndReconciledWhenItsAgentIsBack()
    {
        RealHost.Require();
        await using var three = await ThreeAgentHosts.StartAsync();
        const string host = "docker-261";
        var engine = three.Hosts.Single(h => h.Name == host).Engine;
        var services = three.Factory.Services;
        var changes = services.GetRequiredService<ChangeRequestService>();
        var reconciler = services.GetRequiredService<ChangeReconciler>();
        var instance = services.GetRequiredService<IOptions<DockerHostOptions>>().Value.InstanceId;
        var alice = await three.Factory.CreateUserAsync("alice", 1, LabRole.Operator);
        var bob = await three.Factory.CreateUserAsync("bob", 1, LabRole.Approver);
        await using var lab = new LabScope(engine);
        try
        {
            var seed = await lab.CreateSeedLabAsync();
            var feed = three.Directory.Remote(host)!.Feed;
            await Eventually.UntilAsync(() => Task.FromResult(feed.Topology?.Links.Any(l => l.Name == seed.Bridge2) == true && feed.Ruleset?.Rules.Any(r => r.Bridges.Contains(seed.Bridge1)) == true),
                () => "the seed lab on 26.1 to reach the dashboard:\n" + three.Logs(), 30);

            // Checked against that host: its bridges exist there (not on the dashboard's own host), an unknown one does not.
            var bad = await Assert.ThrowsAsync<ChangeValidationException>(() => changes.ProposeAsync(alice.Actor, 1, Accept("br-nosuchbridge", seed.Bridge1), "typo", null, host: host));
            Assert.Contains("does not exist on host 'docker-261'", bad.Errors["InInterface"], StringComparison.Ordinal);
            var unknown = await Assert.ThrowsAsync<ChangeValidationException>(() => changes.ProposeAsync(alice.Actor, 1, Accept(seed.Bridge2, seed.Bridge1), "where?", null, host: "nosuchhost"));
            Assert.Contains("no host 'nosuchhost'", unknown.Errors["Host"], StringComparison.Ordinal);

            var request = await changes.ProposeAsync(alice.Actor, 1, Accept(seed.Bridge2, seed.Bridge1), "c2 must reach c1", null, host: host);
            var reply = await changes.ProposeAsync(alice.Actor, 1, Accept(seed.Bridge1, seed.Bridge2), "and its replies", null, host: host);
            Assert.Equal(host, request.Host);

            // The what-if is that host's: with both open proposals, c2's network reaches c1's.
            var whatIf = await changes.WhatIfAsync(alice.Actor, reply.Id);
            Assert.True(whatIf.WithOthers is { Changes.Count: > 0 }, $"the two proposals together open the pair on {host}: {whatIf.WithOthers?.Changes.Count}");

            // Staged there first (by its agent): the requests are counted and still dropped.
            foreach (var c in new[] { request, reply })
            {
                var staged = await changes.StageAsync(alice.Actor, c.Id, null);
                Assert.True(staged.Stage is { Counting: true }, staged.Stage?.Outcome);
                Assert.Equal(1, await CopiesAsync(lab, staged.Stage!.Tag));
            }

            Assert.Equal((3, 0), await lab.PingAsync(seed.C2, seed.C1Ip, 3));
            var counted = IptablesSaveReader.Read(await lab.RunAsync("iptables-save", "-c")).Rules.Single(r => r.Comment == $"{request.Tag}-staged").Packets;
            Assert.True(counted >= 3, $"the staged request rule on {host} counted {counted}");

            foreach (var c in new[] { request, reply })
            {
                var applied = await changes.ApproveAsync(bob.Actor, c.Id, null);
                Assert.True(applied.State == ChangeState.Applied, applied.Outcome);
                Assert.StartsWith("verified: present once in filter DOCKER-USER", applied.Outcome, StringComparison.Ordinal);
                Assert.Contains("iptables-restore", applied.ApplyCommand, StringComparison.Ordinal);
                Assert.Equal(1, await CopiesAsync(lab, c.Tag));
                Assert.Equal(0, await CopiesAsync(lab, $"{c.Tag}-staged"));
            }

            Assert.Equal((3, 3), await lab.PingAsync(seed.C2, seed.C1Ip, 3));
            Assert.Equal(ChangeState.Reverted, (await changes.RevertAsync(alice.Actor, reply.Id)).State);
            Assert.Equal(0, await CopiesAsync(lab, reply.Tag));
            Assert.Equal((3, 0), await lab.PingAsync(seed.C2, seed.C1Ip, 3));

            // While the agent is away: approval refused (the change stays proposed), revert refused (it stays applied).
            var third = await changes.ProposeAsync(alice.Actor, 1, Accept(seed.Bridge1, seed.Bridge2), "later", null, host: host);
            three.KillAgent(host);
            await Eventually.UntilAsync(() => Task.FromResult(three.Directory.Remote(host)!.State == AgentState.Disconnected), () => "the agent gone", 20);
            var refused = await Assert.ThrowsAsync<ChangeStateException>(() => changes.ApproveAsync(bob.Actor, third.Id, null));
            Assert.Contains("is disconnected", refused.Message, StringComparison.Ordinal);
            Assert.Equal(ChangeState.Proposed, (await changes.GetAsync(alice.Actor, third.Id)).State);
            await Assert.ThrowsAsync<ChangeStateException>(() => changes.RevertAsync(alice.Actor, request.Id));
            Assert.Equal(ChangeState.Applied, (await changes.GetAsync(alice.Actor, request.Id)).State);

            // Meanwhile, outside the dashboard: the applied rule deleted by hand, and a rule with a change tag nobody approved.
            await lab.Writer.DeleteTaggedAsync(request.Tag);
            var orphan = RuleTag.For($"change-{instance}-99999");
            await lab.Writer.InsertAsync(new RuleSpec { Chain = "DOCKER-USER", Position = 1, Source = "172.31.254.0/24", Target = "ACCEPT", Tag = orphan });
            var before = DateTimeOffset.UtcNow;
            three.StartAgent(host);

            // Reconciled when the agent is back: the missing rule's change failed (not re-applied), the orphan removed.
            await Eventually.UntilAsync(() => Task.FromResult(reconciler.LastReconciliationOf(host) is { } r && r.At > before),
                () => "the host's reconciliation after the agent reconnected:\n" + three.Logs(), 60);
            var report = reconciler.LastReconciliationOf(host)!;
            Assert.Contains(report.Findings, f => f.StartsWith($"change {request.Id}:", StringComparison.Ordinal) && f.Contains("missing on host 'docker-261'", StringComparison.Ordinal));
            Assert.Contains(report.Findings, f => f.StartsWith(orphan, StringComparison.Ordinal));
            var failed = await changes.GetAsync(alice.Actor, request.Id);
            Assert.Equal(ChangeState.Failed, failed.State);
            Assert.Contains("when its agent connected", failed.Outcome, StringComparison.Ordinal);
            Assert.Equal(0, await CopiesAsync(lab, orphan));
            Assert.Equal(0, await CopiesAsync(lab, request.Tag));
        }
        finally
        {
            await lab.Writer.DeleteTaggedWhereAsync(c => c.StartsWith(RuleTag.For($"change-{instance}-"), StringComparison.Ordinal));
        }
    }
}
