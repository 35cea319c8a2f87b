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
            var audit = http.RequestServices.GetRequiredService<AuditLog>();
            try
            {
                await http.RequestServices.GetRequiredService<LabAccess>().RequireHostOperatorAsync(actor, http.RequestAborted);
            }
            catch (LabAccessException ex)
            {
                // Refused from the API as from the pages: audited as "<action>-refused", then answered 403 by the handler.
                await audit.WriteAsync(actor, action + "-refused", http.Request.Path, $"{http.Request.Method} {http.Request.Path}: {ex.Message}", succeeded: false, ct: CancellationToken.None);
                throw;
            }

            var result = await next(context);
            await audit.WriteAsync(actor, action, http.Request.Path, $"{http.Request.Method} {http.Request.Path} → {http.Response.StatusCode}", ct: CancellationToken.None);
            return result;
        });
}
