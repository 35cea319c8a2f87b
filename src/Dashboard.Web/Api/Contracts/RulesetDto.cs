using Dashboard.Core.Firewall;

namespace Dashboard.Web.Api;

/// <summary>The ruleset as JSON: tables → chains → rules, with counters, matches, owners and linked networks.</summary>
public sealed record RulesetDto(RulesetFormat Format, string? Generator, int RuleCount, IReadOnlyList<TableDto> Tables)
{
    public static RulesetDto From(Ruleset r) => From(r, null);

    /// <summary>The ruleset with a live feed's latest counters (rules and chain policies) where the feed has them.</summary>
    public static RulesetDto From(Ruleset r, Dashboard.App.Live.LiveFeed? feed) => new(
        r.Format,
        r.Generator,
        r.RuleCount,
        r.Tables.Select(t => new TableDto(
            t.Family,
            t.Name,
            t.Chains.Select(c =>
            {
                var (pp, pb) = feed?.PolicyCountersOf(t.Family, t.Name, c) ?? (c.PolicyPackets, c.PolicyBytes);
                return new ChainDto(c.Name, c.Policy, pp, pb, c.Hook, c.Type, c.Priority, c.Rules.Select(x => RuleDto.From(x, feed)).ToList());
            }).ToList(),
            t.Sets.Values.ToList())).ToList());
}

public sealed record TableDto(TableFamily Family, string Name, IReadOnlyList<ChainDto> Chains, IReadOnlyList<NftSet> Sets);

public sealed record ChainDto(string Name, string? Policy, ulong PolicyPackets, ulong PolicyBytes, string? Hook, string? Type, int? Priority, IReadOnlyList<RuleDto> Rules);

public sealed record RuleDto(
    int Position,
    ulong Packets,
    ulong Bytes,
    IReadOnlyList<RuleMatch> Matches,
    string? Target,
    IReadOnlyList<string> JumpChains,
    IReadOnlyList<RuleMatch> TargetOptions,
    string? Comment,
    RuleOwner Owner,
    IReadOnlyList<string> Bridges,
    IReadOnlyList<string> Networks,
    string Key,
    string Text,
    long? Handle)
{
    public static RuleDto From(FirewallRule r, Dashboard.App.Live.LiveFeed? feed = null)
    {
        var (packets, bytes) = feed?.CountersOf(r) ?? (r.Packets, r.Bytes);
        return new(r.Position, packets, bytes, r.Matches, r.Target, r.JumpChains, r.TargetOptions, r.Comment, r.Owner, r.Bridges, r.Networks, r.Key, r.Text, r.Handle);
    }
}
