using System.Globalization;
using Dashboard.App.Firewall;
using Dashboard.App.Hosts;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Dashboard.Web.Api;

/// <summary>
/// A host's firewall history (any signed-in user, like the firewall itself): <c>GET /api/hosts/{host}/firewall/history</c>
/// lists the recorded changes, newest first, with filters (<c>chain</c> as <c>table/chain</c> or a chain name, <c>cause</c>
/// Docker, Dashboard, Outside or Unobserved, <c>from</c>, <c>to</c> as ISO 8601, <c>page</c>, <c>pageSize</c> up to 500);
/// <c>GET …/firewall/history/diff?from=&amp;to=</c> the ruleset's differences between two moments, counters aside.
/// </summary>
public static class FirewallHistoryApi
{
    public static IEndpointRouteBuilder MapFirewallHistoryApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/hosts/{host}/firewall/history").WithTags("Firewall history");
        api.MapGet("/", async Task<Results<Ok<FirewallHistoryList>, ProblemHttpResult>> (string host, string? chain, string? cause, string? from, string? to, int? page, int? pageSize, HostDirectory directory, FirewallHistoryQueries queries, CancellationToken ct) =>
        {
            if (await CheckAsync(host, chain, cause, directory, queries, ct) is { } bad)
            {
                return bad;
            }

            if (!TryMoment(from, "from", out var f, out var badFrom) || !TryMoment(to, "to", out var t, out badFrom))
            {
                return badFrom!;
            }

            if (page is < 1 || pageSize is < 1 or > 500)
            {
                return Bad("'page' is 1 or more and 'pageSize' 1 to 500");
            }

            return TypedResults.Ok(await queries.ListAsync(host, new FirewallHistoryFilter(chain, cause, f, t, page ?? 1, pageSize ?? 100), ct));
        });
        api.MapGet("/diff", async Task<Results<Ok<FirewallDiff>, ProblemHttpResult>> (string host, string? from, string? to, HostDirectory directory, FirewallHistoryQueries queries, CancellationToken ct) =>
        {
            if (await CheckAsync(host, null, null, directory, queries, ct) is { } bad)
            {
                return bad;
            }

            if (string.IsNullOrWhiteSpace(from))
            {
                return Bad("'from' is required: the first moment, ISO 8601 (e.g. 2026-12-06T17:00:00Z)");
            }

            if (!TryMoment(from, "from", out var f, out var badFrom) || !TryMoment(to, "to", out var t, out badFrom))
            {
                return badFrom!;
            }

            try
            {
                return TypedResults.Ok(await queries.DiffAsync(host, f!.Value, t ?? DateTimeOffset.UtcNow, ct));
            }
            catch (FirewallHistoryRangeException ex)
            {
                return Bad(ex.Message);
            }
        }).RequireRateLimiting(Dashboard.Web.Identity.RateLimits.Expensive);
        return app;
    }

    /// <summary>A host nobody reports and the history never saw is a 404; a bad chain or cause a 400 naming it.</summary>
    private static async Task<ProblemHttpResult?> CheckAsync(string host, string? chain, string? cause, HostDirectory directory, FirewallHistoryQueries queries, CancellationToken ct)
    {
        if (directory.FeedOf(host) is null && (!HostRegistry.IsValidName(host) || !await queries.HasHistoryAsync(host, ct)))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not found", detail: directory.NoSuchHost(host));
        }

        if (chain is { Length: > 200 })
        {
            return Bad("'chain' is at most 200 characters (table/chain or a chain name)");
        }

        if (cause is not null && !FirewallHistoryQueries.Causes.Contains(cause))
        {
            return Bad($"'cause' is one of {string.Join(", ", FirewallHistoryQueries.Causes)}");
        }

        return null;
    }

    private static bool TryMoment(string? text, string name, out DateTimeOffset? value, out ProblemHttpResult? bad)
    {
        value = null;
        bad = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return true;
        }

        // ISO 8601 only (a date such as 01/02/2026 means different days in different places); no offset means UTC.
        if (text.Length <= 64 && DateTimeOffset.TryParseExact(text.Trim(), IsoFormats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var v))
        {
            value = v;
            return true;
        }

        bad = Bad($"'{name}' is not a moment: ISO 8601 such as 2026-12-06T17:00:00Z");
        return false;
    }

    private static readonly string[] IsoFormats = ["yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK", "yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mmK", "yyyy-MM-dd"];

    private static ProblemHttpResult Bad(string detail) => TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Bad request", detail: detail);
}
