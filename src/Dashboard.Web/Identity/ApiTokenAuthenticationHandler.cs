using System.Security.Claims;
using System.Text.Encodings.Web;
using Dashboard.Data.Entities;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace Dashboard.Web.Identity;

/// <summary>
/// The "ApiToken" scheme: <c>Authorization: Bearer nlt_...</c>, or <c>?access_token=</c> on <c>/hubs/</c> (browsers cannot set
/// headers on WebSockets). The principal is the token owner's, made by Identity's own claims factory.
/// </summary>
public sealed class ApiTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiTokenService tokens,
    IUserClaimsPrincipalFactory<DashboardUser> principals) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiToken";

    /// <summary>Where Prometheus scrapes; the only path a metrics-scoped token opens.</summary>
    public const string MetricsPath = "/metrics";

    public static string? TokenOf(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return header["Bearer ".Length..].Trim();
        }

        return request.Path.StartsWithSegments("/hubs") && request.Query["access_token"].ToString() is { Length: > 0 } q ? q : null;
    }

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (TokenOf(Request) is not { } token)
        {
            return AuthenticateResult.NoResult();
        }

        var valid = await tokens.ValidateAsync(token, Context.RequestAborted).ConfigureAwait(false);
        if (valid is null)
        {
            return AuthenticateResult.Fail("the API token is unknown, revoked or expired");
        }

        // A scraper's token reads /metrics and nothing else.
        if (valid.Scope == TokenScopes.Metrics && !Request.Path.Equals(MetricsPath, StringComparison.Ordinal))
        {
            return AuthenticateResult.Fail("this token's scope is metrics: it reads /metrics only");
        }

        var principal = await principals.CreateAsync(valid.User).ConfigureAwait(false);
        var identity = new ClaimsIdentity(principal.Claims, SchemeName, ClaimTypes.Name, ClaimTypes.Role);
        identity.AddClaim(new Claim(TokenScopes.Claim, valid.Scope));
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        return Task.CompletedTask;
    }
}
