using Dashboard.Data.Entities;
using Dashboard.App.Changes;
using Dashboard.App.Labs;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Dashboard.Web.Api;

/// <summary>
/// Change requests: <c>GET /api/changes?lab=&amp;state=</c>, <c>POST /api/changes</c> (Operator), <c>GET /api/changes/{id}</c>,
/// <c>GET /api/changes/{id}/what-if</c>, <c>POST /api/changes/{id}/approve|reject</c> (Approver, not the proposer),
/// <c>POST /api/changes/{id}/revert</c> (Operator), <c>POST /api/changes/{id}/stage</c> (Operator; body <c>ttlSeconds</c>,
/// 30 s to 24 h, default an hour: the rule's match counts with no target) and <c>/unstage</c>, <c>POST /api/changes/check</c> (field and host checks only),
/// <c>GET /api/changes/reconciliation?host=</c>. A proposal's <c>host</c> names an agent's host (none: this dashboard's).
/// Refusals are problem details: 400 with <c>errors</c> per field, 403 role, 404 not a member, 409 wrong state.
/// </summary>
public static class ChangeApi
{
    public static IEndpointRouteBuilder MapChangeApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/changes").WithTags("Changes").DisableAntiforgery().WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(JsonBodyLimit.Bytes));
        g.MapGet("/", async (int? lab, ChangeState? state, HttpContext http, LabAccess access, ChangeRequestService changes, CancellationToken ct) =>
        {
            var actor = Actor.From(http);
            return TypedResults.Ok(await changes.ListAsync(actor, await access.ResolveAsync(actor, lab, ct), state, ct));
        });
        g.MapPost("/", async Task<Created<ChangeDto>> (ProposeChangeRequest body, HttpContext http, LabAccess access, ChangeRequestService changes, CancellationToken ct) =>
        {
            var actor = Actor.From(http);
            var labId = await access.ResolveAsync(actor, body.Lab, ct);
            var dto = await changes.ProposeAsync(actor, labId, body.Rule ?? throw Missing("Rule", "the rule is missing"), body.Rationale ?? "", body.TtlSeconds, ct, body.Host);
            return TypedResults.Created($"/api/changes/{dto.Id}", dto);
        });
        g.MapPost("/check", async (ProposeChangeRequest body, ChangeRequestService changes, CancellationToken ct) =>
            TypedResults.Ok(await changes.CheckAsync(body.Rule ?? throw Missing("Rule", "the rule is missing"), body.Rationale, body.TtlSeconds, ct, body.Host)));
        g.MapGet("/{id:int}", async (int id, HttpContext http, ChangeRequestService changes, CancellationToken ct) =>
            TypedResults.Ok(await changes.GetAsync(Actor.From(http), id, ct)));
        g.MapGet("/{id:int}/what-if", async (int id, HttpContext http, ChangeRequestService changes, CancellationToken ct) =>
            TypedResults.Ok(await changes.WhatIfAsync(Actor.From(http), id, ct)));
        g.MapPost("/{id:int}/approve", async (int id, DecisionRequest? body, HttpContext http, ChangeRequestService changes, CancellationToken ct) =>
            TypedResults.Ok(await changes.ApproveAsync(Actor.From(http), id, body?.Note, ct)));
        g.MapPost("/{id:int}/reject", async (int id, DecisionRequest? body, HttpContext http, ChangeRequestService changes, CancellationToken ct) =>
            TypedResults.Ok(await changes.RejectAsync(Actor.From(http), id, body?.Note, ct)));
        g.MapPost("/{id:int}/stage", async (int id, StageRequest? body, HttpContext http, ChangeRequestService changes, CancellationToken ct) =>
            TypedResults.Ok(await changes.StageAsync(Actor.From(http), id, body?.TtlSeconds, ct)));
        g.MapPost("/{id:int}/unstage", async (int id, HttpContext http, ChangeRequestService changes, CancellationToken ct) =>
            TypedResults.Ok(await changes.UnstageAsync(Actor.From(http), id, ct)));
        g.MapPost("/{id:int}/revert", async (int id, HttpContext http, ChangeRequestService changes, CancellationToken ct) =>
            TypedResults.Ok(await changes.RevertAsync(Actor.From(http), id, ct)));
        g.MapGet("/reconciliation", (string? host, ChangeReconciler reconciler) =>
            reconciler.LastReconciliationOf(host) is { } r ? Results.Ok(r) : Results.NoContent());
        return app;
    }

    private static ChangeValidationException Missing(string field, string message) => new(new Dictionary<string, string> { [field] = message });
}
