using System.Text.Json;

namespace Dashboard.Core.Topology;

/// <summary>
/// One interface from <c>ip -j -d link show</c>. <see cref="LinkIndex"/> is the peer's index for a veth (the kernel's
/// <c>iflink</c>) and is only meaningful in the namespace named by <see cref="LinkNetnsId"/>: indexes are per namespace.
/// </summary>
public sealed record IpLink(
    int IfIndex,
    string Name,
    string? Kind,
    string? SlaveKind,
    string? Master,
    int? LinkIndex,
    int? LinkNetnsId,
    string? MacAddress,
    string? OperState,
    int Mtu,
    IReadOnlyList<string> Flags,
    string? BridgePortState)
{
    /// <summary>The interface's addresses with their prefix (<c>172.18.0.1/16</c>), from <c>ip -j addr</c>'s <c>addr_info</c>; empty from <c>ip link</c>.</summary>
    public IReadOnlyList<string> Addresses { get; init; } = [];

    public bool IsBridge => Kind == "bridge";

    public bool IsVeth => Kind == "veth";

    /// <summary>The most addresses kept per interface.</summary>
    public const int MaxAddresses = 64;

    /// <summary>Parses <c>ip -j [-d] link show</c> or <c>ip -j [-d] addr show</c> output (the latter adds the addresses).</summary>
    public static IReadOnlyList<IpLink> ParseJson(string json)
    {
        using var doc = JsonDocument.Parse(json);
        if (doc.RootElement.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException("`ip -j link` output must be a JSON array");
        }

        var links = new List<IpLink>();
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            string? kind = null, slaveKind = null, portState = null;
            if (e.TryGetProperty("linkinfo", out var li))
            {
                kind = Str(li, "info_kind");
                slaveKind = Str(li, "info_slave_kind");
                if (li.TryGetProperty("info_slave_data", out var sd))
                {
                    portState = Str(sd, "state");
                }
            }

            var flags = e.TryGetProperty("flags", out var f) && f.ValueKind == JsonValueKind.Array
                ? f.EnumerateArray().Select(x => x.GetString() ?? "").ToList()
                : [];
            links.Add(new IpLink(
                e.GetProperty("ifindex").GetInt32(),
                Str(e, "ifname") ?? "",
                kind,
                slaveKind,
                Str(e, "master"),
                Int(e, "link_index"),
                Int(e, "link_netnsid"),
                Str(e, "address"),
                Str(e, "operstate"),
                Int(e, "mtu") ?? 0,
                flags,
                portState)
            {
                Addresses = AddressesOf(e),
            });
        }

        return links;
    }

    private static IReadOnlyList<string> AddressesOf(JsonElement e)
    {
        if (!e.TryGetProperty("addr_info", out var info) || info.ValueKind != JsonValueKind.Array)
        {
            return [];
        }

        var list = new List<string>();
        foreach (var a in info.EnumerateArray())
        {
            if (list.Count < MaxAddresses && a.ValueKind == JsonValueKind.Object && Str(a, "local") is { } local && Int(a, "prefixlen") is { } len
                && System.Net.IPAddress.TryParse(local, out var address)
                && len >= 0 && len <= (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128))
            {
                list.Add(local + "/" + len.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return list;
    }

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;

    private static int? Int(JsonElement e, string name) =>
        e.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.Number ? p.GetInt32() : null;
}
