using System.Buffers.Binary;

namespace Dashboard.Core.Capture;

/// <summary>One record of a pcap stream: its timestamp, the bytes captured and the length the packet had on the wire.</summary>
public readonly record struct PcapRecord(DateTimeOffset Timestamp, int OriginalLength, byte[] Data);

/// <summary>A record's header and its bytes in the reader's own buffer: valid until the next read.</summary>
public readonly record struct PcapFrame(DateTimeOffset Timestamp, int OriginalLength, ReadOnlyMemory<byte> Data);

/// <summary>The link type and snapshot length a pcap stream declares.</summary>
public readonly record struct PcapHeader(uint LinkType, int SnapLength, bool Nanoseconds);

/// <summary>
/// Reads the classic pcap format (what <c>tcpdump -w -</c> writes) from a stream, record by record, with bounds: a record
/// larger than the declared snapshot length (or 256 KiB) is an error, never an allocation of whatever the header claims.
/// </summary>
public sealed class PcapStreamReader(Stream stream)
{
    public const int MaxRecordBytes = 256 * 1024;

    private readonly byte[] _header = new byte[24];
    private readonly byte[] _recordHeader = new byte[16];
    private bool _bigEndian;

    public PcapHeader? Header { get; private set; }

    /// <summary>Reads the 24-byte global header; null when the stream ends before it.</summary>
    public async Task<PcapHeader?> ReadHeaderAsync(CancellationToken ct = default)
    {
        if (!await FillAsync(_header, ct).ConfigureAwait(false))
        {
            return null;
        }

        var magic = BinaryPrimitives.ReadUInt32LittleEndian(_header);
        var (big, nanos) = magic switch
        {
            0xa1b2c3d4 => (false, false),
            0xa1b23c4d => (false, true),
            0xd4c3b2a1 => (true, false),
            0x4d3cb2a1 => (true, true),
            _ => throw new InvalidDataException($"not a pcap stream (magic 0x{magic:x8})"),
        };
        _bigEndian = big;
        var snap = ReadUInt32(_header.AsSpan(16));
        var link = ReadUInt32(_header.AsSpan(20));
        Header = new PcapHeader(link, (int)Math.Min(snap == 0 ? MaxRecordBytes : snap, MaxRecordBytes), nanos);
        return Header;
    }

    /// <summary>The next record, or null at the end of the stream.</summary>
    public async Task<PcapRecord?> ReadRecordAsync(CancellationToken ct = default) =>
        await ReadFrameAsync(ct).ConfigureAwait(false) is { } f ? new PcapRecord(f.Timestamp, f.OriginalLength, f.Data.ToArray()) : null;

    private byte[] _data = new byte[2048];

    /// <summary>The next record without a copy: its bytes stay in the reader's buffer until the next call. Null at the end.</summary>
    public async ValueTask<PcapFrame?> ReadFrameAsync(CancellationToken ct = default)
    {
        var header = Header ?? throw new InvalidOperationException("read the header first");
        if (!await FillAsync(_recordHeader, ct).ConfigureAwait(false))
        {
            return null;
        }

        var seconds = ReadUInt32(_recordHeader);
        var fraction = ReadUInt32(_recordHeader.AsSpan(4));
        var captured = ReadUInt32(_recordHeader.AsSpan(8));
        var original = ReadUInt32(_recordHeader.AsSpan(12));
        if (captured > header.SnapLength || captured > MaxRecordBytes)
        {
            throw new InvalidDataException($"pcap record of {captured} bytes exceeds the snapshot length {header.SnapLength}");
        }

        if (_data.Length < captured)
        {
            _data = new byte[Math.Max(captured, _data.Length * 2)];
        }

        var data = _data.AsMemory(0, (int)captured);
        if (!await FillAsync(data, ct).ConfigureAwait(false))
        {
            return null;
        }

        var ticks = header.Nanoseconds ? fraction / 100 : fraction * 10L;
        var ts = DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(ticks);
        return new PcapFrame(ts, (int)Math.Min(original, int.MaxValue), data);
    }

    private uint ReadUInt32(ReadOnlySpan<byte> b) => _bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(b) : BinaryPrimitives.ReadUInt32LittleEndian(b);

    /// <summary>Fills the buffer; false when the stream ends first (a partial record at the end is treated as the end).</summary>
    private async ValueTask<bool> FillAsync(Memory<byte> buffer, CancellationToken ct)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer[read..], ct).ConfigureAwait(false);
            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }
}
