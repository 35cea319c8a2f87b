using System.Security.Claims;
using Dashboard.Data.Entities;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace Dashboard.Web.Identity;

/// <summary>Adds the administrator claim to Identity's principal.</summary>
public sealed class DashboardClaimsFactory(UserManager<DashboardUser> users, IOptions<IdentityOptions> options) : UserClaimsPrincipalFactory<DashboardUser>(users, options)
{
    protected override async Task<ClaimsIdentity> GenerateClaimsAsync(DashboardUser user)
    {
        var identity = await base.GenerateClaimsAsync(user).ConfigureAwait(false);
        if (user.IsAdministrator)
        {
            identity.AddClaim(new Claim(Actor.AdministratorClaim, "true"));
        }

        return identity;
    }
}
