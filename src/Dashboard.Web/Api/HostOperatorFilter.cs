using Dashboard.Web.Audit;
using Dashboard.Web.Identity;
using Dashboard.Web.Labs;

namespace Dashboard.Web.Api;

/// <summary>Host-changing routes (captures, traces, verifying pings) need the Operator role in at least one lab; each call is audited, refusals too.</summary>
public static class HostOperatorFilter
{
    public static RouteHandlerBuilder RequireHostOperator(this RouteHandlerBuilder builder, string action) =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var actor = Actor.From(http);
            // A refusal is audited by LabAccess and answered 403 by the exception handler.
            await http.RequestServices.GetRequiredService<LabAccess>().RequireHostOperatorAsync(actor, action, http.Request.Path, http.RequestAborted);
            var result = await next(context);
            await http.RequestServices.GetRequiredService<AuditLog>().WriteAsync(actor, action, http.Request.Path, $"{http.Request.Method} {http.Request.Path} → {http.Response.StatusCode}", ct: CancellationToken.None);
            return result;
        });
}
