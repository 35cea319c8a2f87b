using System.Security.Claims;
using System.Text.Encodings.Web;
using Dashboard.App.Audit;
using Dashboard.App.Hosts;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Dashboard.Web.Identity;

/// <summary>
/// The "AgentToken" scheme, for <c>/hubs/agent</c> only: <c>Authorization: Bearer nla_…</c>. The principal is the host
/// the token was issued for (claim <see cref="HostClaim"/>), not a person: it can call nothing but the agent hub.
/// A refused token is audited (at most once a minute per remote address, with the count of those left out).
/// </summary>
public sealed class AgentTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    HostRegistry hosts,
    AuditLog audit) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "AgentToken";

    public const string HostClaim = "netlab:agent-host";

    private static readonly Dictionary<string, (DateTimeOffset At, int LeftOut)> Refusals = new();

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

    private async Task RefusedAsync(string why)
    {
        var address = Context.Connection.RemoteIpAddress?.ToString() ?? "unix socket";
        var now = DateTimeOffset.UtcNow;
        int? leftOut = null;
        lock (Refusals)
        {
            if (!Refusals.TryGetValue(address, out var e) || now - e.At >= TimeSpan.FromMinutes(1))
            {
                leftOut = e.LeftOut;
                Refusals[address] = (now, 0);
            }
            else
            {
                Refusals[address] = (e.At, e.LeftOut + 1);
            }

            if (Refusals.Count > 10_000)
            {
                Refusals.Clear(); // bounded: with that many addresses at once, only the throttling is lost
            }
        }

        if (leftOut is { } n)
        {
            var more = n > 0 ? $" ({n} more refusals from this address in the minute before were not written)" : "";
            await audit.WriteAsync(new Actor(null, "agent", false, address), "agent.refused", Request.Path, why + more, succeeded: false).ConfigureAwait(false);
        }
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        return Task.CompletedTask;
    }
}
