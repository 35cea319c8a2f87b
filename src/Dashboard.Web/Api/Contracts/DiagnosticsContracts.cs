
namespace Dashboard.Web.Api;

// The wire shapes of DiagnosticsApi (JSON requests and responses): records only, no behaviour beyond building them.

/// <summary>What this process holds for its viewers: circuits, live subscriptions and managed memory.</summary>
public sealed record DiagnosticsResponse(int Circuits, int LiveSubscribers, long ManagedHeapBytes, long WorkingSetBytes, int Gen2Collections);
