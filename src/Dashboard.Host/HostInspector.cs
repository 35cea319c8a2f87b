using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;

namespace Dashboard.Host;

/// <summary>The firewall as read, with rules classified against the topology read just before it.</summary>
public sealed record FirewallView(FirewallSnapshot Snapshot, FirewallBackend Backend, HostTopology? Topology);

/// <summary>Reads the host on demand: topology from the engine and the kernel, the firewall with owners and network links.</summary>
public sealed class HostInspector(DockerTopologyReader topologyReader, HostFirewallReader firewallReader)
{
    public Task<HostTopology> ReadTopologyAsync(CancellationToken ct = default) => topologyReader.ReadAsync(ct);

    /// <summary>
    /// Reads the firewall. With the engine reachable its networks classify the rules; without it the firewall is still
    /// read (backend from <c>iptables -V</c> is not known then, so iptables-save is used) and bridges are recognised by name.
    /// </summary>
    public async Task<FirewallView> ReadFirewallAsync(CancellationToken ct = default)
    {
        HostTopology? topology = null;
        try
        {
            topology = await topologyReader.ReadAsync(ct).ConfigureAwait(false);
        }
        catch (EngineUnavailableException)
        {
            // The rules are the host's, not the engine's: still worth reading.
        }

        var backend = topology?.Engine.FirewallBackend ?? FirewallBackend.Unknown;
        var snapshot = await firewallReader.ReadAsync(backend, ct).ConfigureAwait(false);
        RuleClassifier.Classify(snapshot.Ruleset, topology?.Networks, topology?.Containers);
        if (topology is null)
        {
            snapshot = snapshot with { Warnings = [.. snapshot.Warnings, "the Docker engine did not answer: rules are linked to bridges by Docker's names only"] };
        }

        return new FirewallView(snapshot, backend, topology);
    }
}
