using Dashboard.App.Runs;
using Dashboard.Core.Firewall;

namespace Dashboard.Web.Tests.Runs;

/// <summary>A rule is named as the one that made two runs differ only if its parsed matches can hold for the probe's own flow.</summary>
public sealed class RunDifferencesTests
{
    private static readonly Ruleset Rules = IptablesSaveReader.Read("""
        *raw
        :PREROUTING ACCEPT [0:0]
        -A PREROUTING -d 172.18.0.2/32 ! -i br-0123456789ab -j DROP
        COMMIT
        *filter
        :FORWARD ACCEPT [0:0]
        -A FORWARD -s 172.20.0.0/24 -j DROP
        -A FORWARD ! -s 172.19.0.0/24 -j DROP
        -A FORWARD -j DROP
        COMMIT

        """);

    private static FirewallRule Rule(string table, int position) => Rules.Rules.Where(r => r.Table == table).ElementAt(position);

    [Theory]
    [InlineData("raw", 0, "172.19.0.2", "172.18.0.2", true)]
    [InlineData("raw", 0, "172.19.0.2", "172.18.0.3", false)]
    [InlineData("filter", 0, "172.19.0.2", "172.18.0.2", false)]
    [InlineData("filter", 0, "172.20.0.7", "172.18.0.2", true)]
    [InlineData("filter", 1, "172.19.0.2", "172.18.0.2", false)]
    [InlineData("filter", 1, "172.21.0.2", "172.18.0.2", true)]
    [InlineData("filter", 2, "172.19.0.2", "172.18.0.2", true)]
    [InlineData("filter", 0, null, "172.18.0.2", true)]
    public void CanMatch_FollowsTheRulesParsedSourceAndDestination(string table, int position, string? source, string destination, bool expected) =>
        Assert.Equal(expected, RunDifferences.CanMatch(Rule(table, position), source, destination));
}
