namespace Dashboard.Host;

/// <summary>
/// Who a capture or trace belongs to: the user who started it, and for a run's the run and its lab. Listing, pcaps,
/// live batches and stopping follow it (see the web layer's session access).
/// </summary>
public sealed record SessionOwner(string? UserId, string UserName, int? LabId = null, Guid? RunId = null)
{
    /// <summary>Started by the dashboard itself (tests, benchmarks): visible to site administrators only.</summary>
    public static SessionOwner System { get; } = new(null, "system");
}
