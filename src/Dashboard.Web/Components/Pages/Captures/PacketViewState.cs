using Dashboard.Core.Capture;
using Dashboard.Core.Experiments;
using Dashboard.App.Runs;

namespace Dashboard.Web.Components.Pages.Captures;

/// <summary>
/// A packet in a view, with the capture and interface it was seen on; for a run's stored packet also the direction of
/// the probe flow it belongs to (told from its header fields), which colours requests and replies.
/// </summary>
public sealed record PacketRow(string CaptureId, string Interface, DecodedPacket Packet, FlowDirection? Direction = null)
{
    /// <summary>A run's packet from its timeline: what it is comes from the stored header fields, never from the summary.</summary>
    public static PacketRow FromTimeline(string lane, TimelinePacket p) =>
        new(lane, lane, new DecodedPacket(p.Timestamp, 0, p.Kind, null, null, null, null, null, null, null, p.Summary), p.Direction);

    /// <summary>Request or reply: the probe flow's direction where known, else the ICMP echo type.</summary>
    public bool? IsRequest => Direction is { } d ? d == FlowDirection.Request : Packet.Echo?.IsRequest;
}

/// <summary>
/// The live packet view of one browser: the rows it holds (bounded), pause, clear, the flow filter and the time zero
/// all captures are aligned to. Counts every packet it did not show and why: the server aggregated it (the view could
/// not take them all), it arrived while paused, or it was pushed out by newer rows.
/// </summary>
public sealed class PacketViewState(int capacity = PacketViewState.DefaultCapacity)
{
    public const int DefaultCapacity = 1_000;

    private readonly List<PacketRow> _rows = [];
    private string[] _terms = [];
    private string _filter = "";

    public bool Paused { get; set; }

    /// <summary>Packets the server counted per flow instead of sending one by one (since the last clear).</summary>
    public long NotShownByServer { get; private set; }

    /// <summary>Packets that arrived while the view was paused.</summary>
    public long ArrivedWhilePaused { get; private set; }

    /// <summary>Rows pushed out by newer ones once the view held <see cref="Capacity"/>.</summary>
    public long PushedOut { get; private set; }

    public int Capacity { get; } = capacity;

    public int Count => _rows.Count;

    /// <summary>Offsets are measured from here: the first packet in view unless a row was chosen.</summary>
    public DateTimeOffset? ChosenTimeZero { get; set; }

    public DateTimeOffset? TimeZero => ChosenTimeZero ?? (_rows.Count == 0 ? null : _rows.Min(r => r.Packet.Timestamp));

    /// <summary>Space-separated terms, all of which must appear in a packet's flow or summary (case-insensitive).</summary>
    public string Filter
    {
        get => _filter;
        set
        {
            _filter = value ?? "";
            _terms = _filter.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        }
    }

    public void Add(string captureId, string iface, PacketBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (Paused)
        {
            ArrivedWhilePaused += batch.Total;
            return;
        }

        NotShownByServer += batch.NotShown;
        foreach (var p in batch.Shown)
        {
            _rows.Add(new PacketRow(captureId, iface, p));
        }

        if (_rows.Count > Capacity)
        {
            // Keep the newest by capture time (batches of different interfaces interleave).
            _rows.Sort((a, b) => a.Packet.Timestamp.CompareTo(b.Packet.Timestamp));
            var extra = _rows.Count - Capacity;
            _rows.RemoveRange(0, extra);
            PushedOut += extra;
        }
    }

    public void Clear()
    {
        _rows.Clear();
        NotShownByServer = 0;
        ArrivedWhilePaused = 0;
        PushedOut = 0;
        ChosenTimeZero = null;
    }

    public bool Matches(PacketRow row) => Matches(row.Interface, row.Packet.Summary, row.Packet.FlowKey);

    /// <summary>True when every term appears in one of <paramref name="texts"/> (a packet's interface, summary and flow; a flow's interface and key).</summary>
    public bool Matches(params string[] texts) => _terms.All(t => texts.Any(x => x.Contains(t, StringComparison.OrdinalIgnoreCase)));

    /// <summary>The rows of the given captures that match the filter, in capture-time order across interfaces, the newest <paramref name="max"/>.</summary>
    public IReadOnlyList<PacketRow> Visible(IReadOnlySet<string> captures, int max = 500)
    {
        var rows = _rows.Where(r => captures.Contains(r.CaptureId) && Matches(r)).OrderBy(r => r.Packet.Timestamp).ToList();
        return rows.Count > max ? rows[^max..] : rows;
    }

    /// <summary>Milliseconds from the time zero (negative before it).</summary>
    public double OffsetMs(PacketRow row) => TimeZero is { } z ? (row.Packet.Timestamp - z).TotalMilliseconds : 0;
}
