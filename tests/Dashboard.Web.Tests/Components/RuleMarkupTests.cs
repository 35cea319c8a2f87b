using Dashboard.Core.Firewall;
using Dashboard.Web.Components.Pages.Firewall;

namespace Dashboard.Web.Tests.Components;

/// <summary>The Firewall page's shared row markup: encoded, cached per rule, and unchanged while nothing moves.</summary>
public sealed class RuleMarkupTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Columns_AreHtmlEncoded_AndSharedForTheSameRule()
    {
        var rs = IptablesSaveReader.Read("*filter\n:FORWARD ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -s 172.31.1.0/24 -m comment --comment \"<img src=x onerror=alert(1)>\" -j DROP\nCOMMIT\n");
        var rule = rs.Rules.Single(r => r.Chain == "DOCKER-USER");

        var markup = RuleMarkup.ColumnsOf(rule).Value;

        Assert.DoesNotContain("<img", markup, StringComparison.Ordinal);
        Assert.Contains("class=\"verdict-drop\"", markup, StringComparison.Ordinal);
        Assert.Same(markup, RuleMarkup.ColumnsOf(rule).Value);
        var extra = RuleMarkup.ExtraOf(rule).Value;
        Assert.Contains("&lt;img", extra, StringComparison.Ordinal);
        Assert.DoesNotContain("<img", extra, StringComparison.Ordinal);
        Assert.Same(extra, RuleMarkup.ExtraOf(rule).Value);
        var jump = RuleMarkup.ColumnsOf(rs.Rules.Single(r => r.Chain == "FORWARD")).Value;
        Assert.Equal("", RuleMarkup.ExtraOf(rs.Rules.Single(r => r.Chain == "FORWARD")).Value);
        Assert.Contains("href=\"firewall#chain-filter-DOCKER-USER\"", jump, StringComparison.Ordinal);
    }

    [Fact]
    public void Sparkline_OfACounterThatDidNotMove_IsTheSameMarkupEverySecond()
    {
        IReadOnlyList<CounterSample> flat = [new(T0, 5, 420), new(T0.AddSeconds(1), 5, 420), new(T0.AddSeconds(2), 5, 420)];

        Assert.Equal(RuleMarkup.Svg(flat, T0.AddSeconds(3)), RuleMarkup.Svg(flat, T0.AddSeconds(30)));
        Assert.Contains("polyline", RuleMarkup.Svg(flat, T0.AddSeconds(3)), StringComparison.Ordinal);
    }

    [Fact]
    public void Sparkline_OfAMovingCounter_DrawsItsRatePeak()
    {
        IReadOnlyList<CounterSample> moving = [new(T0, 0, 0), new(T0.AddSeconds(1), 4, 336), new(T0.AddSeconds(2), 4, 336)];

        var svg = RuleMarkup.Svg(moving, T0.AddSeconds(2));

        // The peak (4 pkt/s at t0+1 s) is at the top (y = 1), the later flat interval at the bottom (y = 17).
        Assert.Contains(",1 ", svg, StringComparison.Ordinal);
        Assert.Contains(",17\"", svg, StringComparison.Ordinal);
    }

    [Fact]
    public void Sparkline_AcrossALinkOutage_ShadesTheGap_AndDrawsNoRateOverIt()
    {
        // 1 pkt/s, then 30 s without data in which 30 packets were counted (they arrive as one total at reconnection).
        IReadOnlyList<CounterSample> samples = [new(T0, 0, 0), new(T0.AddSeconds(1), 1, 84), new(T0.AddSeconds(2), 2, 168), new(T0.AddSeconds(33), 32, 2688), new(T0.AddSeconds(34), 33, 2772)];
        var gap = new Dashboard.App.Live.DataGap(T0.AddSeconds(2.5), T0.AddSeconds(32.5));

        var svg = RuleMarkup.Svg(samples, T0.AddSeconds(40), [gap]);

        Assert.Contains("<rect class=\"gap\"", svg, StringComparison.Ordinal);
        Assert.Contains("no data for 30 s", svg, StringComparison.Ordinal);

        // Drawn: the rates before and after (1 pkt/s each, the peak), not the pair spanning the gap (30 packets in 31 s).
        var points = svg[(svg.IndexOf("points=\"", StringComparison.Ordinal) + 8)..].Split('"')[0].Split(' ');
        Assert.Equal(3, points.Length);
        Assert.DoesNotContain("<rect", RuleMarkup.Svg(samples, T0.AddSeconds(40)), StringComparison.Ordinal);
    }

    [Fact]
    public void Sparkline_IsDrawnOnceASecond_WhateverArrivesWithinIt()
    {
        var rs = IptablesSaveReader.Read("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -s 172.31.7.0/24 -j DROP\nCOMMIT\n");
        var id = RuleId.Of(rs.Rules.Single());
        var now = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 3600);
        List<CounterSample> samples = [new(now.AddSeconds(-2), 0, 0), new(now.AddSeconds(-1), 4, 336)];

        var first = RuleMarkup.SparklineOf(id, samples, now.AddMilliseconds(100)).Value;
        samples.Add(new(now.AddMilliseconds(300), 8, 672));
        var sameSecond = RuleMarkup.SparklineOf(id, samples, now.AddMilliseconds(400)).Value;
        var nextSecond = RuleMarkup.SparklineOf(id, samples, now.AddMilliseconds(1100)).Value;

        // Within a second every page gets the same string (no new SVG for the browsers to parse); the next second draws
        // the samples up to it, the one that arrived meanwhile included.
        Assert.Same(first, sameSecond);
        Assert.NotEqual(first, nextSecond);
        Assert.Equal(RuleMarkup.Svg(samples, now.AddSeconds(1)), nextSecond);
    }

    [Fact]
    public void RowAndChainText_AreSharedStrings_InIptablesOrder()
    {
        var rs = IptablesSaveReader.Read("*filter\n:FORWARD DROP [7:588]\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\nCOMMIT\n");
        var table = rs.Tables.Single();
        var rule = table.FindChain("DOCKER-USER")!.Rules[0];

        var row = RuleMarkup.RowOf(rule);

        Assert.Same(row, RuleMarkup.RowOf(rule));
        Assert.Equal("rule-filter-DOCKER-USER-1", row.Anchor);
        Assert.Equal("rule owner-" + rule.Owner.ToString().ToLowerInvariant() + " moving focused", row.ClassOf(moving: true, focused: true));
        Assert.Equal("<b>Chain FORWARD</b> (policy DROP 9 packets, 756 bytes)", RuleMarkup.ChainOf(table, table.FindChain("FORWARD")!).TitleOf(9, 756).Value);
        var user = RuleMarkup.ChainOf(table, table.FindChain("DOCKER-USER")!);
        Assert.Equal("<b>Chain DOCKER-USER</b> (1 references)", user.TitleOf(0, 0).Value);
        Assert.Same(user.TitleOf(0, 0).Value, user.TitleOf(0, 0).Value);
        Assert.Equal(RuleMarkup.ColumnCount, RuleMarkup.Header.Value.Split("</th>").Length - 1);
        Assert.Equal(RuleMarkup.ColumnCount, RuleMarkup.Header.Value.Split("<col ").Length - 1);
    }
}
