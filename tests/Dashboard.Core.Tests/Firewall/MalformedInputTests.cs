using System.Diagnostics;
using System.Text;
using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Firewall;

public class MalformedInputTests
{
    [Theory]
    [InlineData(10)]
    [InlineData(25)]
    [InlineData(52)]
    public void Read_TruncatedDump_FailsNamingTheLastLine(int keepLines)
    {
        var lines = TestPaths.ReadShared("iptables/docker-20.10-two-networks-isolated.save").Split('\n').Take(keepLines);

        var ex = Assert.Throws<RulesetFormatException>(() => IptablesSaveReader.Read(string.Join('\n', lines)));

        Assert.Equal(keepLines, ex.Line);
        Assert.Contains("not committed", ex.Message);
    }

    [Fact]
    public void Read_DumpCutRightAfterCommit_IsAValidShorterDump()
    {
        var lines = TestPaths.ReadShared("iptables/docker-20.10-two-networks-isolated.save").Split('\n').Take(47);

        var rs = IptablesSaveReader.Read(string.Join('\n', lines));

        Assert.Equal("filter", Assert.Single(rs.Tables).Name);
    }

    [Fact]
    public void Read_TruncatedMidRule_FailsWithLineNumber()
    {
        var text = "*filter\n:FORWARD DROP [0:0]\n[3:252] -A FORWARD -m comment --comment \"unfinished";

        var ex = Assert.Throws<RulesetFormatException>(() => IptablesSaveReader.Read(text));

        Assert.Equal(3, ex.Line);
        Assert.Contains("unterminated", ex.Message);
    }

    [Fact]
    public void Read_BinaryNoise_FailsWithMessageNotCrash()
    {
        var rng = new Random(42);
        var bytes = new byte[64 * 1024];
        rng.NextBytes(bytes);
        var text = Encoding.Latin1.GetString(bytes);

        var ex = Assert.Throws<RulesetFormatException>(() => RulesetReader.Read(text));

        Assert.True(ex.Line >= 1);
    }

    [Theory]
    [InlineData("{ not json", "not valid JSON")]
    [InlineData("{\"foo\": 1}", "\"nftables\" array")]
    [InlineData("{\"nftables\": [{\"rule\": {\"family\": \"ip\", \"table\": \"t\", \"chain\": \"c\", \"expr\": []}}]}", "not listed before it")]
    [InlineData("{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\"}}]}", "no tables")]
    [InlineData("   ", "empty")]
    [InlineData("-A FORWARD -j ACCEPT", "expected '*table' first")]
    [InlineData("*filter\n:FORWARD DROP [0:0]\n[x:y] -A FORWARD -j ACCEPT\nCOMMIT", "bad rule counters")]
    [InlineData("*filter\n[0:0] -A NOPE -j ACCEPT\nCOMMIT", "does not declare")]
    [InlineData("*filter\nCOMMIT\nCOMMIT", "COMMIT without a table")]
    [InlineData("hello world", "not an iptables-save line")]
    public void Read_Malformed_ExplainsWhy(string text, string expected)
    {
        var ex = Assert.Throws<RulesetFormatException>(() => RulesetReader.Read(text));

        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void Read_DeeplyNestedJson_IsRejectedNotStackOverflow()
    {
        var text = "{\"nftables\": " + new string('[', 100_000) + new string(']', 100_000) + "}";

        var ex = Assert.Throws<RulesetFormatException>(() => NftJsonReader.Read(text));

        Assert.Contains("JSON", ex.Message);
    }

    [Fact]
    public void Read_OneMegabyteLine_IsKeptWholeInBoundedTime()
    {
        var comment = new string('x', 1024 * 1024);
        var text = $"*filter\n:DOCKER-USER - [0:0]\n[1:2] -A DOCKER-USER -m comment --comment \"{comment}\" -j ACCEPT\nCOMMIT\n";
        var sw = Stopwatch.StartNew();

        var rs = IptablesSaveReader.Read(text);

        Assert.Equal(comment, rs.Rules.Single().Comment);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"took {sw.Elapsed}");
    }

    [Fact]
    public void Read_OneMegabyteLineOfGarbage_FailsWithLineNumber()
    {
        var text = "*filter\n:X - [0:0]\n" + new string('z', 1024 * 1024) + "\nCOMMIT\n";

        var ex = Assert.Throws<RulesetFormatException>(() => IptablesSaveReader.Read(text));

        Assert.Equal(3, ex.Line);
        Assert.True(ex.Message.Length < 200, "the message quotes only the start of the line");
    }
}
