namespace Dashboard.Web.Identity;

/// <summary>
/// Headers on every response: a content security policy with only what Blazor Server and MudBlazor need (own scripts,
/// inline styles for MudBlazor's style attributes, the circuit's WebSocket to this origin), no framing (the approve
/// button cannot be clickjacked), no MIME sniffing, and no referrer beyond this origin.
/// </summary>
public sealed class SecurityHeaders(RequestDelegate next)
{
    public const string Policy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'";

    public Task InvokeAsync(HttpContext context)
    {
        // The API's interactive page (Scalar) starts with an inline script: that one script, by a nonce of this response.
        string? nonce = null;
        if (context.Request.Path.StartsWithSegments(Api.OpenApiSetup.DocsPath, StringComparison.OrdinalIgnoreCase))
        {
            nonce = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)); // hex: nothing for HTML to escape
            context.Items[Api.OpenApiSetup.NonceItem] = nonce;
        }

        context.Response.OnStarting(() =>
        {
            var h = context.Response.Headers;
            h.ContentSecurityPolicy = nonce is null ? Policy : Policy.Replace("script-src 'self'", $"script-src 'self' 'nonce-{nonce}'", StringComparison.Ordinal);
            h.XContentTypeOptions = "nosniff";
            h.XFrameOptions = "DENY";
            h["Referrer-Policy"] = "same-origin";
            return Task.CompletedTask;
        });
        return next(context);
    }
}
