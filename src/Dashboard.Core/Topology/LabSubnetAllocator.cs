using System.Net;

namespace Dashboard.Core.Topology;

/// <summary>
/// Picks subnets for lab networks inside 172.16.0.0/12 only. Docker's own pools roll forward across create/delete
/// cycles and reach 192.168.0.0/16, so lab networks never rely on them: each gets an explicit /24 that overlaps no
/// existing Docker network and no host route (blackhole safety routes aside), skipping docker0's 172.17.0.0/16.
/// </summary>
public static class LabSubnetAllocator
{
    public static readonly IPNetwork LabRange = IPNetwork.Parse("172.16.0.0/12");

    private static readonly IPNetwork DefaultBridge = IPNetwork.Parse("172.17.0.0/16");

    /// <summary>A free /24 inside 172.16.0.0/12, chosen at random so concurrent callers rarely collide; null when none is free.</summary>
    public static IPNetwork? Pick(IEnumerable<IPNetwork> taken, Random? random = null)
    {
        var used = taken.Where(t => t.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !t.Equals(LabRange)).Append(DefaultBridge).ToList();
        random ??= Random.Shared;
        var start = random.Next(0, 16 * 256);
        for (var i = 0; i < 16 * 256; i++)
        {
            var n = (start + i) % (16 * 256);
            var candidate = new IPNetwork(new IPAddress(new byte[] { 172, (byte)(16 + (n / 256)), (byte)(n % 256), 0 }), 24);
            if (!used.Any(u => Overlaps(u, candidate)))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>The gateway Docker would use: the first host address.</summary>
    public static IPAddress Gateway(IPNetwork subnet)
    {
        var b = subnet.BaseAddress.GetAddressBytes();
        b[^1] += 1;
        return new IPAddress(b);
    }

    public static bool IsInsideLabRange(IPNetwork n) =>
        n.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && n.PrefixLength >= LabRange.PrefixLength && LabRange.Contains(n.BaseAddress);

    private static bool Overlaps(IPNetwork a, IPNetwork b) => a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress);
}
