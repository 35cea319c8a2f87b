using Dashboard.Core.Firewall;

namespace Dashboard.Web.Api;

/// <summary>The ruleset as JSON: tables → chains → rules, with counters, matches, owners and linked networks.</summary>
public sealed record RulesetDto(RulesetFormat Format, string? Generator, int RuleCount, IReadOnlyList<TableDto> Tables)
{
    public static RulesetDto From(Ruleset r) => new(
        r.Format,
        r.Generator,
        r.RuleCount,
        r.Tables.Select(t => new TableDto(
            t.Family,
            t.Name,
            t.Chains.Select(c => new ChainDto(c.Name, c.Policy, c.PolicyPackets, c.PolicyBytes, c.Hook, c.Type, c.Priority, c.Rules.Select(RuleDto.From).ToList())).ToList(),
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
    public static RuleDto From(FirewallRule r) => new(
        r.Position, r.Packets, r.Bytes, r.Matches, r.Target, r.JumpChains, r.TargetOptions, r.Comment, r.Owner, r.Bridges, r.Networks, r.Key, r.Text, r.Handle);
}
