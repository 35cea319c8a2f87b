using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Dashboard.Core.Capture;

namespace Dashboard.Host.Capture;

/// <summary>What to capture: an interface, an optional BPF filter, when to stop by itself (packets, time, pcap bytes), and whose it is.</summary>
public sealed record CaptureRequest(string Interface, string? Filter = null, int SnapLength = 262_144, long? PacketLimit = null, TimeSpan? TimeLimit = null, long? ByteLimit = null, SessionOwner? Owner = null)
{
    public SessionOwner OwnerOrSystem => Owner ?? SessionOwner.System;
}

public enum CaptureEndReason
{
    Running,
    Requested,
    PacketLimit,
    TimeLimit,
    ByteLimit,
    InterfaceGone,
    ShuttingDown,
    Failed,
}

/// <summary>
/// Counts that account for every packet: read from tcpdump (each one then shown whole or counted per flow, nothing dropped
/// in between), of those decoded whole only to find their flow, and tcpdump's own counts (captured, received by the
/// filter, dropped by the kernel) once it stops.
/// </summary>
public sealed record CaptureStats(long Read, long DecodedForFlow, long? CapturedByTcpdump, long? ReceivedByFilter, long? DroppedByKernel)
{
    /// <summary>
    /// Packets tcpdump counted as captured but never wrote to the dashboard: when it is stopped while blocked writing to a
    /// full pipe (a flood), the stop signal interrupts that write and the packet is lost in tcpdump (its signal handler
    /// does not restart the write; one record at most, measured: 561 captured, 560 written). Zero until tcpdump reports.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public long NotWritten => CapturedByTcpdump is { } c && c > Read ? c - Read : 0;
}

/// <summary>
/// One running <c>tcpdump -i IF -w - -U</c>: its pcap stream is read record by record into a <see cref="PacketTally"/>
/// (the first packets of each batch kept whole, the rest counted per flow from their header bytes, so nothing is
/// dropped between tcpdump and the viewers however fast packets come) and kept whole in a pcap file for download.
/// </summary>
public sealed partial class CaptureSession : ICaptureSession, IAsyncDisposable
{
    /// <summary>Bytes read from tcpdump's pipe at once.</summary>
    public const int ReadBuffer = 256 * 1024;

    private readonly Process _process;
    private PacketTally? _tally; // made when the pcap header says the link type
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _stderr = [];
    private long _read;
    private CaptureEndReason _requestedReason = CaptureEndReason.Running;
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when tcpdump says it is listening (or has ended): packets sent after this are captured.</summary>
    public Task Listening => _listening.Task;

    internal CaptureSession(string id, CaptureRequest request, Process process, string pcapPath, int maxShown = PacketTally.DefaultMaxShown)
    {
        _maxShown = maxShown;
        Id = id;
        Request = request;
        _process = process;
        PcapPath = pcapPath;
        StartedAt = DateTimeOffset.UtcNow;
        Completion = RunAsync();
    }

    public string Id { get; }

    public CaptureRequest Request { get; }

    public DateTimeOffset StartedAt { get; }

    public DateTimeOffset? EndedAt { get; private set; }

    public CaptureEndReason EndReason { get; private set; } = CaptureEndReason.Running;

    /// <summary>What tcpdump said when it ended, when that explains the end.</summary>
    public string? EndMessage { get; private set; }

    /// <summary>The raw pcap as tcpdump wrote it, for Wireshark.</summary>
    public string PcapPath { get; }

    public int ProcessId => _process.Id;

    private readonly int _maxShown;

    /// <summary>What was read since the last call: at most the batch budget of packets whole, the rest counted per flow.</summary>
    public PacketBatch TakeBatch() => Volatile.Read(ref _tally)?.Take() ?? PacketBatch.Empty;

    /// <summary>As <see cref="TakeBatch"/>, with the kept frames as read (an agent sends them; the dashboard decodes them).</summary>
    public RawPacketBatch TakeRawBatch() => Volatile.Read(ref _tally)?.TakeRaw() ?? RawPacketBatch.Empty;

    /// <summary>The link type the pcap header declared (Ethernet until it is read).</summary>
    public uint LinkType => Volatile.Read(ref _tally)?.LinkType ?? PacketDecoder.LinkTypeEthernet;

    public Task Completion { get; }

    public CaptureStats Stats
    {
        get
        {
            var text = string.Join('\n', _stderr);
            return new CaptureStats(Interlocked.Read(ref _read), Volatile.Read(ref _tally)?.DecodedWhole ?? 0,
                Count(CapturedLine(), text), Count(ReceivedLine(), text), Count(KernelDropLine(), text));
        }
    }

    /// <summary>Stops the capture (tcpdump gets SIGINT so it reports its counts) and waits for it to end.</summary>
    public async Task StopAsync(CaptureEndReason reason = CaptureEndReason.Requested)
    {
        if (_requestedReason == CaptureEndReason.Running)
        {
            _requestedReason = reason;
        }

        Signal(_process, 2);
        try
        {
            await Completion.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _process.Kill(entireProcessTree: true);
            await Completion.ConfigureAwait(false);
        }
    }

    private async Task RunAsync()
    {
        if (Request.TimeLimit is { } limit)
        {
            _ = Task.Delay(limit, _stop.Token).ContinueWith(t => t.IsCompletedSuccessfully ? StopAsync(CaptureEndReason.TimeLimit) : Task.CompletedTask, TaskScheduler.Default);
        }

        var stderr = Task.Run(async () =>
        {
            while (await _process.StandardError.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                lock (_stderr)
                {
                    _stderr.Add(line);
                }

                if (line.Contains("listening on", StringComparison.Ordinal))
                {
                    _listening.TrySetResult();
                }
            }
        });
        try
        {
            await using var file = new FileStream(PcapPath, FileMode.Create, FileAccess.Write, FileShare.Read);
            // One read of the pipe (and one write of the pcap file) per 256 KiB at most, not two of each per packet.
            await using var buffered = new BufferedStream(new TeeStream(_process.StandardOutput.BaseStream, file), ReadBuffer);
            var reader = new PcapStreamReader(buffered);
            if (await reader.ReadHeaderAsync().ConfigureAwait(false) is { } header)
            {
                var tally = new PacketTally(header.LinkType, _maxShown);
                Volatile.Write(ref _tally, tally);
                while (await reader.ReadFrameAsync().ConfigureAwait(false) is { } frame)
                {
                    if (Request.ByteLimit is { } max && file.Position > max && _requestedReason == CaptureEndReason.Running)
                    {
                        // The pcap holds what was read so far; tcpdump is asked to stop, what it still sends is decoded too.
                        _ = StopAsync(CaptureEndReason.ByteLimit);
                    }

                    tally.Add(frame.Timestamp, frame.OriginalLength, frame.Data.Span);
                    Interlocked.Increment(ref _read);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException)
        {
            EndMessage = ex.Message;
        }
        finally
        {
            await _process.WaitForExitAsync().ConfigureAwait(false);
            await stderr.ConfigureAwait(false);
            _stop.Cancel();
            _listening.TrySetResult();
            EndedAt = DateTimeOffset.UtcNow;
            EndReason = await DecideEndAsync().ConfigureAwait(false);
        }
    }

    private async Task<CaptureEndReason> DecideEndAsync()
    {
        if (_requestedReason != CaptureEndReason.Running)
        {
            return _requestedReason;
        }

        var last = _stderr.LastOrDefault(l => l.Length > 0 && !l.Contains("packets", StringComparison.Ordinal));

        // tcpdump ends as the device goes down, a moment before the kernel removes it.
        var sysPath = Path.Combine("/sys/class/net", Request.Interface);
        for (var i = 0; i < 10 && Directory.Exists(sysPath); i++)
        {
            await Task.Delay(100).ConfigureAwait(false);
        }

        var saysGone = last is not null && (last.Contains("went down", StringComparison.OrdinalIgnoreCase) || last.Contains("No such device", StringComparison.OrdinalIgnoreCase));
        if (!Directory.Exists(sysPath) || saysGone)
        {
            EndMessage = $"interface {Request.Interface} disappeared" + (last is null ? "" : $" (tcpdump: {last})");
            return CaptureEndReason.InterfaceGone;
        }

        if (Request.PacketLimit is { } n && Interlocked.Read(ref _read) >= n)
        {
            return CaptureEndReason.PacketLimit;
        }

        EndMessage ??= last ?? $"tcpdump exited with code {_process.ExitCode}";
        return CaptureEndReason.Failed;
    }

    /// <summary>The counts tcpdump prints on stderr when it stops: captured, received by filter, dropped by kernel.</summary>
    public static (long? Captured, long? Received, long? DroppedByKernel) ParseCounts(string stderr) =>
        (Count(CapturedLine(), stderr), Count(ReceivedLine(), stderr), Count(KernelDropLine(), stderr));

    private static long? Count(Regex r, string text) => r.Match(text) is { Success: true } m ? long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;

    [GeneratedRegex(@"(\d+) packets? captured")]
    private static partial Regex CapturedLine();

    [GeneratedRegex(@"(\d+) packets? received by filter")]
    private static partial Regex ReceivedLine();

    [GeneratedRegex(@"(\d+) packets? dropped by kernel")]
    private static partial Regex KernelDropLine();

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SysKill(int pid, int signal);

    private static void Signal(Process p, int signal)
    {
        try
        {
            if (!p.HasExited)
            {
                _ = SysKill(p.Id, signal);
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (EndReason == CaptureEndReason.Running)
        {
            await StopAsync(CaptureEndReason.ShuttingDown).ConfigureAwait(false);
        }

        _process.Dispose();
        _stop.Dispose();
    }

    /// <summary>Copies what is read from the process into the pcap file as it passes.</summary>
    private sealed class TeeStream(Stream source, Stream copy) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (n > 0)
            {
                await copy.WriteAsync(buffer[..n], cancellationToken).ConfigureAwait(false);
            }

            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override void Flush() => copy.Flush();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
