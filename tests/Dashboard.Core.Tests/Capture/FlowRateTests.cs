using Dashboard.Core.Capture;

namespace Dashboard.Core.Tests.Capture;

/// <summary>A flow's rate is over the time it has existed: n packets a second apart are n-1 over n-1 s.</summary>
public class FlowRateTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.Parse("2026-11-28T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    [Theory]
    [InlineData(2, 1.0)]
    [InlineData(3, 1.0)]
    [InlineData(60, 1.0)]
    public void APacketASecond_IsOnePerSecond(int packets, double expected) =>
        Assert.Equal(expected, new FlowCount("a → b", packets, packets * 98, T0, T0.AddSeconds(packets - 1)).Rate!.Value, 6);

    [Fact]
    public void OnePacket_OrAllAtOneInstant_HasNoRateYet()
    {
        Assert.Null(new FlowCount("a → b", 1, 98, T0, T0).Rate);
        Assert.Null(new FlowCount("a → b", 5, 490, T0, T0).Rate);
    }
}
