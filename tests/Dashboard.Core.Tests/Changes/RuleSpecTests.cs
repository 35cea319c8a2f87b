using Dashboard.Core.Changes;

namespace Dashboard.Core.Tests.Changes;

public class RuleSpecTests
{
    private static RuleSpec Accept(string? source = "172.18.0.0/16") => new()
    {
        Chain = "DOCKER-USER",
        Position = 1,
        Source = source,
        Destination = "172.19.0.0/16",
        Target = "ACCEPT",
        Tag = "netlab:test-1",
    };

    [Fact]
    public void InsertArguments_ValidSpec_IsAnArgumentVectorWithLockWaitAndTag()
    {
        Assert.Equal(
            ["-w", "5", "-t", "filter", "-I", "DOCKER-USER", "1", "-s", "172.18.0.0/16", "-d", "172.19.0.0/16", "-m", "comment", "--comment", "netlab:test-1", "-j", "ACCEPT"],
            Accept().InsertArguments());
    }

    [Theory]
    [InlineData("1.2.3.4; reboot")]
    [InlineData("172.18.0.0/16 -j ACCEPT")]
    [InlineData("$(reboot)")]
    [InlineData("172.18.0.0/33")]
    [InlineData("172.20/30")]
    [InlineData("172.20.0.5/16")]
    [InlineData("172.018.0.1")]
    [InlineData("172.18.0.0/016")]
    [InlineData("2886860802")]
    public void Validate_HostileAddress_IsRejectedAndNeverRendered(string source)
    {
        var spec = Accept(source);

        Assert.Contains("Source", spec.Validate().Keys);
        Assert.Throws<ArgumentException>(() => spec.InsertArguments());
    }

    [Theory]
    [InlineData("eth0;reboot")]
    [InlineData("-j")]
    [InlineData("ethéééé")]
    [InlineData("averyveryverylongname")]
    public void Validate_BadInterface_IsRejected(string name)
    {
        Assert.Contains("InInterface", (Accept() with { InInterface = name }).Validate().Keys);
    }

    [Fact]
    public void Validate_NegativePositionAndUnknownTarget_AreRejected()
    {
        var errors = (Accept() with { Position = -1, Target = "ACCEPT; reboot", Tag = "lab change 1" }).Validate();

        Assert.Equal(["Position", "Tag", "Target"], errors.Keys.Order(StringComparer.Ordinal));
    }
}
