using Dashboard.App.Audit;
using Dashboard.App.Labs;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Dashboard.Web.Api;

/// <summary>
/// Host-changing routes without a use case of their own (verifying pings) need the Operator role in a lab that may use the host;
/// each call is audited with the status it was answered with: a 4xx is audited as refused, not as done.
/// </summary>
public static class HostOperatorFilter
{
    public static RouteHandlerBuilder RequireHostOperator(this RouteHandlerBuilder builder, string action) =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var actor = Actor.From(http);
            var host = http.GetRouteValue("host") as string ?? http.RequestServices.GetRequiredService<Dashboard.App.Hosts.HostDirectory>().Local.Host;
            // A refusal is audited by LabAccess and answered 403 by the exception handler.
            await http.RequestServices.GetRequiredService<LabAccess>().RequireHostOperatorAsync(actor, action, http.Request.Path, host, http.RequestAborted);
            var audit = http.RequestServices.GetRequiredService<AuditLog>();
            object? result;
            try
            {
                result = await next(context);
            }
            catch (Exception ex)
            {
                await audit.WriteAsync(actor, action + "-failed", http.Request.Path, $"{http.Request.Method} {http.Request.Path}: {ex.GetType().Name}: {ex.Message}", succeeded: false, host: host, ct: CancellationToken.None);
                throw;
            }

            // The response has not been written yet: the status is the result's own (Results<A, B> wraps it).
            var inner = result;
            while (inner is INestedHttpResult nested)
            {
                inner = nested.Result;
            }

            var status = inner is IStatusCodeHttpResult { StatusCode: { } code } ? code : StatusCodes.Status200OK;
            var ok = status < 400;
            await audit.WriteAsync(actor, ok ? action : action + "-refused", http.Request.Path,
                $"{http.Request.Method} {http.Request.Path} → {status}{(inner is ProblemHttpResult { ProblemDetails.Detail: { } d } ? ": " + d : "")}", succeeded: ok, host: host, ct: CancellationToken.None);
            return result;
        });
}
