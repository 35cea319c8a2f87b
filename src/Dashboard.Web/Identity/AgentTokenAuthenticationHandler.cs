using System.Security.Claims;
using System.Text.Encodings.Web;
using Dashboard.App.Hosts;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Dashboard.Web.Identity;

/// <summary>
/// The "AgentToken" scheme, for <c>/hubs/agent</c> only: <c>Authorization: Bearer nla_…</c>. The principal is the host
/// the token was issued for (claim <see cref="HostClaim"/>), not a person: it can call nothing but the agent hub.
/// A refused token is audited (<see cref="RefusalThrottle"/>: at most once a minute per remote address, with the count of those left out).
/// </summary>
public sealed class AgentTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    HostRegistry hosts,
    RefusalThrottle throttle) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "AgentToken";

    public const string HostClaim = "netlab:agent-host";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            await RefusedAsync("no agent token (Authorization: Bearer nla_…)").ConfigureAwait(false);
            return AuthenticateResult.Fail("an agent token is required");
        }

        var host = await hosts.AuthenticateAsync(header["Bearer ".Length..].Trim(), Context.RequestAborted).ConfigureAwait(false);
        if (host is null)
        {
            await RefusedAsync("the agent token is unknown, malformed or revoked").ConfigureAwait(false);
            return AuthenticateResult.Fail("the agent token is unknown, malformed or revoked");
        }

        var identity = new ClaimsIdentity([new Claim(HostClaim, host), new Claim(ClaimTypes.Name, "agent:" + host)], SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    private Task RefusedAsync(string why)
    {
        var address = Context.Connection.RemoteIpAddress?.ToString() ?? "unix socket";
        return throttle.RefusedAsync(address, new Actor(null, "agent", false, address), "agent.refused", Request.Path, why);
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        return Task.CompletedTask;
    }
}
