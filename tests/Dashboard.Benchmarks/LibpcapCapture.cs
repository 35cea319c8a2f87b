using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Dashboard.Core.Capture;
using SharpPcap;
using SharpPcap.LibPcap;

namespace Dashboard.Benchmarks;

/// <summary>
/// Issue 15's alternative reader, for measuring only: libpcap in this process through SharpPcap (a ring buffer of
/// 8 MiB, immediate mode, the BPF filter compiled by libpcap and run in the kernel), writing the same pcap file the
/// tcpdump pipe writes and counting into the same <see cref="PacketTally"/>, with a pump taking batches every 100 ms.
/// Its counts come from <c>pcap_stats</c> called here: SharpPcap 6.3.1 declares <c>struct pcap_stat</c> for Unix with
/// pointer-sized members, but libpcap's are <c>u_int</c>, so on x64 its DroppedPackets is libpcap's <c>ps_ifdrop</c>
/// (0) and the kernel's drops are lost.
/// </summary>
internal sealed class LibpcapCapture : IDisposable
{
    private readonly LibPcapLiveDevice _device;
    private readonly Thread _thread;
    private readonly PacketTally _tally = new();
    private readonly FileStream _file;
    private readonly byte[] _recordHeader = new byte[16];
    private volatile bool _stop;
    private long _read;

    public LibpcapCapture(string bridge, string filter, string pcapPath, int bufferBytes)
    {
        _device = LibPcapLiveDeviceList.New().First(d => d.Name == bridge);
        _device.Open(new DeviceConfiguration { Mode = DeviceModes.None, Snaplen = 262_144, ReadTimeout = 100, BufferSize = bufferBytes, Immediate = true });
        _device.Filter = filter;
        _file = new FileStream(pcapPath, FileMode.Create, FileAccess.Write, FileShare.Read, 256 * 1024);
        var header = new byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 0xa1b2c3d4);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(4), 2);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(6), 4);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(16), 262_144);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(20), PacketDecoder.LinkTypeEthernet);
        _file.Write(header);
        _thread = new Thread(Loop) { IsBackground = true, Name = "libpcap " + bridge };
        _thread.Start();
    }

    public long Read => Interlocked.Read(ref _read);

    public long Delivered { get; private set; }

    /// <summary>libpcap's own counts: received by the filter (read or dropped), dropped for lack of ring space.</summary>
    public (long Received, long Dropped) Kernel { get; private set; }

    [StructLayout(LayoutKind.Sequential)]
    private struct PcapStat
    {
        public uint Received;
        public uint Dropped;
        public uint InterfaceDropped;
    }

    [DllImport("libpcap.so.0.8", EntryPoint = "pcap_stats")]
    private static extern int PcapStats(IntPtr pcap, out PcapStat stats);

    private readonly TaskCompletionSource<int> _tid = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>CPU time the reader's thread has used so far (user and system, from <c>/proc/self/task/TID/stat</c>).</summary>
    public TimeSpan ThreadCpu => TimeSpan.FromSeconds(LiveBenchmark.StatCpuSeconds($"/proc/self/task/{_tid.Task.Result}/stat"));

    [DllImport("libc", EntryPoint = "gettid")]
    private static extern int GetTid();

    private void Loop()
    {
        _tid.TrySetResult(GetTid());
        while (true)
        {
            var status = _device.GetNextPacket(out var e);
            if (status != GetPacketStatus.PacketRead)
            {
                // Asked to stop: what is still in the ring is read first, until a read times out empty.
                if (_stop)
                {
                    return;
                }

                continue;
            }

            var data = e.Data;
            var h = e.Header;
            var ts = h.Timeval;
            var original = h is SharpPcap.LibPcap.PcapHeader ph ? ph.PacketLength : (uint)data.Length;
            BinaryPrimitives.WriteUInt32LittleEndian(_recordHeader, (uint)ts.Seconds);
            BinaryPrimitives.WriteUInt32LittleEndian(_recordHeader.AsSpan(4), (uint)ts.MicroSeconds);
            BinaryPrimitives.WriteUInt32LittleEndian(_recordHeader.AsSpan(8), (uint)data.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(_recordHeader.AsSpan(12), original);
            _file.Write(_recordHeader);
            _file.Write(data);
            _tally.Add(ts.Date, (int)original, data);
            Interlocked.Increment(ref _read);
        }
    }

    /// <summary>The pump's part: what was counted since the last call.</summary>
    public void TakeBatch() => Delivered += _tally.Take().Total;

    /// <summary>Stops after the ring is read empty; libpcap's counts are taken then.</summary>
    public void Stop()
    {
        _stop = true;
        _thread.Join();
        if (PcapStats(_device.Handle.DangerousGetHandle(), out var stats) != 0)
        {
            throw new InvalidOperationException("pcap_stats failed: " + _device.LastError);
        }

        Kernel = (stats.Received, stats.Dropped);
        TakeBatch();
    }

    public void Dispose()
    {
        _device.Close();
        _file.Dispose();
    }
}
