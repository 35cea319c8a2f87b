using Dashboard.Core.Firewall;
using Dashboard.Host.Netfilter;

namespace Dashboard.Web.Api;

// The wire shapes of TraceApi (JSON requests and responses): records only, no behaviour beyond building them.

public sealed record TraceAvailability(bool Available, string? Reason);

public sealed record StartTraceRequest(string? Source, string? Destination, string? Protocol, IReadOnlyList<string>? ReplyDestinations, double? TimeLimitSeconds);

public sealed record TraceDto(string Id, string Source, string Destination, string Protocol, IReadOnlyList<string> ReplyDestinations, string Tag, DateTimeOffset StartedAt, DateTimeOffset? EndedAt, string? EndMessage, IReadOnlyList<RuleCommandResult> Commands, IReadOnlyList<TracedPacket>? Packets)
{
    public static TraceDto From(ITraceSession s, bool includePackets) => new(
        s.Id, s.Request.Source, s.Request.Destination, s.Request.Protocol, s.Request.ReplyDestinations ?? [], s.Tag, s.StartedAt, s.EndedAt, s.EndMessage, [.. s.Commands], includePackets ? s.Packets : null);
}
