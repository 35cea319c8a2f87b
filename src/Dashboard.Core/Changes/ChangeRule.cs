using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dashboard.Core.Firewall;

namespace Dashboard.Core.Changes;

/// <summary>
/// The rule a change request proposes, as a person fills it in: a narrower <see cref="RuleSpec"/> (tables filter, raw and
/// nat; targets ACCEPT, DROP, RETURN and LOG) without the tag, which the dashboard adds when it applies the change.
/// Every field is checked on its own; nothing here is free text that could reach a command line.
/// </summary>
public sealed record ChangeRule
{
    public static readonly IReadOnlyList<string> Tables = ["filter", "raw", "nat"];
    public static readonly IReadOnlyList<string> Targets = ["ACCEPT", "DROP", "RETURN", "LOG"];
    public const int MaxRationale = 2000;
    public const int MinTtlSeconds = 5;
    public const int MaxTtlSeconds = 30 * 24 * 3600;

    /// <summary>The most change rules (applied and staged, tagged netlab:change-…) one host holds; the dashboard and every agent keep it.</summary>
    public const int MaxPerHost = 256;

    /// <summary>How many of <paramref name="tagged"/> are change rules (applied or staged), for <see cref="MaxPerHost"/>.</summary>
    public static int CountOn(IEnumerable<FirewallRule> tagged) =>
        tagged.Count(r => r.Comment is { } c && c.StartsWith(RuleTag.Prefix + "change-", StringComparison.Ordinal));

    public static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public string Table { get; init; } = "filter";
    public string Chain { get; init; } = "DOCKER-USER";

    /// <summary>1-based insert position; null appends.</summary>
    public int? Position { get; init; } = 1;

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
    public IReadOnlyList<string>? ConnectionStates { get; init; }
    public string Target { get; init; } = "ACCEPT";

    /// <summary>An IPv6 rule (for ip6tables): its source or destination is an IPv6 address.</summary>
    public bool IsIpv6 => (Blank(Source) ?? Blank(Destination)) is { } addr && addr.Contains(':', StringComparison.Ordinal);

    /// <summary>The rule with the dashboard's tag, ready to render as iptables arguments.</summary>
    public RuleSpec ToSpec(string tag) => new()
    {
        Table = Table,
        Chain = Chain,
        Position = Position,
        InInterface = Blank(InInterface),
        NegateInInterface = NegateInInterface,
        OutInterface = Blank(OutInterface),
        NegateOutInterface = NegateOutInterface,
        Source = Blank(Source),
        NegateSource = NegateSource,
        Destination = Blank(Destination),
        NegateDestination = NegateDestination,
        Protocol = Blank(Protocol),
        SourcePort = SourcePort,
        DestinationPort = DestinationPort,
        ConnectionStates = ConnectionStates is { Count: > 0 } ? ConnectionStates : null,
        Target = Target,
        Tag = tag,
    };

    /// <summary>The rule staged: the same match at the same position with no target, so it only counts (see <see cref="RuleSpec.CountOnly"/>).</summary>
    public RuleSpec ToStagedSpec(string stagedTag) => ToSpec(stagedTag) with { CountOnly = true };

    /// <summary>Field problems (without looking at the host), keyed by field name; empty when the rule is well formed.</summary>
    public IReadOnlyDictionary<string, string> Validate()
    {
        var errors = new Dictionary<string, string>(ToSpec(RuleTag.For("change-check")).Validate());
        if (!Tables.Contains(Table))
        {
            errors[nameof(Table)] = $"table must be one of {string.Join(", ", Tables)}";
        }

        if (!Targets.Contains(Target))
        {
            errors[nameof(Target)] = $"target must be one of {string.Join(", ", Targets)}";
        }

        if (NegateInInterface && Blank(InInterface) is null)
        {
            errors[nameof(NegateInInterface)] = "negation needs an input interface";
        }

        if (NegateOutInterface && Blank(OutInterface) is null)
        {
            errors[nameof(NegateOutInterface)] = "negation needs an output interface";
        }

        if (NegateSource && Blank(Source) is null)
        {
            errors[nameof(NegateSource)] = "negation needs a source";
        }

        if (NegateDestination && Blank(Destination) is null)
        {
            errors[nameof(NegateDestination)] = "negation needs a destination";
        }

        if (Blank(Source) is { } s && Blank(Destination) is { } d && s.Contains(':', StringComparison.Ordinal) != d.Contains(':', StringComparison.Ordinal))
        {
            errors[nameof(Destination)] = "source and destination must both be IPv4 or both IPv6";
        }

        return errors;
    }

    /// <summary>Problems with the rationale and time-to-live that go with a rule.</summary>
    public static IReadOnlyDictionary<string, string> ValidateRequest(string? rationale, int? ttlSeconds)
    {
        var errors = new Dictionary<string, string>();
        if (string.IsNullOrWhiteSpace(rationale))
        {
            errors["Rationale"] = "say why the change is needed";
        }
        else if (rationale.Length > MaxRationale)
        {
            errors["Rationale"] = $"the rationale is {rationale.Length} characters; at most {MaxRationale}";
        }
        else if (rationale.Any(c => char.IsControl(c) && c is not ('\n' or '\r' or '\t')))
        {
            errors["Rationale"] = "the rationale contains control characters";
        }

        if (ttlSeconds is { } ttl && (ttl < MinTtlSeconds || ttl > MaxTtlSeconds))
        {
            errors["TtlSeconds"] = $"a time-to-live is {MinTtlSeconds} s to 30 days; leave it empty to keep the rule until reverted";
        }

        return errors;
    }

    /// <summary>A one-line reading for lists: "filter DOCKER-USER #1: -i br-a -o br-b -p icmp → ACCEPT".</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        sb.Append(Table).Append(' ').Append(Chain).Append(Position is { } p ? $" #{p}" : " (append)").Append(':');
        void Part(string opt, string? v, bool neg)
        {
            if (Blank(v) is { } value)
            {
                sb.Append(' ').Append(neg ? "! " : "").Append(opt).Append(' ').Append(value);
            }
        }

        Part("-i", InInterface, NegateInInterface);
        Part("-o", OutInterface, NegateOutInterface);
        Part("-s", Source, NegateSource);
        Part("-d", Destination, NegateDestination);
        Part("-p", Protocol, false);
        if (SourcePort is { } sp)
        {
            sb.Append(" --sport ").Append(sp);
        }

        if (DestinationPort is { } dp)
        {
            sb.Append(" --dport ").Append(dp);
        }

        if (ConnectionStates is { Count: > 0 } st)
        {
            sb.Append(" --ctstate ").Append(string.Join(',', st));
        }

        sb.Append(" → ").Append(Target);
        return sb.ToString();
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static ChangeRule FromJson(string json) => JsonSerializer.Deserialize<ChangeRule>(json, Json) ?? throw new JsonException("empty rule");

    private static string? Blank(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
