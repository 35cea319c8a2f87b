using System.Text.Json;
using System.Text.Json.Serialization;
using Dashboard.Core.Experiments;
using Dashboard.Core.Firewall;
using Dashboard.Host.Netfilter;

namespace Dashboard.App.Runs;

/// <summary>
/// A run's "traces" artifact: the packets the kernel traced during the probes (with the request and the rule tag), or
/// why tracing was unavailable. One shape for writing and reading (runs stored before it kept the same JSON names).
/// </summary>
public sealed record TraceArtifact(
    [property: JsonPropertyName("request")] TraceRequest? Request,
    [property: JsonPropertyName("tag")] string? Tag,
    [property: JsonPropertyName("packets")] IReadOnlyList<TracedPacket>? Packets,
    [property: JsonPropertyName("unavailable")] string? Unavailable)
{
    public static TraceArtifact Traced(TraceRequest request, string tag, IReadOnlyList<TracedPacket> packets) => new(request, tag, packets, null);

    public static TraceArtifact NotAvailable(string why) => new(null, null, null, why);

    public string ToJson() => JsonSerializer.Serialize(this, Options);

    /// <summary>The traced packets and, when there are none to show, why ("unavailable: …").</summary>
    public static (IReadOnlyList<TracedPacket> Packets, string? Note) Read(string json)
    {
        var a = JsonSerializer.Deserialize<TraceArtifact>(json, Options);
        return a?.Unavailable is { } why ? ([], "unavailable: " + why) : (a?.Packets ?? [], null);
    }

    private static readonly JsonSerializerOptions Options = new(ScenarioDefinition.Json) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };
}
