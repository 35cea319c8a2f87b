using System.Net;
using Dashboard.Core.Topology;

namespace Dashboard.Core.Tests.Topology;

public class LabSubnetAllocatorTests
{
    [Fact]
    public void Pick_ManyTimes_AlwaysInside172_16Slash12AndNeverDocker0()
    {
        var rng = new Random(1);
        for (var i = 0; i < 2000; i++)
        {
            var n = LabSubnetAllocator.Pick([], rng)!.Value;
            Assert.True(LabSubnetAllocator.IsInsideLabRange(n), n.ToString());
            Assert.False(IPNetwork.Parse("172.17.0.0/16").Contains(n.BaseAddress), n.ToString());
            Assert.Equal(24, n.PrefixLength);
        }
    }

    [Fact]
    public void Pick_AvoidsTakenSubnetsButNotTheBlackholeRoute()
    {
        var taken = Enumerable.Range(16, 16).Where(b => b != 29).Select(b => IPNetwork.Parse($"172.{b}.0.0/16")).Append(LabSubnetAllocator.LabRange).ToList();

        var n = LabSubnetAllocator.Pick(taken)!.Value;

        Assert.True(IPNetwork.Parse("172.29.0.0/16").Contains(n.BaseAddress));
        var b = n.BaseAddress.GetAddressBytes();
        Assert.Equal($"172.29.{b[2]}.1", LabSubnetAllocator.Gateway(n).ToString());
    }

    [Fact]
    public void Pick_NothingFree_IsNull()
    {
        var all = Enumerable.Range(16, 16).Select(b => IPNetwork.Parse($"172.{b}.0.0/16"));

        Assert.Null(LabSubnetAllocator.Pick(all));
    }
}
