using System.Text;
using Dashboard.Core.Firewall;

namespace Dashboard.Web.Components.Shared;

/// <summary>A rule in the columns <c>iptables -L -v</c> prints: target, prot, opt, in, out, source, destination, extra.</summary>
public sealed record RuleColumns(string Target, string Prot, string Opt, string In, string Out, string Source, string Destination, string Extra)
{
    public static RuleColumns Of(FirewallRule r)
    {
        var v6 = r.Family == TableFamily.Ipv6;
        var any = v6 ? "::/0" : "0.0.0.0/0";
        if (r.Table is not ("filter" or "nat" or "raw" or "mangle" or "security"))
        {
            // nftables: map the common expressions, keep the rest in nft's own words.
            return new RuleColumns(
                r.JumpChains.Count == 1 ? $"{r.Target} {r.JumpChains[0]}" : r.Target ?? "",
                Value(r, "meta l4proto") ?? "all",
                "--",
                Iface(r, "meta iifname"),
                Iface(r, "meta oifname"),
                Addr(r, "ip saddr") ?? Addr(r, "ip6 saddr") ?? any,
                Addr(r, "ip daddr") ?? Addr(r, "ip6 daddr") ?? any,
                r.Text);
        }

        var extra = new StringBuilder();
        foreach (var m in r.Matches)
        {
            if (m.Option is "-i" or "-o" or "-s" or "-d" or "-p" or "-f")
            {
                continue;
            }

            Append(extra, Describe(m));
        }

        foreach (var m in r.TargetOptions)
        {
            Append(extra, m.Option switch
            {
                "--to-destination" or "--to-source" => $"to:{m.Value}",
                "--reject-with" => $"reject-with {m.Value}",
                _ => m.ToString(),
            });
        }

        return new RuleColumns(
            r.Target ?? "",
            (r.Find("-p") is { } p ? (p.Negated ? "!" : "") + p.Value : "all") ?? "all",
            r.Find("-f") is { } f ? (f.Negated ? "!f" : "-f") : "--",
            Iface(r, "-i"),
            Iface(r, "-o"),
            Addr(r, "-s") ?? any,
            Addr(r, "-d") ?? any,
            extra.ToString());
    }

    private static string Describe(RuleMatch m) => (m.Module, m.Option) switch
    {
        ("conntrack", "--ctstate") => $"ctstate {Neg(m)}{m.Value}",
        ("state", "--state") => $"state {Neg(m)}{m.Value}",
        ("comment", "--comment") => $"/* {m.Value} */",
        ("tcp" or "udp", "--dport") => $"{m.Module} dpt:{Neg(m)}{m.Value}",
        ("tcp" or "udp", "--sport") => $"{m.Module} spt:{Neg(m)}{m.Value}",
        ("addrtype", "--dst-type") => $"ADDRTYPE match dst-type {Neg(m)}{m.Value}",
        ("addrtype", "--src-type") => $"ADDRTYPE match src-type {Neg(m)}{m.Value}",
        ("icmp", "--icmp-type") => $"icmptype {Neg(m)}{m.Value}",
        ("set", "--match-set") => $"{Neg(m)}match-set {m.Value}",
        (_, "-m") => m.Value ?? "",
        _ => $"{Neg(m)}{m.Option} {m.Value}".TrimEnd(),
    };

    private static string Neg(RuleMatch m) => m.Negated ? "!" : "";

    private static string Iface(FirewallRule r, string option) => r.Find(option) is { } m ? (m.Negated ? "!" : "") + m.Value : "*";

    private static string? Addr(FirewallRule r, string option) => r.Find(option) is { } m ? (m.Negated ? "!" : "") + m.Value : null;

    private static string? Value(FirewallRule r, string option) => r.FindValue(option);

    private static void Append(StringBuilder sb, string s)
    {
        if (s.Length == 0)
        {
            return;
        }

        if (sb.Length > 0)
        {
            sb.Append(' ');
        }

        sb.Append(s);
    }
}
