using Dashboard.Host.Capture;

namespace Dashboard.Web.Api;

// The wire shapes of CaptureApi (JSON requests and responses): records only, no behaviour beyond building them.

public sealed record StartCaptureRequest(string? Interface, string? Filter, int? SnapLength, long? PacketLimit, double? TimeLimitSeconds, long? ByteLimit = null);

public sealed record CaptureDto(string Id, string Interface, string? Filter, DateTimeOffset StartedAt, DateTimeOffset? EndedAt, CaptureEndReason EndReason, string? EndMessage, CaptureStats Stats,
    string Owner, int? LabId, Guid? RunId, long? PacketLimit, double? TimeLimitSeconds, long? ByteLimit)
{
    public static CaptureDto From(ICaptureSession s) => new(s.Id, s.Request.Interface, s.Request.Filter, s.StartedAt, s.EndedAt, s.EndReason, s.EndMessage, s.Stats,
        s.Request.OwnerOrSystem.UserName, s.Request.Owner?.LabId, s.Request.Owner?.RunId, s.Request.PacketLimit, s.Request.TimeLimit?.TotalSeconds, s.Request.ByteLimit);
}
