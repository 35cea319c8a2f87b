namespace Dashboard.Core.Capture;

/// <summary>Packets and bytes of one flow (direction included) over a span of time.</summary>
public sealed record FlowCount(string Flow, long Packets, long Bytes, DateTimeOffset First, DateTimeOffset Last)
{
    /// <summary>
    /// Packets per second over the time the flow has existed: the packets after its first over the time from its first
    /// packet to its last (a packet a second for n packets is n-1 over n-1 s); null before a second packet.
    /// </summary>
    public double? Rate => Packets > 1 && Last > First ? (Packets - 1) / (Last - First).TotalSeconds : null;
}

/// <summary>
/// One delivery of a capture to its viewers: the packets shown one by one, and those beyond the per-batch budget counted
/// per flow instead. <c>Shown.Count + NotShown</c> is every packet that arrived since the previous batch.
/// </summary>
public sealed record PacketBatch(IReadOnlyList<DecodedPacket> Shown, long NotShown, IReadOnlyList<FlowCount> NotShownFlows)
{
    public static readonly PacketBatch Empty = new([], 0, []);

    public long Total => Shown.Count + NotShown;
}

/// <summary>
/// A batch before its kept frames are decoded: the frames as read (for another process, such as a host's agent, to
/// send and its receiver to decode with its own decoder), and the rest counted per flow.
/// </summary>
public sealed record RawPacketBatch(IReadOnlyList<PcapRecord> Shown, long NotShown, IReadOnlyList<FlowCount> NotShownFlows)
{
    public static readonly RawPacketBatch Empty = new([], 0, []);

    public long Total => Shown.Count + NotShown;

    /// <summary>The kept frames decoded as links of <paramref name="linkType"/> show them.</summary>
    public PacketBatch Decode(uint linkType) =>
        Total == 0 ? PacketBatch.Empty : new PacketBatch([.. Shown.Select(r => PacketDecoder.Decode(r, linkType))], NotShown, NotShownFlows);
}

/// <summary>
/// Collects a capture's frames between deliveries, as they are read: at most <see cref="MaxShown"/> of them are kept whole
/// (and decoded by PacketDotNet when the batch is taken), the rest only counted per flow. A counted frame's flow is read
/// from its header bytes (<see cref="FrameKey"/>), without decoding or allocating; only a frame whose headers that does not
/// read (VLAN, extension headers, fragments, other protocols) is decoded whole to find its flow, and each new flow key is
/// named once by decoding its first frame. Memory is bounded by the budget plus one entry per distinct flow, itself
/// capped (further flows count under "other flows"). Thread-safe: the capture's reader adds, its pump takes.
/// </summary>
public sealed class PacketTally(uint linkType = PacketDecoder.LinkTypeEthernet, int maxShown = PacketTally.DefaultMaxShown, int maxFlows = PacketTally.DefaultMaxFlows)
{
    /// <summary>The link type of the frames (the pcap header's).</summary>
    public uint LinkType => linkType;

    public const int DefaultMaxShown = 200;
    public const int DefaultMaxFlows = 256;
    public const string OtherFlows = "other flows";

    /// <summary>Flow names kept across batches, so a long-lived flow is named once, not once per batch.</summary>
    public const int MaxNames = 4096;

    private readonly object _gate = new();
    private List<PcapRecord> _shown = new(maxShown);
    private Dictionary<string, Flow> _flows = new(StringComparer.Ordinal);
    private Dictionary<FrameKey, Flow> _byKey = [];
    private readonly Dictionary<FrameKey, string> _names = [];
    private long _notShown;

    public int MaxShown { get; } = maxShown > 0 ? maxShown : throw new ArgumentOutOfRangeException(nameof(maxShown));

    /// <summary>Of the counted frames, those decoded whole: the ones <see cref="FrameKey"/> does not read, and the first of each new flow key (to name it).</summary>
    public long DecodedWhole { get; private set; }

    /// <summary>Flow keys tracked in one batch at most; beyond them (a flood of distinct flows) frames count under "other flows" undecoded.</summary>
    public int MaxKeys => maxFlows * 4;

    public long Pending
    {
        get
        {
            lock (_gate)
            {
                return _shown.Count + _notShown;
            }
        }
    }

    /// <summary>Adds one frame; <paramref name="data"/> is copied only when the frame is kept whole.</summary>
    public void Add(DateTimeOffset timestamp, int originalLength, ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            if (_shown.Count < MaxShown)
            {
                _shown.Add(new PcapRecord(timestamp, originalLength, data.ToArray()));
                return;
            }

            _notShown++;
            if (!FrameKey.TryRead(data, originalLength, linkType, out var key))
            {
                // Rare kinds (VLAN, fragments, extension headers...): decoded whole, even beyond the flow cap, since the
                // frame may belong to a flow already listed.
                DecodedWhole++;
                FlowNamed(PacketDecoder.Decode(new PcapRecord(timestamp, originalLength, data.ToArray()), linkType).FlowKey).Count(originalLength, timestamp);
                return;
            }

            if (!_byKey.TryGetValue(key, out var flow))
            {
                if (_byKey.Count >= MaxKeys || (_flows.Count >= maxFlows && !_names.ContainsKey(key)))
                {
                    // Beyond the cap a new key's flow is "other flows" (or one already listed): not decoded to name it.
                    FlowNamed(_names.TryGetValue(key, out var known) ? known : OtherFlows).Count(originalLength, timestamp);
                    return;
                }

                if (!_names.TryGetValue(key, out var name))
                {
                    DecodedWhole++;
                    name = PacketDecoder.Decode(new PcapRecord(timestamp, originalLength, data.ToArray()), linkType).FlowKey;
                    if (_names.Count >= MaxNames)
                    {
                        _names.Clear();
                    }

                    _names[key] = name;
                }

                _byKey[key] = flow = FlowNamed(name);
            }

            flow.Count(originalLength, timestamp);
        }
    }

    private Flow FlowNamed(string name)
    {
        if (!_flows.TryGetValue(name, out var flow))
        {
            name = _flows.Count < maxFlows ? name : OtherFlows;
            if (!_flows.TryGetValue(name, out flow))
            {
                _flows[name] = flow = new Flow(name);
            }
        }

        return flow;
    }

    /// <summary>Everything collected since the last call, the kept frames decoded, and a fresh start.</summary>
    public PacketBatch Take() => TakeRaw().Decode(linkType);

    /// <summary>Everything collected since the last call, the kept frames as read, and a fresh start.</summary>
    public RawPacketBatch TakeRaw()
    {
        List<PcapRecord> shown;
        Dictionary<string, Flow> flows;
        long notShown;
        lock (_gate)
        {
            if (_shown.Count == 0 && _notShown == 0)
            {
                return RawPacketBatch.Empty;
            }

            (shown, flows, notShown) = (_shown, _flows, _notShown);
            _shown = new List<PcapRecord>(MaxShown);
            _flows = new Dictionary<string, Flow>(StringComparer.Ordinal);
            _byKey = [];
            _notShown = 0;
        }

        var counts = flows.Values.Select(f => new FlowCount(f.Name, f.Packets, f.Bytes, f.First, f.Last)).OrderByDescending(f => f.Packets).ToArray();
        return new RawPacketBatch(shown, notShown, counts);
    }

    private sealed class Flow(string name)
    {
        public string Name { get; } = name;

        public long Packets { get; private set; }

        public long Bytes { get; private set; }

        public DateTimeOffset First { get; private set; }

        public DateTimeOffset Last { get; private set; }

        public void Count(int length, DateTimeOffset at)
        {
            if (Packets++ == 0)
            {
                First = at;
            }

            Bytes += length;
            Last = at;
        }
    }
}
