using Dashboard.Core.Changes;
using Dashboard.Core.Firewall;
using Dashboard.Host.Netfilter;
using Dashboard.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Dashboard.Host.Tests.RealHost;

/// <summary>Verdict traces on the real kernel: TRACE rule in raw PREROUTING, xtables-monitor --trace, rules gone afterwards.</summary>
[Trait("Category", "RealHost")]
public class TraceServiceTests
{
    private static async Task<TracedPacket> WaitForAsync(TraceSession s, Func<TracedPacket, bool> match, string what)
    {
        for (var i = 0; i < 50; i++)
        {
            if (s.Packets.FirstOrDefault(match) is { } p)
            {
                return p;
            }

            await Task.Delay(100);
        }

        throw new Xunit.Sdk.XunitException($"no traced packet {what}; seen: " + string.Join(" | ", s.Packets.Select(p => $"{p.Source}>{p.Destination}: {string.Join(", ", p.Steps.Select(st => st.Label))}")));
    }

    [SkippableFact]
    public async Task Start_ParallelRequests_NeverMoreThanFourTraces_AndEveryRuleRemoved()
    {
        Dashboard.TestSupport.RealHost.Require();
        using var sp = HostServices.Build();
        var traces = sp.GetRequiredService<TraceService>();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        var c2Ip = await lab.IpOfAsync(seed.C2, seed.Net2);

        var refusals = new System.Collections.Concurrent.ConcurrentBag<string>();
        var attempts = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => Task.Run(async () =>
        {
            try
            {
                return await traces.StartAsync(new TraceRequest(c2Ip, seed.C1Ip, "icmp"));
            }
            catch (TraceRejectedException ex)
            {
                refusals.Add(ex.Message);
                return null;
            }
        })));

        try
        {
            Assert.True(attempts.Count(a => a is not null) == TraceService.MaxRunning, $"{attempts.Count(a => a is not null)} started; refused: {string.Join(" | ", refusals.Distinct())}");
            Assert.Equal(TraceService.MaxRunning, traces.Sessions.Count(s => s.IsRunning));
        }
        finally
        {
            foreach (var t in attempts.OfType<TraceSession>())
            {
                await traces.StopAsync(t);
            }
        }

        Assert.DoesNotContain("netlab:trace-", await lab.RunAsync("iptables-save", "-t", "raw"), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Trace_IsolatedThenAccepted_DecidedByIsolationDropThenByAcceptRules()
    {
        Dashboard.TestSupport.RealHost.Require();
        using var sp = HostServices.Build();
        var traces = sp.GetRequiredService<TraceService>();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        var c2Ip = await lab.IpOfAsync(seed.C2, seed.Net2);
        var net1 = (await lab.InspectAsync("network", seed.Net1)).GetProperty("IPAM").GetProperty("Config")[0];
        var net2 = (await lab.InspectAsync("network", seed.Net2)).GetProperty("IPAM").GetProperty("Config")[0];
        var gw1 = net1.GetProperty("Gateway").GetString()!;
        Assert.Null(await traces.UnavailableReasonAsync());

        var trace = await traces.StartAsync(new TraceRequest(c2Ip, seed.C1Ip, "icmp", [gw1]));
        try
        {
            // The TRACE rules are in raw PREROUTING, tagged with the trace's id.
            var raw = await lab.RunAsync("iptables-save", "-t", "raw");
            Assert.Equal(3, raw.Split('\n').Count(l => l.Contains(trace.Tag, StringComparison.Ordinal) && l.StartsWith("-A PREROUTING", StringComparison.Ordinal)));

            Assert.Equal((1, 0), await lab.PingAsync(seed.C2, seed.C1Ip, 1));
            var dropped = await WaitForAsync(trace, p => p.Source == c2Ip && p.Decision is not null, "c2 > c1 decided");
            var decision = dropped.Decision!;
            Assert.Equal(("filter", "DOCKER-ISOLATION-STAGE-2", "DROP"), (decision.Table, decision.Chain, decision.Verdict));
            Assert.Equal($"-A DOCKER-ISOLATION-STAGE-2 -o {seed.Bridge1} -j DROP", decision.RuleText);
            Assert.NotNull(decision.Position);
            Assert.Equal(seed.Bridge2, dropped.InInterface);
            Assert.Equal(seed.Bridge1, dropped.OutInterface);
            Assert.Contains(dropped.Steps, s => s.Table == "raw" && s.Chain == "PREROUTING" && s.RuleText!.Contains(trace.Tag, StringComparison.Ordinal));

            // With the ACCEPT pair in DOCKER-USER: the request and the reply are both accepted there.
            var (sub1, sub2) = (net1.GetProperty("Subnet").GetString()!, net2.GetProperty("Subnet").GetString()!);
            await lab.InsertAsync(new RuleSpec { Chain = "DOCKER-USER", Position = 1, Source = sub2, Destination = sub1, Target = "ACCEPT", Tag = lab.Tag });
            await lab.InsertAsync(new RuleSpec { Chain = "DOCKER-USER", Position = 1, Source = sub1, Destination = sub2, Target = "ACCEPT", Tag = lab.Tag });
            Assert.Equal((1, 1), await lab.PingAsync(seed.C2, seed.C1Ip, 1));
            // The request's path ends in nat POSTROUTING a moment after the filter verdict: wait for the whole of it.
            var accepted = await WaitForAsync(trace, p => p.Source == c2Ip && p.Decision is { Verdict: "ACCEPT", Position: not null } && p.Steps.Any(s => s.Table == "nat" && s.Chain == "POSTROUTING"), "c2 > c1 accepted, rule placed, then masqueraded");
            // Inserted first, then pushed down by the reply direction's rule.
            Assert.Equal(("DOCKER-USER", 2), (accepted.Decision!.Chain, accepted.Decision.Position));
            Assert.Contains($"-s {sub2} -d {sub1}", accepted.Decision.RuleText, StringComparison.Ordinal);
            Assert.Contains(accepted.Steps, s => s.Table == "nat" && s.Chain == "POSTROUTING" && s.RuleText!.Contains("MASQUERADE", StringComparison.Ordinal));

            // The reply is addressed to net1's gateway (the masqueraded source) when the trace sees it.
            var reply = await WaitForAsync(trace, p => p.Source == seed.C1Ip && p.Decision?.Verdict == "ACCEPT", "c1 > c2 reply accepted");
            Assert.Equal(gw1, reply.Destination);
            Assert.Contains($"-s {sub1} -d {sub2}", reply.Decision!.RuleText, StringComparison.Ordinal);
        }
        finally
        {
            await traces.StopAsync(trace);
        }

        Assert.False(trace.IsRunning);
        Assert.DoesNotContain(trace.Tag, await lab.RunAsync("iptables-save", "-t", "raw"), StringComparison.Ordinal);
        Assert.All(trace.Commands, c => Assert.True(c.Succeeded, c.CommandLine + ": " + c.Message));
        Assert.Equal(6, trace.Commands.Count);
        var monitors = await new Dashboard.Host.Processes.ProcessRunner().RunAsync("pgrep", ["-f", "xtables-monitor --trace"], TimeSpan.FromSeconds(5));
        Assert.Equal("", monitors.StdOut.Trim());
    }

    [SkippableFact]
    public async Task StartUp_RemovesLeftoverTraceRules_AndOnlyThose()
    {
        Dashboard.TestSupport.RealHost.Require();
        await using var lab = new LabScope();
        var leftover = RuleTag.For($"trace-main-leftover{lab.Id}");
        var otherInstance = RuleTag.For($"trace-other-leftover{lab.Id}");
        await lab.Writer.InsertAsync(new RuleSpec { Table = "raw", Chain = "PREROUTING", Position = 1, Source = "172.31.254.1", Destination = "172.31.254.2", Protocol = "icmp", Target = "TRACE", Tag = leftover });
        await lab.Writer.InsertAsync(new RuleSpec { Table = "raw", Chain = "PREROUTING", Position = 1, Source = "172.31.254.4", Protocol = "icmp", Target = "TRACE", Tag = otherInstance });
        await lab.InsertAsync(new RuleSpec { Table = "raw", Chain = "PREROUTING", Position = 1, Source = "172.31.254.3", Protocol = "icmp", Target = "TRACE", Tag = lab.Tag });
        try
        {
            Assert.Contains(leftover, await lab.RunAsync("iptables-save", "-t", "raw"), StringComparison.Ordinal);

            using var sp = HostServices.Build();
            var traces = sp.GetRequiredService<TraceService>();
            await ((IHostedService)traces).StartAsync(CancellationToken.None);

            var raw = await lab.RunAsync("iptables-save", "-t", "raw");
            Assert.DoesNotContain(leftover, raw, StringComparison.Ordinal);
            Assert.Contains(lab.Tag, raw, StringComparison.Ordinal);
            Assert.Contains(otherInstance, raw, StringComparison.Ordinal);
            var removed = Assert.Single(traces.LeftoversRemoved, r => r.CommandLine.Contains(leftover, StringComparison.Ordinal));
            Assert.True(removed.Succeeded);
            Assert.StartsWith("iptables -w 5 -t raw -D PREROUTING", removed.CommandLine, StringComparison.Ordinal);
        }
        finally
        {
            await lab.Writer.DeleteTaggedAsync(leftover);
            await lab.Writer.DeleteTaggedAsync(otherInstance);
        }
    }

    [SkippableFact]
    public async Task Replicas_OnOneDataFolder_CleaningUpLeavesTheOthersRunningTrace_AndRemovesAnUnclaimedOne()
    {
        Dashboard.TestSupport.RealHost.Require();
        await using var lab = new LabScope();
        var seed = await lab.CreateSeedLabAsync();
        var data = Directory.CreateTempSubdirectory("netlab-trace-claims-").FullName;
        var instance = "r" + lab.Id;
        var settings = new Dictionary<string, string?> { ["Host:InstanceId"] = instance, ["Host:CaptureDirectory"] = data };
        var unclaimed = RuleTag.For($"trace-{instance}-gone000000");
        var noClaimFile = RuleTag.For($"trace-{instance}-else000000");
        try
        {
            // Replica A traces; replica B (same instance id, same data folder) starts and cleans up, as the duty holder does.
            using var a = HostServices.Build(settings);
            using var b = HostServices.Build(settings);
            var running = await a.GetRequiredService<TraceService>().StartAsync(new TraceRequest(await lab.IpOfAsync(seed.C2, seed.Net2), seed.C1Ip));
            // A replica killed mid-trace: its rule, and its claim file that nobody holds any more.
            // (Two rules, as every trace has one per direction: both go.)
            await lab.Writer.InsertAsync(new RuleSpec { Table = "raw", Chain = "PREROUTING", Position = 1, Source = "172.31.254.5", Destination = "172.31.254.6", Protocol = "icmp", Target = "TRACE", Tag = unclaimed });
            await lab.Writer.InsertAsync(new RuleSpec { Table = "raw", Chain = "PREROUTING", Position = 1, Source = "172.31.254.6", Destination = "172.31.254.5", Protocol = "icmp", Target = "TRACE", Tag = unclaimed });
            var abandoned = Path.Combine(data, "trace-claims", unclaimed[RuleTag.Prefix.Length..]);
            await File.WriteAllTextAsync(abandoned, "");
            // A rule of this instance with no claim file (a replica whose data folder is elsewhere): the duty holder's sweep leaves it.
            await lab.Writer.InsertAsync(new RuleSpec { Table = "raw", Chain = "PREROUTING", Position = 1, Source = "172.31.254.7", Destination = "172.31.254.8", Protocol = "icmp", Target = "TRACE", Tag = noClaimFile });
            var removed = await b.GetRequiredService<TraceService>().RemoveLeftoversAsync(onlyAbandonedClaims: true);

            var raw = await lab.RunAsync("iptables-save", "-t", "raw");
            Assert.Contains(running.Tag, raw, StringComparison.Ordinal);
            Assert.Contains(noClaimFile, raw, StringComparison.Ordinal);
            Assert.DoesNotContain(unclaimed, raw, StringComparison.Ordinal);
            Assert.False(File.Exists(abandoned));
            Assert.Equal(2, removed.Count);
            Assert.All(removed, r => Assert.True(r.Succeeded && r.CommandLine.Contains(unclaimed, StringComparison.Ordinal), r.CommandLine));

            // At start-up (no sweep mode) a rule nobody claims goes too; the running trace still stays.
            removed = await b.GetRequiredService<TraceService>().RemoveLeftoversAsync();
            Assert.Contains(noClaimFile, Assert.Single(removed).CommandLine, StringComparison.Ordinal);
            Assert.Contains(running.Tag, await lab.RunAsync("iptables-save", "-t", "raw"), StringComparison.Ordinal);

            // A's trace ends: its rules and its claim go; B's next clean-up finds nothing.
            await a.GetRequiredService<TraceService>().StopAsync(running);
            Assert.DoesNotContain(running.Tag, await lab.RunAsync("iptables-save", "-t", "raw"), StringComparison.Ordinal);
            Assert.Empty(Directory.GetFiles(Path.Combine(data, "trace-claims")));
            Assert.Empty(await b.GetRequiredService<TraceService>().RemoveLeftoversAsync());
        }
        finally
        {
            await lab.Writer.DeleteTaggedWhereAsync(c => c.StartsWith(RuleTag.For($"trace-{instance}-"), StringComparison.Ordinal));
            Directory.Delete(data, recursive: true);
        }
    }

    [Theory]
    [InlineData("1.2.3.4; reboot", "172.18.0.2", "icmp")]
    [InlineData("172.18.0.2", "-j ACCEPT", "icmp")]
    [InlineData("172.18.0.0/16", "172.18.0.2", "icmp")]
    [InlineData("172.18.0.2", "172.18.0.3", "sctp;ls")]
    [InlineData("0172.18.0.2", "172.18.0.3", "icmp")]
    public async Task BadRequests_AreRejectedWithAMessage_AndStartNothing(string source, string destination, string protocol)
    {
        using var sp = HostServices.Build();
        var traces = sp.GetRequiredService<TraceService>();
        var ex = await Assert.ThrowsAsync<TraceRejectedException>(() => traces.StartAsync(new TraceRequest(source, destination, protocol)));
        Assert.Matches("must be one IPv4 address|protocol must be one of", ex.Message);
        Assert.Empty(traces.Sessions);
    }
}
