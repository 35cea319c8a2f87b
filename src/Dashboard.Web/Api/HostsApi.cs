using Dashboard.App.Hosts;
using Dashboard.App.Isolation;
using Dashboard.App.Live;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Dashboard.Web.Api;

/// <summary>
/// The hosts this dashboard shows: <c>GET /api/hosts</c>; site administrators register (<c>POST</c>, the agent token in
/// the answer once) and revoke (<c>DELETE /api/hosts/{name}</c>). Per host, from its feed (the local host's name works
/// too): <c>/api/hosts/{host}</c>, <c>/topology</c>, <c>/firewall</c> (latest counters), <c>/collector</c> and
/// <c>/isolation</c>, and <c>POST /isolation/verify</c> (the host's agent pings; Operators). A host that has not reported is a 404; a disconnected one answers its last state with
/// <c>X-Stale: true</c>.
/// </summary>
public static class HostsApi
{
    /// <summary>The most endpoints a host's matrix takes (its cells grow with the square).</summary>
    public const int MaxMatrixEndpoints = 250;

    public static IEndpointRouteBuilder MapHostsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/hosts").WithTags("Hosts");
        api.MapGet("/", async (HostDirectory directory, HostRegistry registry, CancellationToken ct) =>
            TypedResults.Ok(await HostOverview.ListAsync(directory, registry, ct)));
        api.MapPost("/", async Task<Results<Created<RegisteredHostResponse>, ProblemHttpResult>> (RegisterHostRequest? body, HttpContext http, HostRegistry registry, CancellationToken ct) =>
        {
            try
            {
                var r = await registry.RegisterAsync(Actor.From(http), body?.Name, ct);
                var server = $"{http.Request.Scheme}://{http.Request.Host}";
                return TypedResults.Created($"/api/hosts/{r.Host.Name}", new RegisteredHostResponse(r.Host, r.Token, $"scripts/agent.sh --server {server} --token-file FILE   # FILE (mode 0600) holding the token"));
            }
            catch (HostNameException ex)
            {
                return TypedResults.Problem(statusCode: 400, title: "Host not registered", detail: "name: " + ex.Message);
            }
            catch (HostConflictException ex)
            {
                return TypedResults.Problem(statusCode: 409, title: "Host not registered", detail: ex.Message);
            }
        }).DisableAntiforgery();
        api.MapDelete("/{name}", async Task<Results<NoContent, NotFound<ProblemDetails>>> (string name, HttpContext http, HostRegistry registry, CancellationToken ct) =>
            await registry.RevokeAsync(Actor.From(http), name, ct) ? TypedResults.NoContent() : TypedResults.NotFound(NoHost(name))).DisableAntiforgery();

        api.MapGet("/{host}", async Task<Results<Ok<HostOverview>, NotFound<ProblemDetails>>> (string host, HostDirectory directory, HostRegistry registry, CancellationToken ct) =>
            (await HostOverview.ListAsync(directory, registry, ct)).FirstOrDefault(h => h.Name == host) is { } o ? TypedResults.Ok(o) : TypedResults.NotFound(NoHost(host)));
        api.MapGet("/{host}/topology", (string host, HttpContext http, HostDirectory directory) =>
            With(host, http, directory, f => f.Topology is { } t ? TypedResults.Ok(t) : null));
        api.MapGet("/{host}/collector", (string host, HttpContext http, HostDirectory directory) =>
            With(host, http, directory, f => TypedResults.Ok(f.Status)));
        api.MapGet("/{host}/firewall", (string host, HttpContext http, HostDirectory directory) =>
            With(host, http, directory, f => f.Ruleset is { } rs
                ? TypedResults.Ok(new HostFirewallResponse(f.RulesetReadAt, f.Status.Backend, DockerLayoutDetector.Detect(rs), RulesetDto.From(rs, f)))
                : null));
        api.MapGet("/{host}/isolation", (string host, string? by, string? protocol, int? port, HttpContext http, HostDirectory directory) =>
        {
            if (IsolationApi.Probe(by, protocol, port) is { } bad)
            {
                return (IResult)bad;
            }

            if (TooLarge(host, by, directory) is { } large)
            {
                return large;
            }

            return With(host, http, directory, f => IsolationService.MatrixOf(f, by ?? "networks", new MatrixProbe(protocol ?? "icmp", port)) is { } m ? TypedResults.Ok(MatrixDto.From(m)) : null);
        }).RequireRateLimiting(RateLimits.Expensive);
        api.MapPost("/{host}/isolation/verify", async Task<IResult> (string host, VerifyRequest body, HttpContext http, HostDirectory directory, IsolationService isolation, CancellationToken ct) =>
        {
            if (IsolationApi.Probe(body.By, body.Protocol, body.Port) is { } bad)
            {
                return bad;
            }

            if (directory.FeedOf(host) is not { } feed)
            {
                return TypedResults.NotFound(NoHost(host));
            }

            if (TooLarge(host, body.By, directory) is { } large)
            {
                return large;
            }

            if (IsolationService.MatrixOf(feed, body.By ?? "networks", new MatrixProbe(body.Protocol ?? "icmp", body.Port)) is not { } matrix)
            {
                return TypedResults.Problem(statusCode: 503, title: "Not reported yet", detail: $"host '{host}' has not reported its rules and containers yet");
            }

            return await IsolationApi.VerifiedAsync(() => isolation.VerifyOnAsync(Actor.From(http), host, matrix, ct: ct));
        }).DisableAntiforgery().RequireHostOperator("isolation.verify").RequireRateLimiting(RateLimits.Expensive);
        return app;
    }

    private static ProblemHttpResult? TooLarge(string host, string? by, HostDirectory directory) =>
        directory.FeedOf(host)?.Topology is { } t && IsolationService.Endpoints(t, by ?? "networks").Count is var n && n > MaxMatrixEndpoints
            ? TypedResults.Problem(statusCode: 400, title: "Matrix too large", detail: $"by: host '{host}' has {n} endpoints this way; a matrix has at most {MaxMatrixEndpoints} (try by=networks)")
            : null;

    /// <summary>Answers from a host's feed: 404 for an unknown host, 503 while it has not reported that part yet; stale data is marked.</summary>
    private static IResult With(string host, HttpContext http, HostDirectory directory, Func<LiveFeed, IResult?> answer)
    {
        if (directory.FeedOf(host) is not { } feed)
        {
            return TypedResults.NotFound(NoHost(host));
        }

        var stale = directory.Remote(host) is { IsStale: true };
        http.Response.Headers["X-Stale"] = stale ? "true" : "false";
        return answer(feed) ?? TypedResults.Problem(statusCode: 503, title: "Not reported yet",
            detail: stale ? $"host '{host}' is disconnected and never reported this" : $"host '{host}' has not reported this yet");
    }

    private static ProblemDetails NoHost(string host) => new()
    {
        Status = 404,
        Title = "Not found",
        Detail = $"no host named '{(host.Length > 63 ? host[..63] + "…" : host)}' has reported to this dashboard",
    };
}

public sealed record RegisterHostRequest(string? Name);

public sealed record RegisteredHostResponse(HostRecord Host, string Token, string AgentCommand);

public sealed record HostFirewallResponse(DateTimeOffset? ReadAt, Dashboard.Core.Topology.FirewallBackend Backend, DockerLayout Layout, RulesetDto Ruleset);
