using System.Globalization;
using Dashboard.Core.Changes;

namespace Dashboard.Web.Components.Pages.Changes;

/// <summary>
/// A capture of what a staged rule matches: on its input interface (else its output interface), with a tcpdump
/// filter made of its match's fields. Conntrack states have no filter, so <see cref="Caveat"/> says the capture shows more.
/// </summary>
public sealed record StagedCapture(string Interface, string Filter, string? Caveat)
{
    public string Link => $"captures?interface={Uri.EscapeDataString(Interface)}" + (Filter.Length == 0 ? "" : $"&filter={Uri.EscapeDataString(Filter)}");

    public static StagedCapture? Of(ChangeRule rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        if (InterfaceOf(rule) is not { } iface)
        {
            return null;
        }

        var parts = new List<string>();
        if (Blank(rule.Protocol) is { } p && p != "all")
        {
            parts.Add(p == "icmpv6" ? "icmp6" : p);
        }

        Add(parts, "src", rule.Source, rule.NegateSource);
        Add(parts, "dst", rule.Destination, rule.NegateDestination);
        if (rule.SourcePort is { } sp)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"src port {sp}"));
        }

        if (rule.DestinationPort is { } dp)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"dst port {dp}"));
        }

        var caveats = new List<string>();
        if (rule.ConnectionStates is { Count: > 0 } states)
        {
            caveats.Add($"a capture cannot tell conntrack states ({string.Join(',', states)}): it shows every packet of the other fields");
        }

        if (Blank(rule.InInterface) is not null && Blank(rule.OutInterface) is not null)
        {
            caveats.Add($"packets arriving on {iface} that leave by another interface than {rule.OutInterface} are shown too");
        }

        return new StagedCapture(iface, string.Join(" and ", parts), caveats.Count == 0 ? null : string.Join("; ", caveats));
    }

    /// <summary>Why no capture is offered for a rule (when <see cref="Of"/> is null).</summary>
    public const string NoCapture =
        "No capture is offered: the rule names no single interface to capture on (none, a negated one, or a wildcard); start one on the Captures page.";

    private static string? InterfaceOf(ChangeRule r) =>
        Blank(r.InInterface) is { } i && !r.NegateInInterface && !i.EndsWith('+') ? i
        : Blank(r.OutInterface) is { } o && !r.NegateOutInterface && !o.EndsWith('+') ? o
        : null;

    private static void Add(List<string> parts, string direction, string? address, bool negate)
    {
        if (Blank(address) is not { } a)
        {
            return;
        }

        var match = a.Contains('/', StringComparison.Ordinal) ? $"{direction} net {a}" : $"{direction} host {a}";
        parts.Add(negate ? $"not {match}" : match);
    }

    private static string? Blank(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
