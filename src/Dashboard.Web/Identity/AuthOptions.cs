namespace Dashboard.Web.Identity;

/// <summary>Configuration section "Auth" (environment: <c>Auth__AdminPassword</c> and so on).</summary>
public sealed class AuthOptions
{
    public const string Section = "Auth";

    /// <summary>User name of the administrator created at first start from <see cref="AdminPassword"/>.</summary>
    public string AdminUser { get; set; } = "admin";

    /// <summary>For unattended installs: when the database has no user yet, the administrator is created with this password.</summary>
    public string? AdminPassword { get; set; }

    /// <summary>For unattended installs: an API token (nlt_ and at least 32 more characters) registered for that administrator.</summary>
    public string? AdminToken { get; set; }

    /// <summary>Sign-in cookie lifetime (sliding).</summary>
    public TimeSpan CookieLifetime { get; set; } = TimeSpan.FromHours(12);

    /// <summary>How often a cookie's security stamp is checked against the database: a password change, reset or lock ends other sessions within this.</summary>
    public TimeSpan SessionRevalidation { get; set; } = TimeSpan.FromMinutes(1);
}
