using System.Net;
using System.Text.RegularExpressions;
using Dashboard.Core.Firewall;

namespace Dashboard.Core.Changes;

/// <summary>
/// A structured iptables rule: every field validated on its own, then rendered to an argument vector. Nothing here is
/// free text that reaches a command line: interface and chain names are restricted to the kernel's characters, addresses
/// are parsed, protocol and target come from fixed lists, the comment is a <see cref="RuleTag"/>.
/// </summary>
public sealed partial record RuleSpec
{
    public static readonly IReadOnlyList<string> Tables = ["filter", "raw", "nat", "mangle"];
    public static readonly IReadOnlyList<string> Targets = ["ACCEPT", "DROP", "RETURN", "LOG", "REJECT", "TRACE"];
    public static readonly IReadOnlyList<string> Protocols = ["tcp", "udp", "icmp", "icmpv6", "all"];
    public static readonly IReadOnlyList<string> States = ["NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED", "SNAT", "DNAT"];

    public string Table { get; init; } = "filter";
    public required string Chain { get; init; }

    /// <summary>1-based insert position; null appends.</summary>
    public int? Position { get; init; }

    public string? InInterface { get; init; }
    public bool NegateInInterface { get; init; }
    public string? OutInterface { get; init; }
    public bool NegateOutInterface { get; init; }
    public string? Source { get; init; }
    public bool NegateSource { get; init; }
    public string? Destination { get; init; }
    public bool NegateDestination { get; init; }
    public string? Protocol { get; init; }
    public int? SourcePort { get; init; }
    public int? DestinationPort { get; init; }

    /// <summary>Conntrack states (<c>-m conntrack --ctstate</c>), e.g. RELATED and ESTABLISHED; null or empty matches any.</summary>
    public IReadOnlyList<string>? ConnectionStates { get; init; }
    public string? IcmpType { get; init; }
    public required string Target { get; init; }

    /// <summary>The dashboard's tag for this rule (see <see cref="RuleTag.For"/>).</summary>
    public required string Tag { get; init; }

    /// <summary>
    /// A counting rule: the same match with no <c>-j</c>, so it counts the packets <see cref="Target"/> would decide and
    /// lets them go on (a staged change). <see cref="Target"/> stays the one approval puts in.
    /// </summary>
    public bool CountOnly { get; init; }

    [GeneratedRegex("^[A-Za-z0-9_.+-]{1,15}$", RegexOptions.CultureInvariant)]
    private static partial Regex InterfaceName();

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,28}$", RegexOptions.CultureInvariant)]
    private static partial Regex ChainName();

    [GeneratedRegex("^(echo-request|echo-reply|destination-unreachable|time-exceeded|[0-9]{1,3}(/[0-9]{1,3})?)$", RegexOptions.CultureInvariant)]
    private static partial Regex IcmpTypeName();

    /// <summary>Every problem with the fields, keyed by field name; empty when the rule is valid.</summary>
    public IReadOnlyDictionary<string, string> Validate()
    {
        var errors = new Dictionary<string, string>();
        if (!Tables.Contains(Table))
        {
            errors[nameof(Table)] = $"table must be one of {string.Join(", ", Tables)}";
        }

        if (string.IsNullOrEmpty(Chain) || !ChainName().IsMatch(Chain) || Chain.StartsWith('-'))
        {
            errors[nameof(Chain)] = "chain names are 1-28 characters of letters, digits, '_', '.', '-' and do not start with '-'";
        }

        if (Position is < 1 or > 100_000)
        {
            errors[nameof(Position)] = "position is a rule number from 1 (the head of the chain); leave it empty to append";
        }

        CheckInterface(InInterface, nameof(InInterface), errors);
        CheckInterface(OutInterface, nameof(OutInterface), errors);
        CheckAddress(Source, nameof(Source), errors);
        CheckAddress(Destination, nameof(Destination), errors);
        if (Protocol is not null && !Protocols.Contains(Protocol))
        {
            errors[nameof(Protocol)] = $"protocol must be one of {string.Join(", ", Protocols)}";
        }

        if (DestinationPort is not null && (DestinationPort is < 1 or > 65535 || Protocol is not ("tcp" or "udp")))
        {
            errors[nameof(DestinationPort)] = "a destination port is 1-65535 and needs protocol tcp or udp";
        }

        if (SourcePort is not null && (SourcePort is < 1 or > 65535 || Protocol is not ("tcp" or "udp")))
        {
            errors[nameof(SourcePort)] = "a source port is 1-65535 and needs protocol tcp or udp";
        }

        if (ConnectionStates is { Count: > 0 } states && (states.Count > States.Count || states.Any(x => !States.Contains(x)) || states.Distinct().Count() != states.Count))
        {
            errors[nameof(ConnectionStates)] = $"conntrack states are some of {string.Join(", ", States)}, each once";
        }

        if (IcmpType is not null && (Protocol != "icmp" || !IcmpTypeName().IsMatch(IcmpType)))
        {
            errors[nameof(IcmpType)] = "an ICMP type needs protocol icmp and is a name such as echo-request or a number";
        }

        if (!Targets.Contains(Target))
        {
            errors[nameof(Target)] = $"target must be one of {string.Join(", ", Targets)}";
        }

        if (!RuleTag.IsDashboardComment(Tag) || Tag.Length > 250 || Tag.Any(c => c is '"' or '\\' || char.IsControl(c) || char.IsWhiteSpace(c)))
        {
            errors[nameof(Tag)] = "the tag must be the dashboard's own comment (netlab:...)";
        }

        return errors;
    }

    /// <summary>The match and target part (<c>-s 172.18.0.0/16 ... -m comment --comment netlab:x -j ACCEPT</c>).</summary>
    public IReadOnlyList<string> SpecArguments()
    {
        ThrowIfInvalid();
        var a = new List<string>();
        Add(a, "-i", InInterface, NegateInInterface);
        Add(a, "-o", OutInterface, NegateOutInterface);
        Add(a, "-s", Source, NegateSource);
        Add(a, "-d", Destination, NegateDestination);
        if (Protocol is not null)
        {
            a.AddRange(["-p", Protocol]);
            if (SourcePort is not null || DestinationPort is not null)
            {
                a.AddRange(["-m", Protocol]);
                if (SourcePort is { } sport)
                {
                    a.AddRange(["--sport", sport.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                }

                if (DestinationPort is { } port)
                {
                    a.AddRange(["--dport", port.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                }
            }

            if (IcmpType is not null)
            {
                a.AddRange(["-m", "icmp", "--icmp-type", IcmpType]);
            }
        }

        if (ConnectionStates is { Count: > 0 } states)
        {
            a.AddRange(["-m", "conntrack", "--ctstate", string.Join(',', States.Where(states.Contains))]);
        }

        a.AddRange(["-m", "comment", "--comment", Tag]);
        if (!CountOnly)
        {
            a.AddRange(["-j", Target]);
        }

        return a;
    }

    /// <summary>
    /// The insert (or append) as a line of <c>iptables-restore</c> input, inside its table's block: <c>-I CHAIN N ...</c>.
    /// Safe to write unquoted: every field is validated to letters, digits and <c>_.:/+,-</c>, and the tag has no space or quote.
    /// </summary>
    public string RestoreLine()
    {
        var a = new List<string>();
        if (Position is { } p)
        {
            a.AddRange(["-I", Chain, p.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }
        else
        {
            a.AddRange(["-A", Chain]);
        }

        a.AddRange(SpecArguments());
        return string.Join(' ', a);
    }

    /// <summary>The whole <c>iptables</c> argument vector that inserts (or appends) this rule, waiting up to <paramref name="lockWaitSeconds"/> for the xtables lock.</summary>
    public IReadOnlyList<string> InsertArguments(int lockWaitSeconds = 5)
    {
        var a = new List<string> { "-w", lockWaitSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), "-t", Table };
        if (Position is { } p)
        {
            a.AddRange(["-I", Chain, p.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }
        else
        {
            a.AddRange(["-A", Chain]);
        }

        a.AddRange(SpecArguments());
        return a;
    }

    public bool IsIpv6 => (Source ?? Destination) is { } addr && addr.Contains(':', StringComparison.Ordinal);

    private void ThrowIfInvalid()
    {
        var errors = Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors.Select(e => $"{e.Key}: {e.Value}")));
        }
    }

    private static void Add(List<string> a, string opt, string? value, bool negate)
    {
        if (value is null)
        {
            return;
        }

        if (negate)
        {
            a.Add("!");
        }

        a.AddRange([opt, value]);
    }

    private static void CheckInterface(string? name, string field, Dictionary<string, string> errors)
    {
        if (name is not null && (!InterfaceName().IsMatch(name) || name.StartsWith('-') || name is "." or ".."))
        {
            errors[field] = "interface names are 1-15 characters of ASCII letters, digits, '_', '.', '-', '+' (a trailing '+' matches a prefix)";
        }
    }

    private static void CheckAddress(string? value, string field, Dictionary<string, string> errors)
    {
        if (value is null)
        {
            return;
        }

        if (value.Length > 43 || !IsCanonical(value))
        {
            errors[field] = $"'{Shorten(value)}' is not an address or prefix in canonical form (e.g. 172.18.0.2 or 172.18.0.0/16, all four parts, no host bits): short forms such as 172.20/30 read differently in iptables";
        }
    }

    /// <summary>
    /// An address or prefix written exactly as it prints (so what the approver reads is what iptables applies): .NET
    /// reads "172.20/30" as 172.0.0.20/30, iptables as 172.20.0.0/30. The prefix has no host bits.
    /// </summary>
    public static bool IsCanonical(string value)
    {
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        var address = slash < 0 ? value : value[..slash];
        if (!IPAddress.TryParse(address, out var a) || a.ToString() != address)
        {
            return false;
        }

        if (slash < 0)
        {
            return true;
        }

        var prefix = value[(slash + 1)..];
        return int.TryParse(prefix, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var bits)
            && bits.ToString(System.Globalization.CultureInfo.InvariantCulture) == prefix
            && IPNetwork.TryParse(value, out var net) && net.BaseAddress.Equals(a) && net.PrefixLength == bits;
    }

    private static string Shorten(string s) => s.Length > 40 ? s[..40] + "…" : s;
}
