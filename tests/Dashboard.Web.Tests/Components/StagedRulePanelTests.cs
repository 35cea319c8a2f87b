using Bunit;
using Dashboard.Core.Changes;
using Dashboard.Core.Firewall;
using Dashboard.Data.Entities;
using Dashboard.Web.Components.Pages.Changes;

namespace Dashboard.Web.Tests.Components;

/// <summary>A staged change's evidence: the counting rule's packets from the host's feed, and a capture of what it matches.</summary>
public sealed class StagedRulePanelTests : DashboardTestContext
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.UtcNow;

    private static ChangeDto Change(ChangeRule rule, ChangeStageDto? stage) => new(
        7, 1, rule, rule.Describe(), "count first", null, ChangeState.Proposed, "alice", T0, T0, null, null, null, false,
        "netlab:change-main-7", "iptables ...", null, null, null, null, null, null, null, null, stage);

    private static readonly ChangeRule Accept = new() { Chain = "DOCKER-USER", Position = 1, InInterface = "br-aaaaaaaaaaaa", OutInterface = "br-bbbbbbbbbbbb", Protocol = "icmp", Source = "172.18.0.0/16", Target = "ACCEPT" };

    [Fact]
    public void Counting_ShowsTheHostsCountersOfTheStagedRule_AndACaptureOfWhatItMatches()
    {
        Feed.FirewallChanged(IptablesSaveReader.Read("*filter\n:FORWARD ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n[5:420] -A DOCKER-USER -s 172.18.0.0/16 -i br-aaaaaaaaaaaa -o br-bbbbbbbbbbbb -p icmp -m comment --comment netlab:change-main-7-staged\n[9:756] -A DOCKER-USER -j RETURN\nCOMMIT\n"), T0);
        var stage = new ChangeStageDto(true, "netlab:change-main-7-staged", T0, "alice", T0.AddHours(1), null, "iptables -w 5 ...", "counting");

        var cut = Render<StagedRulePanel>(p => p.Add(x => x.Change, Change(Accept, stage)));

        Assert.Equal("5", cut.Find("[data-testid='staged-packets']").TextContent);
        Assert.Equal("420", cut.Find("[data-testid='staged-bytes']").TextContent);
        Assert.Contains("would be accepted", cut.Find("[data-testid='staged-rule']").TextContent, StringComparison.Ordinal);
        Assert.Contains("--comment netlab:change-main-7-staged", cut.Find("[data-testid='staged-rule-text']").TextContent, StringComparison.Ordinal);
        var link = cut.Find("[data-testid='staged-capture']").GetAttribute("href");
        Assert.Equal("captures?interface=br-aaaaaaaaaaaa&filter=icmp%20and%20src%20net%20172.18.0.0%2F16", link);
    }

    [Fact]
    public void NotYetRead_Ended_AndNoSingleInterface_SaySo()
    {
        Feed.FirewallChanged(IptablesSaveReader.Read("*filter\n:DOCKER-USER - [0:0]\nCOMMIT\n"), T0);
        var counting = new ChangeStageDto(true, "netlab:change-main-7-staged", T0, "alice", T0.AddHours(1), null, null, null);
        Assert.NotEmpty(Render<StagedRulePanel>(p => p.Add(x => x.Change, Change(Accept, counting))).FindAll("[data-testid='staged-not-read']"));

        var ended = counting with { Counting = false, UnstagedAt = T0.AddMinutes(5), Outcome = "rejected; staged rule removed and verified gone" };
        Assert.Contains("rejected; staged rule removed", Render<StagedRulePanel>(p => p.Add(x => x.Change, Change(Accept, ended))).Find("[data-testid='staged-ended']").TextContent, StringComparison.Ordinal);

        Assert.Null(StagedCapture.Of(Accept with { InInterface = "br-+", OutInterface = null }));
        Assert.Null(StagedCapture.Of(Accept with { InInterface = "br-aaaaaaaaaaaa", NegateInInterface = true, OutInterface = null }));
        var states = StagedCapture.Of(Accept with { ConnectionStates = ["NEW"], Protocol = "tcp", DestinationPort = 80, Source = "172.18.0.5", NegateSource = true })!;
        Assert.Equal("tcp and not src host 172.18.0.5 and dst port 80", states.Filter);
        Assert.Contains("conntrack states", states.Caveat, StringComparison.Ordinal);
    }
}
