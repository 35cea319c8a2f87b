using Dashboard.Core.Capture;

namespace Dashboard.Core.Tests.Capture;

public class PcapStreamReaderTests
{
    private static byte[] Header(uint magic = 0xa1b2c3d4, uint snap = 262144, uint link = 1)
    {
        var b = new byte[24];
        BitConverter.GetBytes(magic).CopyTo(b, 0);
        BitConverter.GetBytes((ushort)2).CopyTo(b, 4);
        BitConverter.GetBytes((ushort)4).CopyTo(b, 6);
        BitConverter.GetBytes(snap).CopyTo(b, 16);
        BitConverter.GetBytes(link).CopyTo(b, 20);
        return b;
    }

    private static byte[] Record(uint seconds, uint micros, byte[] data, uint? claimed = null)
    {
        var b = new byte[16 + data.Length];
        BitConverter.GetBytes(seconds).CopyTo(b, 0);
        BitConverter.GetBytes(micros).CopyTo(b, 4);
        BitConverter.GetBytes(claimed ?? (uint)data.Length).CopyTo(b, 8);
        BitConverter.GetBytes((uint)data.Length).CopyTo(b, 12);
        data.CopyTo(b, 16);
        return b;
    }

    [Fact]
    public async Task Read_RecordsWithMicrosecondTimestamps()
    {
        using var ms = new MemoryStream([.. Header(), .. Record(1_764_000_000, 250_000, [1, 2, 3])]);
        var reader = new PcapStreamReader(ms);

        var header = await reader.ReadHeaderAsync();
        var record = await reader.ReadRecordAsync();

        Assert.Equal(1u, header!.Value.LinkType);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_764_000_000).AddMilliseconds(250), record!.Value.Timestamp);
        Assert.Equal([1, 2, 3], record.Value.Data);
        Assert.Null(await reader.ReadRecordAsync());
    }

    [Fact]
    public async Task Read_NotPcap_SaysSo()
    {
        using var ms = new MemoryStream(new byte[64]);

        var ex = await Assert.ThrowsAsync<InvalidDataException>(() => new PcapStreamReader(ms).ReadHeaderAsync());

        Assert.Contains("not a pcap stream", ex.Message);
    }

    [Fact]
    public async Task Read_RecordClaimingMoreThanSnapLength_IsRefusedNotAllocated()
    {
        using var ms = new MemoryStream([.. Header(snap: 96), .. Record(1, 0, [1], claimed: 0x7fffffff)]);
        var reader = new PcapStreamReader(ms);
        await reader.ReadHeaderAsync();

        var ex = await Assert.ThrowsAsync<InvalidDataException>(() => reader.ReadRecordAsync());

        Assert.Contains("exceeds the snapshot length", ex.Message);
    }

    [Fact]
    public void Decode_GarbageFrame_IsShownNotDropped()
    {
        var p = PacketDecoder.Decode(new PcapRecord(DateTimeOffset.UnixEpoch, 5, [1, 2, 3, 4, 5]));

        Assert.Contains("length 5", p.Summary);
    }
}
