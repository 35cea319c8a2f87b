using Microsoft.AspNetCore.Mvc;
using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace Dashboard.Web.Api;

/// <summary>
/// The API described: the built-in OpenAPI document (Microsoft.AspNetCore.OpenApi) at <c>/openapi/v1.json</c> with every
/// mapped route, its parameters, request and response shapes, and refusals as problem details; and Scalar's interactive
/// page at <c>/api/docs</c>. Both for signed-in users only (the fallback policy), like the API itself.
/// </summary>
public static class OpenApiSetup
{
    public const string DocumentPattern = "/openapi/{documentName}.json";
    public const string DocsPath = "/api/docs";

    /// <summary>The key under which <see cref="SecurityHeaders"/> leaves the script nonce of the docs page's policy.</summary>
    public const string NonceItem = "netlab:csp-nonce";

    public static IServiceCollection AddDashboardOpenApi(this IServiceCollection services) => services.AddOpenApi("v1", o =>
    {
        o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new OpenApiInfo
            {
                Title = "Network isolation lab dashboard",
                Version = "v1",
                Description = "Docker hosts' networks, firewall rules with live counters, captures, isolation matrices, experiment runs and approved rule changes. "
                    + "Sign in with a cookie (the web pages) or Authorization: Bearer nlt_... (an API token). Every refusal is problem details.",
            };
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
            document.Components.SecuritySchemes["token"] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "An API token (nlt_...), made on the API tokens page or POST /api/tokens.",
            };
            document.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("token", document)] = [] }];
            return Task.CompletedTask;
        });
        o.AddOperationTransformer(async (operation, context, ct) =>
        {
            // A route value read by a group's filter (the agent host of /api/hosts/{host}/...) and not by the handler is
            // still a path parameter of the operation.
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(context.Description.RelativePath ?? "", "{([^}:?*]+)[^}]*}"))
            {
                var name = m.Groups[1].Value;
                operation.Parameters ??= [];
                if (!operation.Parameters.Any(p => p.In == ParameterLocation.Path && p.Name == name))
                {
                    operation.Parameters.Add(new OpenApiParameter { Name = name, In = ParameterLocation.Path, Required = true, Schema = new OpenApiSchema { Type = JsonSchemaType.String } });
                }
            }

            // Every refusal and failure answers RFC 9457 problem details; the status says which.
            var problem = await context.GetOrCreateSchemaAsync(typeof(ProblemDetails), null, ct).ConfigureAwait(false);
            operation.Responses ??= new OpenApiResponses();
            operation.Responses.TryAdd("default", new OpenApiResponse
            {
                Description = "A refusal or a failure as problem details: 400 bad input (errors per field), 401 not signed in, 403 role, 404 not found or not a member, "
                    + "409 wrong state, 413 too large, 429 too many expensive calls, 503 the host's engine, firewall or agent unavailable.",
                Content = new Dictionary<string, OpenApiMediaType> { ["application/problem+json"] = new() { Schema = problem } },
            });
        });
    });

    public static void MapDashboardOpenApi(this WebApplication app)
    {
        app.MapOpenApi(DocumentPattern).RequireAuthorization();
        app.MapScalarApiReference(DocsPath, (options, http) =>
        {
            options.OpenApiRoutePattern = DocumentPattern;
            options.Title = "Network isolation lab API";
            options.Telemetry = false;
            options.DefaultFonts = false;
            options.Nonce = http.Items[NonceItem] as string;

            // Nothing that talks to Scalar's own services (the policy would refuse it anyway): no AI chat, no toolbar.
            options.ShowDeveloperTools = DeveloperToolsVisibility.Never;
            options.Agent = new ScalarAgentOptions { Disabled = true };
        }).RequireAuthorization();
    }
}
