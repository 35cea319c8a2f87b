using Dashboard.Core.Capture;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Capture;

/// <summary>
/// A frame taken apart field by field on the seed's recorded captures: values agree with the decoder, every field's
/// bytes lie inside the frame, and no frame (cut at any length, or random bytes) makes it throw.
/// </summary>
public class PacketDissectorTests
{
    private static async Task<List<PcapRecord>> FramesAsync(string name)
    {
        await using var file = File.OpenRead(TestPaths.CoreFixture("pcap/" + name));
        var reader = new PcapStreamReader(file);
        await reader.ReadHeaderAsync();
        var frames = new List<PcapRecord>();
        while (await reader.ReadFrameAsync() is { } f)
        {
            frames.Add(new PcapRecord(f.Timestamp, f.OriginalLength, f.Data.ToArray()));
        }

        return frames;
    }

    private static void AssertInside(IReadOnlyList<PacketLayer> layers, int length) =>
        Assert.All(layers.SelectMany(l => l.Fields), f => Assert.True(f.Offset >= 0 && f.Length >= 0 && f.Offset + f.Length <= length, $"{f.Name} at {f.Offset}+{f.Length} of {length}"));

    [Theory]
    [InlineData("seed-docker-user-net1.pcap")]
    [InlineData("seed-docker-user-net2.pcap")]
    public async Task EveryFrame_AgreesWithTheDecoder_AndItsFieldsLieInsideIt(string name)
    {
        var frames = await FramesAsync(name);
        Assert.NotEmpty(frames);
        var echoes = 0;
        foreach (var r in frames)
        {
            var decoded = PacketDecoder.Decode(r);
            var layers = PacketDissector.Dissect(r.Data, r.OriginalLength);
            AssertInside(layers, r.Data.Length);
            Assert.Equal(decoded.SourceMac, layers[0].Fields.Single(f => f.Name == "Source").Value);
            if (decoded.Echo is { } echo && decoded.Protocol == "ICMP")
            {
                echoes++;
                var ip = layers.Single(l => l.Name == "IPv4");
                Assert.Equal(decoded.Source, ip.Fields.Single(f => f.Name == "Source").Value);
                Assert.Equal(decoded.Destination, ip.Fields.Single(f => f.Name == "Destination").Value);
                Assert.EndsWith("(correct)", ip.Fields.Single(f => f.Name == "Header checksum").Value, StringComparison.Ordinal);
                var icmp = layers.Single(l => l.Name == "ICMP");
                Assert.Equal(echo.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture), icmp.Fields.Single(f => f.Name == "Sequence").Value);
                Assert.Equal(echo.IsRequest ? "8 (echo request)" : "0 (echo reply)", icmp.Fields.Single(f => f.Name == "Type").Value);
            }
        }

        Assert.True(echoes >= 3, $"{echoes} echoes");
    }

    [Fact]
    public async Task ADamagedHeader_ItsChecksumIsWrong_AndFramesCutAnywhereOrRandomNeverThrow()
    {
        var frames = await FramesAsync("seed-docker-user-net2.pcap");
        var echo = frames.First(r => PacketDecoder.Decode(r).Echo is not null).Data.ToArray();
        echo[14 + 8]--; // TTL changed, checksum not
        Assert.EndsWith("(wrong)", PacketDissector.Dissect(echo, echo.Length).Single(l => l.Name == "IPv4").Fields.Single(f => f.Name == "Header checksum").Value, StringComparison.Ordinal);

        foreach (var r in frames)
        {
            for (var cut = 0; cut <= r.Data.Length; cut++)
            {
                var layers = PacketDissector.Dissect(r.Data.AsSpan(0, cut), r.OriginalLength);
                AssertInside(layers, cut);
            }
        }

        var random = new Random(18);
        for (var i = 0; i < 5_000; i++)
        {
            var bytes = new byte[random.Next(0, 160)];
            random.NextBytes(bytes);
            if (bytes.Length > 13 && i % 3 == 0)
            {
                bytes[12] = 0x08; // IPv4, with random header lengths, protocols and fragments
                bytes[13] = 0x00;
            }

            AssertInside(PacketDissector.Dissect(bytes, bytes.Length), bytes.Length);
        }
    }
}
