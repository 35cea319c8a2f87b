using Dashboard.Host.Agents;

namespace Dashboard.App.Hosts;

/// <summary>
/// A capture's pcap on an agent's host, read as a stream: each read past what has arrived asks the agent for the next
/// piece (at most <see cref="AgentProtocol.MaxPcapChunk"/> bytes), so a download of any size holds one piece in memory.
/// The length is the file's when the download began; a capture still running adds to it meanwhile, and the download
/// stops at that length.
/// </summary>
public sealed class AgentPcapStream(IAgentCommands agents, string host, string captureId, TimeSpan deadline, long? byteLimit = null, Action? onDispose = null) : Stream
{
    private int _disposed;
    private byte[] _piece = [];
    private int _at;
    private long _offset; // of the next piece
    private long _length = -1;

    /// <summary>Asks for the first piece; false when the agent has no pcap for the capture (any more).</summary>
    public async Task<bool> OpenAsync(CancellationToken ct = default)
    {
        var reply = await ReadAsync(0, ct).ConfigureAwait(false);
        if (reply.Pcap is null || reply.PcapLength is not { } length)
        {
            return false;
        }

        (_piece, _at, _offset, _length) = (reply.Pcap, 0, reply.Pcap.Length, length);
        return true;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_length < 0)
        {
            throw new InvalidOperationException("the pcap stream is not open");
        }

        if (_at == _piece.Length)
        {
            if (_offset >= _length)
            {
                return 0;
            }

            var reply = await ReadAsync(_offset, cancellationToken).ConfigureAwait(false);
            if (reply.Pcap is not { Length: > 0 } piece || reply.PcapLength < _length)
            {
                // The file cannot shrink, and a piece before its end is not empty: this download ends here, short.
                throw new IOException($"host {host} sent no more of capture {captureId}'s pcap at byte {_offset}: {reply.Refused ?? reply.Failed ?? "an empty piece, or a shorter file"}");
            }

            var wanted = (int)Math.Min(piece.Length, _length - _offset);
            (_piece, _at, _offset) = (wanted == piece.Length ? piece : piece[..wanted], 0, _offset + wanted);
        }

        var n = Math.Min(buffer.Length, _piece.Length - _at);
        _piece.AsMemory(_at, n).CopyTo(buffer);
        _at += n;
        return n;
    }

    /// <summary>One piece, checked before it is used: at most a piece's size, of a file the capture's byte limit allows.</summary>
    private async Task<AgentSessionReply> ReadAsync(long offset, CancellationToken ct)
    {
        var reply = await agents.SessionAsync(host, new AgentSessionCommand(AgentSessionAction.ReadPcap, captureId, Offset: offset), deadline, ct).ConfigureAwait(false);
        return AgentMessageCheck.Problem(reply, AgentSessionAction.ReadPcap, byteLimit) is { } problem
            ? throw new IOException($"host {host} sent a piece of capture {captureId}'s pcap this dashboard does not accept: {problem}")
            : reply;
    }

    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            onDispose?.Invoke();
        }

        base.Dispose(disposing);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _length >= 0 ? _length : throw new NotSupportedException();

    public override long Position { get => _offset - (_piece.Length - _at); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
