namespace Dashboard.Web.Identity;

/// <summary>
/// Refuses cross-site requests that ride on a browser's cookie. Chosen over antiforgery tokens for the API because
/// scripts use bearer tokens (never sent by a browser on its own) and the pages call the API in process, so only
/// cookie-authenticated calls can be forged:
/// <list type="bullet">
/// <item>a state-changing <c>/api</c> or <c>/account</c> request (POST, PUT, PATCH, DELETE) authenticated by the cookie
/// must come with an <c>Origin</c> (or, where a browser sends none, <c>Referer</c>) of this very host; SameSite=Strict
/// alone lets any page on the same site (another port of 127.0.0.1) through;</item>
/// <item><c>/hubs/*</c> refuses a foreign <c>Origin</c> on negotiate and on the WebSocket upgrade, whatever the
/// credentials (programs that send no Origin, such as the Node client, are not browsers and pass).</item>
/// </list>
/// Extra origins (a reverse proxy's public name) come from <c>Auth:AllowedOrigins</c>.
/// </summary>
public sealed class CrossSiteGuard(RequestDelegate next, IConfiguration configuration, ILogger<CrossSiteGuard> logger)
{
    private readonly string[] _extra = configuration.GetSection("Auth:AllowedOrigins").Get<string[]>() ?? [];

    public async Task InvokeAsync(HttpContext context)
    {
        var path = context.Request.Path;
        var origin = context.Request.Headers.Origin.ToString();
        if (path.StartsWithSegments("/hubs") && origin.Length > 0 && !IsOwn(context, origin))
        {
            await RefuseAsync(context, $"a connection from {Cut(origin)} (another site) is refused");
            return;
        }

        if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method) && !HttpMethods.IsOptions(context.Request.Method)
            && (path.StartsWithSegments("/api") || path.StartsWithSegments("/account/logout"))
            && context.User.Identity?.IsAuthenticated == true && ApiTokenAuthenticationHandler.TokenOf(context.Request) is null)
        {
            var from = origin.Length > 0 ? origin : context.Request.Headers.Referer.ToString();
            if (from.Length == 0 || !IsOwn(context, from))
            {
                await RefuseAsync(context, from.Length == 0
                    ? "a state-changing call signed in by cookie must say where it comes from (Origin); scripts use an API token instead"
                    : $"a state-changing call from {Cut(from)} (another site) is refused; scripts use an API token instead");
                return;
            }
        }

        await next(context);
    }

    private bool IsOwn(HttpContext context, string originOrReferer)
    {
        if (!Uri.TryCreate(originOrReferer, UriKind.Absolute, out var uri))
        {
            return false;
        }

        var authority = uri.IsDefaultPort ? uri.Host : $"{uri.Host}:{uri.Port}";
        return string.Equals(authority, context.Request.Host.Value, StringComparison.OrdinalIgnoreCase)
            || _extra.Any(e => string.Equals(e.TrimEnd('/'), $"{uri.Scheme}://{authority}", StringComparison.OrdinalIgnoreCase));
    }

    private async Task RefuseAsync(HttpContext context, string why)
    {
        logger.LogWarning("cross-site request refused: {Method} {Path}: {Why}", context.Request.Method, context.Request.Path, why);
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        await Results.Problem(statusCode: 403, title: "Cross-site request refused", detail: why).ExecuteAsync(context);
    }

    private static string Cut(string s) => s.Length > 80 ? s[..80] + "…" : s;
}
