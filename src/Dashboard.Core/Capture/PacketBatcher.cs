namespace Dashboard.Core.Capture;

/// <summary>Packets and bytes of one flow (direction included) over a span of time.</summary>
public sealed record FlowCount(string Flow, long Packets, long Bytes, DateTimeOffset First, DateTimeOffset Last)
{
    /// <summary>Packets per second between the first and the last packet (the count itself when they coincide).</summary>
    public double Rate => Last > First ? Packets / (Last - First).TotalSeconds : Packets;
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
/// Collects packets between deliveries, keeping at most <see cref="MaxShown"/> of them whole; the rest are aggregated per
/// flow so a viewer that cannot take every packet still sees how many there were, of which flows, at which rate.
/// Memory is bounded by the budget plus one entry per distinct flow, itself capped (further flows count under "other flows").
/// Not thread-safe: one pump owns it.
/// </summary>
public sealed class PacketBatcher(int maxShown = PacketBatcher.DefaultMaxShown, int maxFlows = PacketBatcher.DefaultMaxFlows)
{
    public const int DefaultMaxShown = 200;
    public const int DefaultMaxFlows = 256;
    public const string OtherFlows = "other flows";

    private readonly List<DecodedPacket> _shown = new(maxShown);
    private readonly Dictionary<string, FlowCount> _flows = new(StringComparer.Ordinal);
    private long _notShown;

    public int MaxShown { get; } = maxShown > 0 ? maxShown : throw new ArgumentOutOfRangeException(nameof(maxShown));

    public long Pending => _shown.Count + _notShown;

    public void Add(DecodedPacket packet)
    {
        if (_shown.Count < MaxShown)
        {
            _shown.Add(packet);
            return;
        }

        _notShown++;
        var key = packet.FlowKey;
        if (!_flows.ContainsKey(key) && _flows.Count >= maxFlows)
        {
            key = OtherFlows;
        }

        _flows[key] = _flows.TryGetValue(key, out var f)
            ? f with { Packets = f.Packets + 1, Bytes = f.Bytes + packet.Length, Last = packet.Timestamp }
            : new FlowCount(key, 1, packet.Length, packet.Timestamp, packet.Timestamp);
    }

    /// <summary>Everything collected since the last call, and a fresh start.</summary>
    public PacketBatch Take()
    {
        if (Pending == 0)
        {
            return PacketBatch.Empty;
        }

        var batch = new PacketBatch(_shown.ToArray(), _notShown, _flows.Values.OrderByDescending(f => f.Packets).ToArray());
        _shown.Clear();
        _flows.Clear();
        _notShown = 0;
        return batch;
    }
}
