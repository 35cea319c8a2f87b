using Dashboard.Data.Entities;
using Dashboard.App.Audit;
using Dashboard.App.Labs;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;

namespace Dashboard.Web.Api;

/// <summary>
/// The caller (<c>/api/me</c>), their API tokens (<c>/api/tokens</c>), labs and members (<c>/api/labs</c>), accounts for
/// site administrators (<c>/api/users</c>), the audit log (<c>/api/audit</c>, <c>/api/audit.csv</c>), and sign-out
/// (<c>POST /account/logout</c>, a form post from the page).
/// </summary>
public static class AccountApi
{
    public static IEndpointRouteBuilder MapAccountApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/me", async (HttpContext http, LabAccess access, CancellationToken ct) =>
        {
            var actor = Actor.From(http);
            return TypedResults.Ok(new MeResponse(actor.UserId!, actor.Name, actor.IsAdministrator, await access.LabsOfAsync(actor, ct)));
        }).WithTags("Account");

        var tokens = app.MapGroup("/api/tokens").WithTags("Account").DisableAntiforgery();
        tokens.MapGet("/", async (HttpContext http, ApiTokenService service, CancellationToken ct) => TypedResults.Ok(await service.ListAsync(Actor.From(http), ct)));
        tokens.MapPost("/", async Task<Results<Created<CreatedToken>, ProblemHttpResult>> (CreateTokenRequest body, HttpContext http, ApiTokenService service, CancellationToken ct) =>
        {
            try
            {
                var t = await service.CreateAsync(Actor.From(http), body.Name ?? "", body.ExpiresAt, ct, body.Scope);
                return TypedResults.Created($"/api/tokens/{t.Info.Id}", t);
            }
            catch (ArgumentException ex)
            {
                return TypedResults.Problem(statusCode: 400, title: "Token not created", detail: ex.Message);
            }
            catch (UnauthorizedAccessException ex)
            {
                return TypedResults.Problem(statusCode: 403, title: "Token not created", detail: ex.Message);
            }
        });
        tokens.MapDelete("/{id:int}", async Task<Results<NoContent, NotFound>> (int id, HttpContext http, ApiTokenService service, CancellationToken ct) =>
            await service.RevokeAsync(Actor.From(http), id, ct) ? TypedResults.NoContent() : TypedResults.NotFound());

        var labs = app.MapGroup("/api/labs").WithTags("Labs").DisableAntiforgery();
        labs.MapGet("/", async (HttpContext http, LabAccess access, CancellationToken ct) => TypedResults.Ok(await access.LabsOfAsync(Actor.From(http), ct)));
        labs.MapPost("/", async Task<Results<Created<LabMembership>, ProblemHttpResult>> (CreateLabRequest body, HttpContext http, LabAccess access, CancellationToken ct) =>
        {
            var actor = Actor.From(http);
            try
            {
                var id = await access.CreateLabAsync(actor, body.Name ?? "", body.Description, ct);
                return TypedResults.Created($"/api/labs/{id}", (await access.LabsOfAsync(actor, ct)).Single(l => l.LabId == id));
            }
            catch (ArgumentException ex)
            {
                return TypedResults.Problem(statusCode: 400, title: "Lab not created", detail: ex.Message);
            }
        });
        labs.MapGet("/{id:int}/members", async (int id, HttpContext http, LabAccess access, CancellationToken ct) => TypedResults.Ok(await access.MembersAsync(Actor.From(http), id, ct)));
        labs.MapPut("/{id:int}/members", async Task<Results<NoContent, ProblemHttpResult>> (int id, SetMemberRequest body, HttpContext http, LabAccess access, CancellationToken ct) =>
            await Attempt(() => access.SetMemberAsync(Actor.From(http), id, body.UserName ?? "", body.Role, ct), "Member not changed"));
        labs.MapDelete("/{id:int}/members/{userId}", async Task<Results<NoContent, ProblemHttpResult>> (int id, string userId, HttpContext http, LabAccess access, CancellationToken ct) =>
            await Attempt(() => access.RemoveMemberAsync(Actor.From(http), id, userId, ct), "Member not removed"));
        labs.MapPut("/{id:int}/settings", async Task<Results<NoContent, ProblemHttpResult>> (int id, LabSettingsRequest body, HttpContext http, LabAccess access, CancellationToken ct) =>
            await Attempt(() => access.SetSelfApprovalAsync(Actor.From(http), id, body.AllowSelfApprovalWhenAlone, ct), "Settings not changed"));
        labs.MapPut("/{id:int}/hosts", async Task<Results<NoContent, ProblemHttpResult>> (int id, LabHostsRequest body, HttpContext http, LabAccess access, Dashboard.App.Hosts.HostDirectory directory, CancellationToken ct) =>
            await Attempt(() => access.SetHostsAsync(Actor.From(http), id, body.Hosts, directory.Local.Host, ct), "Hosts not changed"));

        var users = app.MapGroup("/api/users").WithTags("Account").DisableAntiforgery();
        users.MapGet("/", async (HttpContext http, UserAdmin admin, CancellationToken ct) => TypedResults.Ok(await admin.ListAsync(Actor.From(http), ct)));
        users.MapPost("/", async Task<Results<Created, ProblemHttpResult>> (CreateUserRequest body, HttpContext http, UserAdmin admin, CancellationToken ct) =>
        {
            var result = await admin.CreateUserAsync(Actor.From(http), body.UserName ?? "", body.Password ?? "", body.Administrator, ct);
            return result.Succeeded
                ? TypedResults.Created()
                : TypedResults.Problem(statusCode: 400, title: "Account not created", detail: string.Join(" ", result.Errors.Select(e => e.Description)));
        });
        users.MapPut("/{id}/password", async Task<Results<NoContent, ProblemHttpResult>> (string id, ResetPasswordRequest body, HttpContext http, UserAdmin admin, CancellationToken ct) =>
        {
            try
            {
                var result = await admin.ResetPasswordAsync(Actor.From(http), id, body.Password ?? "", ct);
                return result.Succeeded ? TypedResults.NoContent() : TypedResults.Problem(statusCode: 400, title: "Password not set", detail: string.Join(" ", result.Errors.Select(e => e.Description)));
            }
            catch (ArgumentException ex)
            {
                return TypedResults.Problem(statusCode: 404, title: "Password not set", detail: ex.Message);
            }
        });
        users.MapPut("/{id}/locked", async Task<Results<NoContent, ProblemHttpResult>> (string id, bool locked, HttpContext http, UserAdmin admin, CancellationToken ct) =>
            await Attempt(() => admin.SetLockedAsync(Actor.From(http), id, locked, ct), "Account not changed"));

        app.MapGet("/api/audit", async ([AsParameters] AuditQuery q, HttpContext http, AuditLog audit, CancellationToken ct) =>
            TypedResults.Ok(await audit.QueryAsync(Actor.From(http), q.ToFilter(), ct))).WithTags("Audit");
        app.MapGet("/api/audit.csv", async ([AsParameters] AuditQuery q, HttpContext http, AuditLog audit, CancellationToken ct) =>
        {
            http.Response.ContentType = "text/csv; charset=utf-8";
            http.Response.Headers.ContentDisposition = $"attachment; filename=\"audit-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}.csv\"";
            await audit.WriteCsvAsync(Actor.From(http), q.ToFilter(), http.Response.Body, ct);
        }).WithTags("Audit");

        app.MapPost("/account/logout", async (HttpContext http, SignInManager<DashboardUser> signIn, AuditLog audit) =>
        {
            if (http.User.Identity?.IsAuthenticated == true)
            {
                await audit.WriteAsync(Actor.From(http), "sign-out", $"user {http.User.Identity.Name}", "signed out");
            }

            await signIn.SignOutAsync();
            return TypedResults.LocalRedirect("~/account/login");
        });
        return app;
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Attempt(Func<Task> action, string title)
    {
        try
        {
            await action();
            return TypedResults.NoContent();
        }
        catch (ArgumentException ex)
        {
            return TypedResults.Problem(statusCode: 400, title: title, detail: ex.Message);
        }
    }
}
