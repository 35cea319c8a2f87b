using Dashboard.Core.Evaluation;

namespace Dashboard.Web.Components.Shared;

/// <summary>
/// Where <see cref="PacketWalkDrawing"/> puts things: the two ends, one column per hook with its stations stacked in
/// the kernel's order, the routing decision between PREROUTING and what follows, and the packet's way through the
/// stations it visited (ending at the deciding one when it died there).
/// </summary>
internal sealed class WalkLayout
{
    public const double StationWidth = 234;
    public const double LineHeight = 14;

    /// <summary>Characters of a rule's label that fit a station (10.5 px monospace); the rest is in its tooltip.</summary>
    public const int LabelChars = 36;

    /// <summary>Characters of an end's line that fit its box.</summary>
    public const int EndChars = 20;
    private const int MaxRules = 6;
    private const double Top = 30;
    private const double EndWidth = 140;
    private const double Gap = 26;
    private const double RoutingGap = 76;

    public sealed record End(double X, double Y, double W, double H, IReadOnlyList<string> Lines);

    public sealed record Column(string Hook, string Title, double X, bool Reached);

    public sealed record RoutingMark(double X, double Y, string Label, bool Reached);

    public sealed record PlacedStation(WalkStation Station, double X, double Y, double H, IReadOnlyList<WalkRule> Rules, int More);

    public double Width { get; private set; }

    public double Height { get; private set; }

    public List<End> Ends { get; } = [];

    public List<Column> Columns { get; } = [];

    public RoutingMark? Routing { get; private set; }

    public List<PlacedStation> Stations { get; } = [];

    public string PathPoints { get; private set; } = "";

    /// <summary>The packet died (or its fate is undetermined): the way ends at the last station it reached.</summary>
    public bool Dies { get; private set; }

    public static WalkLayout Of(PacketWalk walk, IReadOnlyList<string>? from, IReadOnlyList<string>? to)
    {
        ArgumentNullException.ThrowIfNull(walk);
        var l = new WalkLayout { Dies = walk.Verdict is not ("ACCEPT" or "SEEN") };
        var local = walk.Hooks.Contains("input");
        var sent = walk.Hooks.Contains("output");
        var x = 10.0;
        var bottom = Top;
        var columns = new List<(string Hook, double X, List<PlacedStation> Stations)>();
        x += EndWidth + Gap;
        foreach (var hook in walk.Hooks)
        {
            var placed = new List<PlacedStation>();
            var y = Top;
            foreach (var s in walk.Stations.Where(s => s.Hook == hook))
            {
                var rules = s.Matched.Count <= MaxRules ? s.Matched : [.. s.Matched.Take(MaxRules - 1), .. s.Matched.Where(r => r.Deciding).Take(1)];
                rules = rules.Distinct().ToList();
                var more = s.Matched.Count - rules.Count;
                var h = 22 + (Math.Max(1, rules.Count + (more > 0 ? 1 : 0)) * LineHeight) + (s.Translation is null ? 4 : 18);
                placed.Add(new PlacedStation(s, x, y, h, rules, more));
                y += h + 10;
            }

            bottom = Math.Max(bottom, y);
            columns.Add((hook, x, placed));
            l.Columns.Add(new Column(hook, hook.ToUpperInvariant(), x, placed.Any(p => p.Station.Visited)));
            l.Stations.AddRange(placed);
            x += StationWidth + (hook == "prerouting" ? RoutingGap : Gap);
        }

        var middle = Top + Math.Max(40, (bottom - Top) / 2) - 20;
        l.Height = Math.Max(bottom, middle + 70) + 10;
        var fromLines = from is { Count: > 0 } ? from : [walk.Source, sent ? "the host itself" : walk.InInterface ?? "in: not known"];
        var toLines = to is { Count: > 0 } ? to : [walk.Destination, local ? "the host itself" : walk.OutInterface ?? "out: not known"];
        l.Ends.Add(new End(10, middle, EndWidth, 22 + (fromLines.Count * 15), fromLines));
        l.Ends.Add(new End(x, middle, EndWidth, 22 + (toLines.Count * 15), toLines));
        l.Width = x + EndWidth + 10;

        var pre = columns.FindIndex(c => c.Hook == "prerouting");
        if (pre >= 0 && pre + 1 < columns.Count)
        {
            var reached = columns[pre + 1].Stations.Any(s => s.Station.Visited);
            l.Routing = new RoutingMark(columns[pre].X + StationWidth + (RoutingGap / 2), middle + 20, local ? "to the host" : walk.OutInterface is { } o ? "out " + o : "", reached);
        }

        // The way: from the source, through each station it visited, to the destination unless it died on the way.
        var points = new List<(double X, double Y)> { (10 + EndWidth, middle + 20) };
        foreach (var (hook, _, placed) in columns)
        {
            // Into the column's first station it visited, down through the others (the line shows between the boxes),
            // and out of the last.
            var visited = placed.Where(p => p.Station.Visited).ToList();
            if (visited.Count > 0)
            {
                points.Add((visited[0].X, visited[0].Y + 15));
                points.AddRange(visited.Select(s => (s.X + (StationWidth / 2), s.Y + 15)));
                points.Add((visited[^1].X + StationWidth, visited[^1].Y + 15));
            }

            if (hook == "prerouting" && l.Routing is { Reached: true } r)
            {
                points.Add((r.X - 18, r.Y));
                points.Add((r.X + 18, r.Y));
            }
        }

        if (!l.Dies)
        {
            points.Add((l.Ends[1].X - 2, middle + 20));
        }
        else if (points.Count > 1)
        {
            // It ends inside the station that decided (or the last it reached).
            points.RemoveAt(points.Count - 1);
        }

        l.PathPoints = string.Join(" ", points.Select(p => $"{p.X.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture)},{p.Y.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture)}"));
        return l;
    }
}
