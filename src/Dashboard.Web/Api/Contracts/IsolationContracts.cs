using Dashboard.Core.Evaluation;
using Dashboard.App.Isolation;

namespace Dashboard.Web.Api;

// The wire shapes of IsolationApi (JSON requests and responses): records only, no behaviour beyond building them.

public sealed record FlowRequest(string? InInterface, string? OutInterface, string? Source, string? Destination, string? Protocol, int? SourcePort, int? DestinationPort, string? IcmpType, string? State);

public sealed record ExplainRequest(string? Ruleset, FlowRequest? Flow, IReadOnlyList<string>? LocalAddresses, Dictionary<string, string>? InterfaceAddresses);

public sealed record DecidingRuleDto(string Table, string Chain, int? Position, string Rule)
{
    public static DecidingRuleDto? From(RuleRef? r) => r is null ? null : new(r.Table, r.Chain, r.Position, r.Rule);
}

public sealed record EvaluationDto(string Verdict, DecidingRuleDto? DecidingRule, IReadOnlyList<PathStep> Path, string? Reason)
{
    public static EvaluationDto From(Evaluation e) => new(e.Verdict.ToString().ToUpperInvariant(), DecidingRuleDto.From(e.DecidingRule), e.Path, e.Reason);
}

/// <summary>The answer of <c>POST /api/explain</c>: the request's verdict at the top level, the reply beside it.</summary>
public sealed record ExplainResponse(string Verdict, DecidingRuleDto? DecidingRule, IReadOnlyList<PathStep> Path, string? NatSource, string? NatDestination, string? Reason, EvaluationDto? Reply, string Outcome)
{
    public static ExplainResponse From(RoundTrip rt) => new(
        rt.Request.Verdict.ToString().ToUpperInvariant(), DecidingRuleDto.From(rt.Request.DecidingRule), rt.Request.Path, rt.Request.NatSource, rt.Request.NatDestination, rt.Request.Reason,
        rt.Reply is null ? null : EvaluationDto.From(rt.Reply), rt.Outcome);
}

public sealed record CellDto(string From, string To, string Request, string? Reply, bool Succeeds, string Outcome, DecidingRuleDto? DecidingRule, string? NatSource, string? Reason)
{
    public static CellDto Of(MatrixCell c) => new(c.From, c.To, c.Request.ToString().ToUpperInvariant(), c.Reply?.ToString().ToUpperInvariant(), c.Succeeds, c.Outcome, DecidingRuleDto.From(c.DecidingRule), c.NatSource, c.Reason);
}

public sealed record MatrixDto(IReadOnlyList<MatrixEndpoint> Endpoints, string Protocol, int? Port, IReadOnlyList<CellDto> Cells)
{
    public static MatrixDto From(IsolationMatrix m) => new(m.Endpoints, m.Probe.Protocol, m.Probe.Port, m.Cells.Select(CellDto.Of).ToList());
}

public sealed record CellChangeDto(string From, string To, CellDto Before, CellDto After);

public sealed record WhatIfDto(MatrixDto Before, MatrixDto After, IReadOnlyList<CellChangeDto> Changes, string Command)
{
    /// <summary>Every rule's command, in the order they are added (the first is <see cref="Command"/>).</summary>
    public IReadOnlyList<string> Commands { get; init; } = [Command];
}

public sealed record VerifyRequest(string? By, string? Protocol, int? Port);

public sealed record VerificationDto(MatrixDto Matrix, IReadOnlyList<VerifiedCell> Cells, int Agreed, int Disagreed, DateTimeOffset At);
