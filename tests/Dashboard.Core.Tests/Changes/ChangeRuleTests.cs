using Dashboard.Core.Changes;
using Dashboard.Core.Firewall;

namespace Dashboard.Core.Tests.Changes;

/// <summary>The structured rule of a change request: every field checked, nothing free reaches the argument vector.</summary>
public class ChangeRuleTests
{
    private static ChangeRule Accept() => new()
    {
        Table = "filter",
        Chain = "DOCKER-USER",
        Position = 1,
        InInterface = "br-0123456789ab",
        OutInterface = "br-ba9876543210",
        Protocol = "icmp",
        Target = "ACCEPT",
    };

    [Fact]
    public void ToSpec_FullRule_RendersEveryFieldAsSeparateArguments()
    {
        var rule = Accept() with
        {
            Protocol = "tcp",
            SourcePort = 1024,
            DestinationPort = 8080,
            Source = "172.18.0.0/16",
            NegateSource = true,
            Destination = "172.19.0.2",
            ConnectionStates = ["ESTABLISHED", "NEW"],
            Position = null,
        };
        Assert.Empty(rule.Validate());
        Assert.Equal(
            ["-w", "5", "-t", "filter", "-A", "DOCKER-USER", "-i", "br-0123456789ab", "-o", "br-ba9876543210", "!", "-s", "172.18.0.0/16", "-d", "172.19.0.2",
                "-p", "tcp", "-m", "tcp", "--sport", "1024", "--dport", "8080", "-m", "conntrack", "--ctstate", "NEW,ESTABLISHED", "-m", "comment", "--comment", "netlab:change-main-7", "-j", "ACCEPT"],
            rule.ToSpec(RuleTag.For("change-main-7")).InsertArguments());
    }

    [Fact]
    public void ToStagedSpec_IsTheSameMatchWithoutATarget_AndTheRestoreLineIsTheInsert()
    {
        var rule = Accept() with { Source = "172.18.0.0/16", Position = 2 };
        var staged = rule.ToStagedSpec(RuleTag.For("change-main-7-staged"));

        Assert.Equal(
            ["-w", "5", "-t", "filter", "-I", "DOCKER-USER", "2", "-i", "br-0123456789ab", "-o", "br-ba9876543210", "-s", "172.18.0.0/16", "-p", "icmp", "-m", "comment", "--comment", "netlab:change-main-7-staged"],
            staged.InsertArguments());
        Assert.Equal("ACCEPT", staged.Target);
        Assert.Equal(
            "-I DOCKER-USER 2 -i br-0123456789ab -o br-ba9876543210 -s 172.18.0.0/16 -p icmp -m comment --comment netlab:change-main-7 -j ACCEPT",
            rule.ToSpec(RuleTag.For("change-main-7")).RestoreLine());
        Assert.StartsWith("-A DOCKER-USER ", (rule with { Position = null }).ToSpec(RuleTag.For("change-main-7")).RestoreLine(), StringComparison.Ordinal);

        // Read back as iptables-save prints it, the staged rule has no target: the evaluator walks on past it.
        var save = IptablesSaveReader.Read("*filter\n:DOCKER-USER - [0:0]\n[3:252] -A DOCKER-USER -s 172.18.0.0/16 -i br-0123456789ab -o br-ba9876543210 -p icmp -m comment --comment netlab:change-main-7-staged\nCOMMIT\n");
        var read = Assert.Single(save.Rules);
        Assert.Null(read.Target);
        Assert.Equal("netlab:change-main-7-staged", read.Comment);
        Assert.Equal(3UL, read.Packets);
    }

    [Theory]
    [InlineData("Source", "1.2.3.4; reboot")]
    [InlineData("Source", "172.18.0.0/16 -j ACCEPT")]
    [InlineData("Destination", "$(reboot)")]
    [InlineData("Destination", "`id`")]
    [InlineData("InInterface", "eth0 -j ACCEPT")]
    [InlineData("InInterface", "br-ünïcødé")]
    [InlineData("OutInterface", "етх0")]
    [InlineData("OutInterface", "-j")]
    [InlineData("Chain", "DOCKER-USER; reboot")]
    [InlineData("Chain", "-F")]
    [InlineData("Table", "security")]
    [InlineData("Target", "REJECT --reject-with tcp-reset")]
    [InlineData("Target", "TRACE")]
    [InlineData("Protocol", "icmp; reboot")]
    public void Validate_HostileField_IsRejectedWithTheFieldNamed(string field, string value)
    {
        var rule = field switch
        {
            "Source" => Accept() with { Source = value },
            "Destination" => Accept() with { Destination = value },
            "InInterface" => Accept() with { InInterface = value },
            "OutInterface" => Accept() with { OutInterface = value },
            "Chain" => Accept() with { Chain = value },
            "Table" => Accept() with { Table = value },
            "Target" => Accept() with { Target = value },
            _ => Accept() with { Protocol = value },
        };
        var errors = rule.Validate();
        Assert.True(errors.ContainsKey(field), $"{field}={value}: {string.Join("; ", errors)}");
        if (value != "TRACE")
        {
            // TRACE is a valid iptables target (traces use it) but not one a change request may propose.
            Assert.Throws<ArgumentException>(() => rule.ToSpec(RuleTag.For("change-x-1")).InsertArguments());
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    [InlineData(100_001)]
    public void Validate_PositionOutOfRange_IsRejected(int position) =>
        Assert.Contains("Position", (Accept() with { Position = position }).Validate().Keys);

    [Fact]
    public void Validate_TenThousandCharacterFields_AreRejected()
    {
        var huge = new string('a', 10_000);
        var rule = Accept() with { Chain = huge, InInterface = huge, Source = huge, Destination = "1." + huge };
        var errors = rule.Validate();
        Assert.Contains("Chain", errors.Keys);
        Assert.Contains("InInterface", errors.Keys);
        Assert.Contains("Source", errors.Keys);
        Assert.Contains("Destination", errors.Keys);
        Assert.All(errors.Values, v => Assert.True(v.Length < 300, v));
        Assert.Contains("Rationale", ChangeRule.ValidateRequest(new string('x', 10_000), null).Keys);
    }

    [Fact]
    public void ValidateRequest_RationaleWithIptablesWords_IsAcceptedButNeverPartOfTheCommand()
    {
        const string rationale = "-j ACCEPT; reboot $(id) \"--comment x\"";
        Assert.Empty(ChangeRule.ValidateRequest(rationale, 60));
        var args = Accept().ToSpec(RuleTag.For("change-main-1")).InsertArguments();
        Assert.DoesNotContain(args, a => a.Contains("reboot", StringComparison.Ordinal) || a.Contains("$(", StringComparison.Ordinal));
        Assert.Equal("netlab:change-main-1", args[args.ToList().IndexOf("--comment") + 1]);
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData(5, true)]
    [InlineData(4, false)]
    [InlineData(-60, false)]
    [InlineData(30 * 24 * 3600 + 1, false)]
    public void ValidateRequest_TimeToLive_Bounds(int? ttl, bool ok) =>
        Assert.Equal(ok, !ChangeRule.ValidateRequest("why", ttl).ContainsKey("TtlSeconds"));

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("bell\a")]
    public void ValidateRequest_EmptyOrControlRationale_IsRejected(string rationale) =>
        Assert.Contains("Rationale", ChangeRule.ValidateRequest(rationale, null).Keys);

    [Fact]
    public void Validate_NegationWithoutValue_AndMixedFamilies_AreRejected()
    {
        Assert.Contains("NegateSource", (Accept() with { NegateSource = true }).Validate().Keys);
        Assert.Contains("Destination", (Accept() with { Source = "172.18.0.0/16", Destination = "fd00::/64" }).Validate().Keys);
        Assert.Contains("ConnectionStates", (Accept() with { ConnectionStates = ["NEW", "BOGUS"] }).Validate().Keys);
        Assert.Contains("DestinationPort", (Accept() with { DestinationPort = 80 }).Validate().Keys);
    }

    [Fact]
    public void Json_RoundTrips()
    {
        var rule = Accept() with { ConnectionStates = ["RELATED", "ESTABLISHED"], Source = "172.18.0.0/16" };
        Assert.Equal(rule.Describe(), ChangeRule.FromJson(rule.ToJson()).Describe());
        Assert.Equal("filter DOCKER-USER #1: -i br-0123456789ab -o br-ba9876543210 -s 172.18.0.0/16 -p icmp --ctstate RELATED,ESTABLISHED → ACCEPT", rule.Describe());
    }
}
