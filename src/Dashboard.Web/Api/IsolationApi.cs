using System.Text.Json;
using Dashboard.Core.Changes;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using Dashboard.App.Isolation;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;

namespace Dashboard.Web.Api;

/// <summary>
/// <c>POST /api/explain</c> (a pasted dump and a flow, no live host needed), <c>GET /api/isolation</c> (the live host's
/// matrix), <c>POST /api/isolation/what-if</c> (with a proposed rule) and <c>POST /api/isolation/verify</c> (real pings).
/// </summary>
public static class IsolationApi
{
    public static IEndpointRouteBuilder MapIsolationApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/explain", ExplainAsync).DisableAntiforgery().WithTags("Isolation").RequireRateLimiting(RateLimits.Expensive);
        var api = app.MapGroup("/api/isolation").WithTags("Isolation");
        api.MapGet("/", async Task<Results<Ok<MatrixDto>, ProblemHttpResult>> (string? by, string? protocol, int? port, IsolationService isolation, CancellationToken ct) =>
            Probe(by, protocol, port) is { } bad ? bad : TypedResults.Ok(MatrixDto.From(await isolation.MatrixAsync(by ?? "networks", new MatrixProbe(protocol ?? "icmp", port), ct))));
        // At most 20 rules of a few hundred bytes each: a body is read only up to 64 KiB (413 beyond), never a 30 MB list.
        api.MapPost("/what-if", WhatIfAsync).DisableAntiforgery().RequireRateLimiting(RateLimits.Expensive).WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(JsonBodyLimit.Bytes));
        api.MapPost("/verify", async Task<Results<Ok<VerificationDto>, ProblemHttpResult>> (VerifyRequest body, HttpContext http, IsolationService isolation, CancellationToken ct) =>
        {
            if (Probe(body.By, body.Protocol, body.Port) is { } bad)
            {
                return bad;
            }

            var matrix = await isolation.MatrixAsync(body.By ?? "networks", new MatrixProbe(body.Protocol ?? "icmp", body.Port), ct);
            return await VerifiedAsync(() => isolation.VerifyAsync(Actor.From(http), matrix, ct: ct));
        }).DisableAntiforgery().RequireHostOperator("isolation.verify").RequireRateLimiting(RateLimits.Expensive);
        return app;
    }

    /// <summary>A verification as the API answers it (this host's or an agent host's): the cells, or 409 while another runs there.</summary>
    internal static async Task<Results<Ok<VerificationDto>, ProblemHttpResult>> VerifiedAsync(Func<Task<Verification>> verify)
    {
        try
        {
            var v = await verify();
            return TypedResults.Ok(new VerificationDto(MatrixDto.From(v.Matrix), v.Cells, v.Agreed, v.Disagreed, v.At));
        }
        catch (VerifyBusyException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Not verified", detail: ex.Message);
        }
    }

    internal static ProblemHttpResult? Probe(string? by, string? protocol, int? port)
    {
        if (by is not (null or "networks" or "containers"))
        {
            return Bad("'by' is networks or containers");
        }

        return (protocol ?? "icmp", port) switch
        {
            ("icmp", null) => null,
            ("tcp", >= 1 and <= 65535) => null,
            ("tcp", _) => Bad("TCP needs a port 1-65535"),
            ("icmp", _) => Bad("ICMP has no port"),
            _ => Bad("protocol is icmp or tcp"),
        };
    }

    private static ProblemHttpResult Bad(string detail) => TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Bad request", detail: detail);

    private static async Task<Results<Ok<ExplainResponse>, ProblemHttpResult>> ExplainAsync(HttpRequest request, ApiOptions api, IOptions<JsonOptions> json, CancellationToken ct)
    {
        var (text, tooLarge) = await ReadApi.ReadBoundedAsync(request.Body, api.MaxDumpBytes, ct);
        if (tooLarge)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Request too large", detail: $"At most {api.MaxDumpBytes / (1024 * 1024)} MiB.");
        }

        ExplainRequest? body;
        try
        {
            body = JsonSerializer.Deserialize<ExplainRequest>(text, json.Value.SerializerOptions);
        }
        catch (JsonException ex)
        {
            return Bad($"the body is not the expected JSON ({{ \"ruleset\": \"...\", \"flow\": {{ ... }} }}): {ex.Message}");
        }

        if (body?.Ruleset is not { Length: > 0 } dump || body.Flow is not { } f)
        {
            return Bad("give \"ruleset\" (iptables-save text or nft -j JSON, as a string) and \"flow\"");
        }

        var flow = new FlowSpec
        {
            InInterface = f.InInterface,
            OutInterface = f.OutInterface,
            Source = f.Source ?? "",
            Destination = f.Destination ?? "",
            Protocol = f.Protocol ?? "icmp",
            SourcePort = f.SourcePort,
            DestinationPort = f.DestinationPort,
            IcmpType = f.IcmpType,
            State = string.Equals(f.State, "ESTABLISHED", StringComparison.OrdinalIgnoreCase) ? ConnectionState.Established : ConnectionState.New,
        };
        var errors = flow.Validate().ToList();
        if (f.State is not (null or "NEW" or "new" or "ESTABLISHED" or "established"))
        {
            errors.Add("state is NEW or ESTABLISHED");
        }

        foreach (var a in (body.LocalAddresses ?? []).Concat(body.InterfaceAddresses?.Values.AsEnumerable() ?? []))
        {
            if (!FlowSpec.IsIpv4(a))
            {
                errors.Add($"'{(a.Length > 40 ? a[..40] : a)}' is not an IPv4 address");
            }
        }

        if (errors.Count > 0)
        {
            return Bad(string.Join("; ", errors));
        }

        Ruleset ruleset;
        try
        {
            ruleset = RulesetReader.Read(dump);
        }
        catch (RulesetFormatException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "The dump could not be read", detail: ex.Message, extensions: new Dictionary<string, object?> { ["line"] = ex.Line });
        }

        var context = new EvaluationContext
        {
            LocalAddresses = body.LocalAddresses is null ? null : new HashSet<string>(body.LocalAddresses),
            InterfaceAddresses = body.InterfaceAddresses ?? new Dictionary<string, string>(),
        };
        return TypedResults.Ok(ExplainResponse.From(PacketEvaluator.Explain(ruleset, flow, context)));
    }

    private static async Task<Results<Ok<WhatIfDto>, ProblemHttpResult>> WhatIfAsync(WhatIfRequest body, IsolationService isolation, CancellationToken ct)
    {
        if (Probe(body.By, body.Protocol, body.Port) is { } bad)
        {
            return bad;
        }

        if ((body.Rule, body.Rules) is (null, null or { Count: 0 }) or (not null, { Count: > 0 }))
        {
            return Bad("give the proposed \"rule\", or \"rules\" to add in order (not both)");
        }

        var rules = body.Rules is { Count: > 0 } many ? many : [body.Rule!];
        if (rules.Count > IsolationService.MaxWhatIfRules)
        {
            return Bad($"\"rules\": at most {IsolationService.MaxWhatIfRules} rules at once ({rules.Count} given)");
        }

        try
        {
            var specs = new List<RuleSpec>(rules.Count);
            for (var i = 0; i < rules.Count; i++)
            {
                var place = body.Rules is null ? "rule" : $"rules[{i}]";
                if (rules[i] is null)
                {
                    return Bad($"\"{place}\" is null");
                }

                var spec = rules[i].ToSpec(RuleTag.For("whatif"));
                if (spec.Validate() is { Count: > 0 } errors)
                {
                    return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: $"The {place} is not valid", detail: string.Join("; ", errors.Select(e => $"{place}.{e.Key}: {e.Value}")),
                        extensions: new Dictionary<string, object?> { ["errors"] = errors, ["place"] = place });
                }

                specs.Add(spec);
            }

            var w = await isolation.WhatIfAsync(specs, body.By ?? "networks", new MatrixProbe(body.Protocol ?? "icmp", body.Port), ct);
            return TypedResults.Ok(new WhatIfDto(MatrixDto.From(w.Before), MatrixDto.From(w.After), w.Changes.Select(c => new CellChangeDto(c.From, c.To, CellDto.Of(c.Before), CellDto.Of(c.After))).ToList(), w.Command)
            {
                Commands = w.Commands,
            });
        }
        catch (WhatIfException ex)
        {
            return Bad(ex.Message);
        }
    }
}

/// <summary>
/// A rule to try, or several added in order (each position counts the rules before it), with the same fields as a
/// change request's rule (any table and target iptables accepts), and the matrix to show.
/// </summary>
public sealed record WhatIfRequest(ChangeRule? Rule, string? By, string? Protocol, int? Port)
{
    public IReadOnlyList<ChangeRule>? Rules { get; init; }
}
