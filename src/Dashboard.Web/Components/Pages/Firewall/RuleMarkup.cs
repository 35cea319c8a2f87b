using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;
using Dashboard.Core.Firewall;
using Dashboard.Web.Components.Shared;
using Microsoft.AspNetCore.Components;

namespace Dashboard.Web.Components.Pages.Firewall;

/// <summary>
/// The parts of a rule's row that are the same for every viewer, rendered once and shared by every open Firewall page:
/// the target (with its jump links), the iptables columns and the owner chip as one markup string per rule (it only
/// changes with a new ruleset), and each counter's minute sparkline as one SVG per rule and second. A row then costs
/// each circuit a handful of render frames and no child components, however many pages are open.
/// </summary>
internal static class RuleMarkup
{
    private static readonly ConditionalWeakTable<FirewallRule, StrongBox<MarkupString>> Columns = new();
    private static readonly ConditionalWeakTable<FirewallRule, RowText> Rows = new();
    private static readonly ConditionalWeakTable<FirewallChain, ChainText> Chains = new();
    private static readonly ConcurrentDictionary<RuleId, (int Count, long Second, MarkupString Svg)> Sparklines = new();
    private const int SparklineWidth = 90;
    private const int SparklineHeight = 18;
    private const int MaxSparklines = 50_000;
    private static readonly string SvgOpen = string.Create(CultureInfo.InvariantCulture,
        $"<svg class=\"sparkline\" width=\"{SparklineWidth}\" height=\"{SparklineHeight}\" viewBox=\"0 0 {SparklineWidth} {SparklineHeight}\" role=\"img\" aria-label=\"packets in the last minute\">");
    private static readonly string EmptySparkline = SvgOpen + "</svg>";
    private static readonly string FlatSparkline = string.Create(CultureInfo.InvariantCulture,
        $"{SvgOpen}<polyline points=\"0,{SparklineHeight - 1} {SparklineWidth},{SparklineHeight - 1}\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" /></svg>");

    /// <summary>The cells from target to owner (markup, HTML-encoded), cached for as long as the rule object lives.</summary>
    public static MarkupString ColumnsOf(FirewallRule rule) => Columns.GetValue(rule, r => new StrongBox<MarkupString>(new MarkupString(Render(r)))).Value;

    /// <summary>The strings of a rule's row that every viewer shares: its anchor (also its test id) and its classes.</summary>
    public static RowText RowOf(FirewallRule rule) => Rows.GetValue(rule, r => new RowText(r));

    /// <summary>The strings of a chain's block that every viewer shares (its anchor, how often it is jumped to).</summary>
    public static ChainText ChainOf(FirewallTable table, FirewallChain chain) => Chains.GetValue(chain, c => new ChainText(table, c));

    /// <summary>
    /// The columns and header row of every chain's table, in <c>iptables -L -v</c>'s order: the same widths in every
    /// chain (fixed layout), so columns line up down the page as in <c>iptables -L</c>; the destination takes what is
    /// left. A rule's further matches (<c>ctstate …</c>, comments) go on a line of their own under it (<see cref="ExtraOf"/>).
    /// </summary>
    public static MarkupString Header { get; } = new(
        "<colgroup><col class=\"c-num\"><col class=\"c-pkts\"><col class=\"c-bytes\"><col class=\"c-target\"><col class=\"c-prot\"><col class=\"c-opt\">"
        + "<col class=\"c-if\"><col class=\"c-if\"><col class=\"c-addr\"><col class=\"c-dst\"><col class=\"c-owner\"><col class=\"c-activity\"></colgroup>"
        + "<thead><tr><th>num</th><th class=\"num\">pkts</th><th class=\"num\">bytes</th><th>target</th><th>prot</th><th>opt</th><th>in</th><th>out</th><th>source</th><th>destination</th><th>owner</th><th>last minute</th></tr></thead>");

    /// <summary>Columns a chain's table has (for a line spanning them).</summary>
    public const int ColumnCount = 12;

    private static readonly ConditionalWeakTable<FirewallRule, StrongBox<MarkupString>> Extras = new();

    /// <summary>The rule's further matches on a line of their own under it, shared like its columns; empty when it has none.</summary>
    public static MarkupString ExtraOf(FirewallRule rule) => Extras.GetValue(rule, r =>
    {
        var extra = RuleColumns.Of(r).Extra;
        return new StrongBox<MarkupString>(new MarkupString(string.IsNullOrWhiteSpace(extra) ? ""
            : string.Create(CultureInfo.InvariantCulture, $"<tr class=\"extra-row\"><td colspan=\"3\"></td><td class=\"extra\" colspan=\"{ColumnCount - 3}\">{HtmlEncoder.Default.Encode(extra)}</td></tr>")));
    }).Value;

    internal sealed class RowText
    {
        private readonly string[] _classes;

        public RowText(FirewallRule rule)
        {
            Anchor = FirewallPage.RuleAnchor(rule.Table, rule.Chain, rule.Position);
            var owner = "rule owner-" + rule.Owner.ToString().ToLowerInvariant();
            _classes = [owner, owner + " moving", owner + " focused", owner + " moving focused"];
        }

        /// <summary><c>rule-TABLE-CHAIN-POSITION</c>: the row's id (a trace links to it) and its test id.</summary>
        public string Anchor { get; }

        public string ClassOf(bool moving, bool focused) => _classes[(moving ? 1 : 0) + (focused ? 2 : 0)];
    }

    internal sealed class ChainText(FirewallTable table, FirewallChain chain)
    {
        private Title? _title; // replaced whole, so circuits rendering at once read one consistent title

        public string Anchor { get; } = FirewallPage.ChainAnchor(table.Name, chain.Name);

        private readonly int _references = chain.IsBuiltin ? 0 : table.Rules.Count(r => r.JumpChains.Contains(chain.Name));

        /// <summary>The chain's heading as <c>iptables -L -v</c> prints it, with its policy's live counters.</summary>
        public MarkupString TitleOf(ulong policyPackets, ulong policyBytes)
        {
            if (Volatile.Read(ref _title) is { } t && t.Packets == policyPackets && t.Bytes == policyBytes)
            {
                return t.Markup;
            }

            var e = HtmlEncoder.Default;
            var title = new MarkupString(chain.IsBuiltin
                ? string.Create(CultureInfo.InvariantCulture, $"<b>Chain {e.Encode(chain.Name)}</b> (policy {e.Encode(chain.Policy!)} {policyPackets} packets, {policyBytes} bytes)")
                : string.Create(CultureInfo.InvariantCulture, $"<b>Chain {e.Encode(chain.Name)}</b> ({_references} references)"));
            Volatile.Write(ref _title, new Title(policyPackets, policyBytes, title));
            return title;
        }

        private sealed record Title(ulong Packets, ulong Bytes, MarkupString Markup);
    }

    private static string Render(FirewallRule rule)
    {
        var e = HtmlEncoder.Default;
        var col = RuleColumns.Of(rule);
        var html = new StringBuilder(512).Append("<td>");
        if (rule.JumpChains.Count == 1)
        {
            html.Append("<a href=\"").Append(e.Encode(Link(rule.Table, rule.JumpChains[0]))).Append("\" class=\"jump\">").Append(e.Encode(col.Target)).Append("</a>");
        }
        else if (rule.JumpChains.Count > 1)
        {
            html.Append("<span>").Append(e.Encode(col.Target)).Append("</span>");
            foreach (var j in rule.JumpChains)
            {
                html.Append("<a href=\"").Append(e.Encode(Link(rule.Table, j))).Append("\" class=\"jump ml-1\">").Append(e.Encode(j)).Append("</a>");
            }
        }
        else
        {
            var verdict = col.Target is "DROP" or "drop" or "REJECT" ? "verdict-drop" : col.Target is "ACCEPT" or "accept" ? "verdict-accept" : "";
            html.Append("<span class=\"").Append(verdict).Append("\">").Append(e.Encode(col.Target)).Append("</span>");
        }

        html.Append("</td>");
        foreach (var cell in new[] { col.Prot, col.Opt, col.In, col.Out, col.Source, col.Destination })
        {
            html.Append("<td>").Append(e.Encode(cell)).Append("</td>");
        }

        var owner = rule.Owner.ToString();
        html.Append("<td><div class=\"mud-chip-container\"><div class=\"mud-chip mud-chip-outlined mud-chip-size-small mud-chip-color-")
            .Append(OwnerChip.ColorOf(rule.Owner).ToString().ToLowerInvariant()).Append(" owner-chip\" data-owner=\"").Append(e.Encode(owner))
            .Append("\"><span class=\"mud-chip-content\">").Append(e.Encode(owner)).Append("</span></div></div></td>");
        return html.ToString();
    }

    private static string Link(string table, string chain) => $"firewall#{FirewallPage.ChainAnchor(table, chain)}";

    /// <summary>
    /// A moving rule's rate, said with what it is over: "1 pkt/s over 4 s" (from the counter's first rise in the window
    /// to its last), or "first packets" before a second rise gives it a span.
    /// </summary>
    public static MarkupString RateOf(CounterRate? rate, TimeSpan window)
    {
        var e = HtmlEncoder.Default;
        var seconds = window.TotalSeconds.ToString("0", CultureInfo.InvariantCulture);
        if (rate is not { } r)
        {
            var once = e.Encode("the counter rose once in the last " + seconds + " s: a rate needs a second rise");
            return new MarkupString("<span class=\"rate\" data-testid=\"rate\" title=\"" + once + "\">first packets</span>");
        }

        var over = r.Over.TotalSeconds;
        var title = e.Encode(string.Create(CultureInfo.InvariantCulture, $"{r.Packets} packets after the first rise over {over:0.0} s, in the last {seconds} s"));
        return new MarkupString(string.Create(CultureInfo.InvariantCulture,
            $"<span class=\"rate\" data-testid=\"rate\" data-rate=\"{r.PerSecond:0.###}\" title=\"{title}\">{r.PerSecond:0.#} pkt/s over {over:0.#} s</span>"));
    }

    /// <summary>
    /// A minute of a counter as a line (packets per sample interval, at each later sample's time), drawn for the
    /// current second and shared by every page showing that rule in that second.
    /// </summary>
    public static MarkupString SparklineOf(RuleId id, IReadOnlyList<CounterSample> samples, DateTimeOffset now, IReadOnlyList<Dashboard.App.Live.DataGap>? gaps = null)
    {
        // Drawn once a second from the samples up to that second: a counter moving several times a second changes
        // each page's drawing (an SVG the browser parses again) once a second, not at every read.
        var second = now.ToUnixTimeSeconds();
        var gapCount = gaps?.Count ?? 0;
        if (Sparklines.TryGetValue(id, out var cached) && cached.Second == second && cached.Count == gapCount)
        {
            return cached.Svg;
        }

        var at = DateTimeOffset.FromUnixTimeSeconds(second);
        var upTo = samples.Count;
        while (upTo > 0 && samples[upTo - 1].At > at)
        {
            upTo--;
        }

        var svg = new MarkupString(Svg(upTo == samples.Count ? samples : [.. samples.Take(upTo)], at, gaps));
        if (Sparklines.Count > MaxSparklines)
        {
            Sparklines.Clear(); // rules of old rulesets; a page redraws what it shows
        }

        Sparklines[id] = (gapCount, second, svg);
        return svg;
    }

    /// <summary>
    /// The packet rate between samples over the last minute; spans without data (<paramref name="gaps"/>: the host's
    /// agent was disconnected) are shaded, and the rate across one is not drawn (what moved meanwhile is one total).
    /// </summary>
    internal static string Svg(IReadOnlyList<CounterSample> samples, DateTimeOffset now, IReadOnlyList<Dashboard.App.Live.DataGap>? gaps = null)
    {
        var window = TimeSpan.FromMinutes(1).TotalSeconds;
        double X(DateTimeOffset at) => Math.Clamp(SparklineWidth - (now - at).TotalSeconds / window * SparklineWidth, 0, SparklineWidth);
        var shaded = (gaps ?? []).Where(g => (now - g.To).TotalSeconds < window).ToList();
        var rates = new List<(double X, double Rate)>();
        for (var i = 1; i < samples.Count; i++)
        {
            var dt = (samples[i].At - samples[i - 1].At).TotalSeconds;
            if (dt <= 0 || samples[i].Packets < samples[i - 1].Packets || shaded.Any(g => samples[i - 1].At < g.To && samples[i].At > g.From))
            {
                continue;
            }

            rates.Add((X(samples[i].At), (samples[i].Packets - samples[i - 1].Packets) / dt));
        }

        var max = rates.Count == 0 ? 0 : rates.Max(r => r.Rate);
        if (max <= 0 && shaded.Count == 0)
        {
            // Nothing moved in the minute: the same flat line every second, so a page's DOM is left alone.
            return rates.Count == 0 ? EmptySparkline : FlatSparkline;
        }

        var svg = new StringBuilder(256).Append(SvgOpen);
        foreach (var g in shaded)
        {
            var (x0, x1) = (X(g.From), X(g.To));
            svg.Append(CultureInfo.InvariantCulture, $"<rect class=\"gap\" x=\"{x0:0.#}\" y=\"0\" width=\"{Math.Max(1, x1 - x0):0.#}\" height=\"{SparklineHeight}\" fill=\"currentColor\" opacity=\"0.15\"><title>no data for {g.Duration.TotalSeconds:0} s: the agent was disconnected</title></rect>");
        }

        if (max <= 0)
        {
            return svg.Append("</svg>").ToString();
        }

        svg.Append("<polyline points=\"");
        foreach (var (x, rate) in rates)
        {
            var y = SparklineHeight - 1 - (rate / max) * (SparklineHeight - 2);
            svg.Append(CultureInfo.InvariantCulture, $"{x:0.#},{y:0.#} ");
        }

        svg.Length--;
        svg.Append("\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" />");
        return svg.Append("</svg>").ToString();
    }
}
