using System.Security.Claims;

namespace Dashboard.App.Access;

/// <summary>Who is acting: a signed-in user (cookie or API token), or the dashboard itself for expiry and reconciliation.</summary>
public sealed record Actor(string? UserId, string Name, bool IsAdministrator, string? RemoteAddress = null)
{
    public const string AdministratorClaim = "netlab:administrator";

    public static Actor System { get; } = new(null, "system", false);

    public bool IsSystem => UserId is null;

    /// <summary>The actor behind a principal; throws when it is not signed in (every route requires sign-in, so this is a bug).</summary>
    public static Actor From(ClaimsPrincipal principal, string? remoteAddress = null)
    {
        var id = principal.FindFirstValue(ClaimTypes.NameIdentifier);
        if (principal.Identity?.IsAuthenticated != true || id is null)
        {
            throw new LabAccessException(AccessDenial.SignInRequired, "sign in first");
        }

        return new Actor(id, principal.Identity.Name ?? id, principal.HasClaim(AdministratorClaim, "true"), remoteAddress);
    }
}
