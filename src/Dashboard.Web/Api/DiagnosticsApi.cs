using Dashboard.App.Live;

namespace Dashboard.Web.Api;

/// <summary><c>GET /api/diagnostics</c> (site administrators): the figures the circuits benchmark and an operator watching for leaks read.</summary>
public static class DiagnosticsApi
{
    public static IEndpointRouteBuilder MapDiagnosticsApi(this IEndpointRouteBuilder app)
    {
        // ?collect=true runs a full blocking collection first (what "memory back to the baseline" needs); rate-limited.
        app.MapGet("/api/diagnostics", async (bool? collect, HttpContext http, LiveFeed feed, Dashboard.App.Audit.AuditLog audit, CancellationToken ct) =>
        {
            var actor = Actor.From(http);
            if (!actor.IsAdministrator)
            {
                var refused = new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, "diagnostics are for site administrators");
                await audit.WriteAsync(actor, "diagnostics.read-refused", http.Request.Path, refused.Message, succeeded: false, ct: CancellationToken.None);
                throw refused;
            }

            if (collect == true)
            {
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
                GC.WaitForPendingFinalizers();
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            }

            using var self = System.Diagnostics.Process.GetCurrentProcess();
            return TypedResults.Ok(new DiagnosticsResponse(Dashboard.Web.Components.CircuitCounter.Open, feed.SubscriberCount, GC.GetTotalMemory(false), self.WorkingSet64, GC.CollectionCount(2)));
        }).WithTags("Host").RequireRateLimiting(RateLimits.Expensive);

        // Which replica answered, and which holds the singleton duties (replicas share them on PostgreSQL); site administrators.
        app.MapGet("/api/replica", async (HttpContext http, Dashboard.App.Replicas.IDutyLease lease, IServiceProvider services, Dashboard.App.Audit.AuditLog audit, CancellationToken ct) =>
        {
            var actor = Actor.From(http);
            if (!actor.IsAdministrator)
            {
                var refused = new LabAccessException(Dashboard.App.Access.AccessDenial.Forbidden, "replica details are for site administrators");
                await audit.WriteAsync(actor, "replica.read-refused", http.Request.Path, refused.Message, succeeded: false, ct: CancellationToken.None);
                throw refused;
            }

            var holder = lease.HeldSince is not null ? lease.Replica
                : services.GetService<Dashboard.App.Replicas.PostgresDutyLease>() is { } pg ? await pg.HolderAsync(ct) : null;
            return TypedResults.Ok(new ReplicaResponse(lease.Replica, lease.Shared, lease.HeldSince is not null, lease.HeldSince, holder));
        }).WithTags("Host");
        return app;
    }
}

/// <summary>This replica (<c>Replicas:Name</c>), whether replicas share the duties, whether it holds them and since when, and which replica does.</summary>
public sealed record ReplicaResponse(string Replica, bool Shared, bool HoldsDuties, DateTimeOffset? HeldSince, string? Holder);
