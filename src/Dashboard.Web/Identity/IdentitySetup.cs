using Dashboard.Data;
using Dashboard.Data.Entities;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.AspNetCore.Components.Server;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Dashboard.Web.Identity;

/// <summary>
/// Sign-in for the whole app: ASP.NET Core Identity over the dashboard's database (password policy, lockout), a cookie for
/// people and API tokens for scripts, and a fallback policy so that every page, API route and hub needs a signed-in user
/// unless it says otherwise (sign-in, first-start set-up, static files).
/// </summary>
public static class IdentitySetup
{
    public const string PolicyScheme = "netlab";

    /// <summary>The authorization policy of <c>/metrics</c>: a metrics-scoped API token.</summary>
    public const string MetricsPolicy = "metrics";

    public static IServiceCollection AddDashboardIdentity(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<AuthOptions>().Bind(configuration.GetSection(AuthOptions.Section));
        services.AddCascadingAuthenticationState();
        services.AddScoped<AuthenticationStateProvider, RevalidatingIdentityStateProvider>();

        services.AddAuthentication(o =>
            {
                o.DefaultScheme = PolicyScheme;
                o.DefaultChallengeScheme = PolicyScheme;
                o.DefaultSignInScheme = IdentityConstants.ApplicationScheme;
            })
            .AddPolicyScheme(PolicyScheme, "cookie, API token or agent token", o => o.ForwardDefaultSelector = http =>
                http.Request.Path.StartsWithSegments(Dashboard.Host.Agents.AgentProtocol.HubPath) ? AgentTokenAuthenticationHandler.SchemeName
                : ApiTokenAuthenticationHandler.TokenOf(http.Request) is not null ? ApiTokenAuthenticationHandler.SchemeName : IdentityConstants.ApplicationScheme)
            .AddScheme<AuthenticationSchemeOptions, ApiTokenAuthenticationHandler>(ApiTokenAuthenticationHandler.SchemeName, null)
            .AddScheme<AuthenticationSchemeOptions, AgentTokenAuthenticationHandler>(AgentTokenAuthenticationHandler.SchemeName, null)
            .AddIdentityCookies();

        services.AddOptions<Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationOptions>(IdentityConstants.ApplicationScheme)
            .Configure<IOptions<AuthOptions>>((o, auth) =>
            {
                o.LoginPath = "/account/login";
                o.AccessDeniedPath = "/account/login";
                o.ExpireTimeSpan = auth.Value.CookieLifetime;
                o.SlidingExpiration = true;
                o.Cookie.Name = "netlab.auth";
                o.Cookie.HttpOnly = true;
                o.Cookie.SameSite = SameSiteMode.Strict;
                o.Events.OnRedirectToLogin = c => ApiAwareAsync(c.HttpContext, c.RedirectUri, StatusCodes.Status401Unauthorized);
                o.Events.OnRedirectToAccessDenied = c => ApiAwareAsync(c.HttpContext, c.RedirectUri, StatusCodes.Status403Forbidden);
            });

        services.AddIdentityCore<DashboardUser>(o =>
            {
                o.Password.RequiredLength = 10;
                o.Password.RequireDigit = true;
                o.Password.RequireLowercase = true;
                o.Password.RequireUppercase = false;
                o.Password.RequireNonAlphanumeric = false;
                o.Password.RequiredUniqueChars = 4;
                o.Lockout.AllowedForNewUsers = true;
                o.Lockout.MaxFailedAccessAttempts = 5;
                o.Lockout.DefaultLockoutTimeSpan = TimeSpan.FromMinutes(5);
                o.User.AllowedUserNameCharacters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._@";
                o.User.RequireUniqueEmail = false;
                o.SignIn.RequireConfirmedAccount = false;
            })
            .AddEntityFrameworkStores<DashboardDbContext>()
            .AddSignInManager()
            .AddClaimsPrincipalFactory<DashboardClaimsFactory>()
            .AddDefaultTokenProviders();

        // A password change, reset or lock ends other cookie sessions within a minute (Identity's default is 30).
        services.AddOptions<SecurityStampValidatorOptions>().Configure<IOptions<AuthOptions>>((o, auth) => o.ValidationInterval = auth.Value.SessionRevalidation);
        services.AddAuthorization(o =>
        {
            o.FallbackPolicy = new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build();

            // /metrics: a token of the metrics scope only (a scraper), not a person's session or API token.
            // Its owner must still be a site administrator: the token reads every host's rules.
            o.AddPolicy(MetricsPolicy, p => p.AddAuthenticationSchemes(ApiTokenAuthenticationHandler.SchemeName).RequireClaim(TokenScopes.Claim, TokenScopes.Metrics).RequireClaim(Actor.AdministratorClaim, "true"));
        });
        services.AddSingleton<ApiTokenService>();
        services.AddSingleton<RefusalThrottle>();
        services.AddScoped<UserAdmin>();
        services.AddScoped<Dashboard.Web.Components.LabSession>();
        services.AddScoped<Dashboard.Web.Components.HostSession>();
        return services;
    }

    /// <summary>Sends every request to <c>/setup</c> while the database has no user (the one-time "create the administrator" page).</summary>
    public static IApplicationBuilder UseFirstStartSetup(this IApplicationBuilder app)
    {
        var done = 0;
        return app.Use(async (http, next) =>
        {
            if (Volatile.Read(ref done) == 0)
            {
                var path = http.Request.Path;
                var exempt = path.StartsWithSegments("/setup") || path.StartsWithSegments("/_framework") || path.StartsWithSegments("/_content")
                    || path.StartsWithSegments("/css") || path.StartsWithSegments("/img") || path.StartsWithSegments("/js") || Path.HasExtension(path.Value);
                if (!exempt)
                {
                    await using var scope = http.RequestServices.CreateAsyncScope();
                    if (await scope.ServiceProvider.GetRequiredService<UserAdmin>().AnyUserAsync(http.RequestAborted))
                    {
                        Volatile.Write(ref done, 1);
                    }
                    else if (path.StartsWithSegments("/api") || path.StartsWithSegments("/hubs"))
                    {
                        http.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                        await Results.Problem(statusCode: 503, title: "Not set up", detail: "no administrator exists yet: open /setup in a browser, or start with Auth__AdminPassword set").ExecuteAsync(http);
                        return;
                    }
                    else
                    {
                        http.Response.Redirect("/setup");
                        return;
                    }
                }
            }

            await next(http);
        });
    }

    /// <summary>Unattended installs: with no user yet and <c>Auth:AdminPassword</c> set, creates the administrator (and registers <c>Auth:AdminToken</c> for it).</summary>
    public static async Task EnsureConfiguredAdministratorAsync(this IServiceProvider services, CancellationToken ct = default)
    {
        var options = services.GetRequiredService<IOptions<AuthOptions>>().Value;
        await using var scope = services.CreateAsyncScope();
        var admin = scope.ServiceProvider.GetRequiredService<UserAdmin>();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<DashboardUser>>();
        if (!string.IsNullOrEmpty(options.AdminPassword) && !await admin.AnyUserAsync(ct))
        {
            var result = await admin.CreateFirstAdministratorAsync(options.AdminUser, options.AdminPassword, null, "from configuration", ct);
            if (!result.Succeeded)
            {
                throw new InvalidOperationException($"Auth:AdminPassword could not create the administrator '{options.AdminUser}': {string.Join(" ", result.Errors.Select(e => e.Description))}");
            }
        }

        if (!string.IsNullOrEmpty(options.AdminToken) && await users.FindByNameAsync(options.AdminUser) is { } user)
        {
            var db = scope.ServiceProvider.GetRequiredService<DashboardDbContext>();
            var hash = ApiTokenService.Hash(options.AdminToken);
            if (!await db.ApiTokens.AnyAsync(t => t.Hash == hash, ct))
            {
                await scope.ServiceProvider.GetRequiredService<ApiTokenService>().RegisterAsync(new Actor(user.Id, user.UserName!, user.IsAdministrator), "from configuration (Auth:AdminToken)", options.AdminToken, null, ct);
            }
        }
    }

    private static Task ApiAwareAsync(HttpContext http, string redirect, int status)
    {
        // Programs get the status; a person opening the API's docs page is sent to sign in like on any page.
        var path = http.Request.Path;
        if ((path.StartsWithSegments("/api") && !path.StartsWithSegments(Api.OpenApiSetup.DocsPath)) || path.StartsWithSegments("/hubs") || path.StartsWithSegments("/openapi"))
        {
            http.Response.StatusCode = status;
            return Task.CompletedTask;
        }

        http.Response.Redirect(redirect);
        return Task.CompletedTask;
    }
}

/// <summary>Checks a connected circuit's user every minute: a locked or deleted account, or a changed security stamp, ends the session.</summary>
public sealed class RevalidatingIdentityStateProvider(ILoggerFactory loggerFactory, IServiceScopeFactory scopes, IOptions<IdentityOptions> options, IHostApplicationLifetime lifetime)
    : RevalidatingServerAuthenticationStateProvider(loggerFactory)
{
    protected override TimeSpan RevalidationInterval => TimeSpan.FromMinutes(1);

    protected override async Task<bool> ValidateAuthenticationStateAsync(AuthenticationState authenticationState, CancellationToken cancellationToken)
    {
        try
        {
            return await ValidateAsync(authenticationState);
        }
        catch (ObjectDisposedException) when (cancellationToken.IsCancellationRequested || Stopping)
        {
            // The application is stopping and its services are gone: the circuit ends with it, nothing to check.
            return false;
        }
    }

    private bool Stopping => lifetime.ApplicationStopping.IsCancellationRequested;

    private async Task<bool> ValidateAsync(AuthenticationState authenticationState)
    {
        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<DashboardUser>>();
        var user = await users.GetUserAsync(authenticationState.User);
        if (user is null || await users.IsLockedOutAsync(user))
        {
            return false;
        }

        if (!users.SupportsUserSecurityStamp)
        {
            return true;
        }

        var stamp = authenticationState.User.FindFirst(options.Value.ClaimsIdentity.SecurityStampClaimType)?.Value;
        return stamp == await users.GetSecurityStampAsync(user);
    }
}
