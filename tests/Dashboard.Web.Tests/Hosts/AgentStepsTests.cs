using Dashboard.Agent;
using Dashboard.Core.Changes;
using Dashboard.Host;
using Dashboard.Host.Agents;
using Dashboard.Host.Capture;
using Dashboard.Host.Docker;
using Dashboard.Host.Netfilter;
using Dashboard.Host.Processes;
using Docker.DotNet;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Dashboard.Web.Tests.Hosts;

/// <summary>
/// The agent trusts no step: whatever a dashboard (or whoever holds its connection) asks, a rule outside the lab range,
/// another owner's tag, a name, network, bridge or container that is not the run's, a change rule without a change's
/// tag, is refused before anything runs on the host.
/// </summary>
public sealed class AgentStepsTests
{
    private const string Key = "0123456789abcdef0123456789abcdef";
    private const string Tag = "netlab:run-main-" + Key;

    /// <summary>Fails the test if the agent starts any process: every command here must be refused first.</summary>
    private sealed class NoProcesses : IProcessRunner
    {
        public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken = default) =>
            throw new Xunit.Sdk.XunitException($"the agent ran {CommandLine.Format(fileName, arguments)} for a step it should have refused");

        public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string standardInput, TimeSpan timeout, CancellationToken cancellationToken = default) =>
            RunAsync(fileName, arguments, timeout, cancellationToken);
    }

    private static AgentSteps Steps()
    {
        var options = Options.Create(new DockerHostOptions { DockerEndpoint = "unix:///run/netlab-no-such-docker.sock" });
        var runner = new NoProcesses();
        var docker = new DockerClientBuilder().WithEndpoint(new Uri(options.Value.DockerEndpoint)).Build();
        var topology = new DockerTopologyReader(docker, runner, options, NullLogger<DockerTopologyReader>.Instance);
        return new AgentSteps(new LabProvisioner(docker, runner, options), topology, new HostFirewallReader(runner, options), new IptablesRuleWriter(runner, options),
            new CaptureService(runner, topology, options), new ContainerProbe(docker), NullLogger<AgentSteps>.Instance);
    }

    private static RuleSpec Rule(string? source = "172.18.0.0/24", string? destination = "172.19.0.0/24", string target = "ACCEPT", string tag = Tag) =>
        new() { Chain = "DOCKER-USER", Position = 1, Source = source, Destination = destination, Target = target, Tag = tag };

    public static TheoryData<string, AgentStep, string> Hostile => new()
    {
        { "a rule for an address outside the lab range", new(AgentStepAction.InsertRule, Key, Rule: Rule(source: "10.0.0.0/8")), "outside 172.16.0.0/12" },
        { "a rule for every address", new(AgentStepAction.InsertRule, Key, Rule: Rule(destination: "0.0.0.0/0")), "outside 172.16.0.0/12" },
        { "a rule wider than the lab range", new(AgentStepAction.InsertRule, Key, Rule: Rule(source: "172.0.0.0/8")), "outside 172.16.0.0/12" },
        { "a rule with no address at all", new(AgentStepAction.InsertRule, Key, Rule: Rule(source: null, destination: null, target: "DROP")), "a lab source or destination" },
        { "a rule on the host's uplink", new(AgentStepAction.InsertRule, Key, Rule: Rule(target: "DROP") with { InInterface = "eth0" }), "not interfaces or negations" },
        { "a negated lab address (everything else)", new(AgentStepAction.InsertRule, Key, Rule: Rule(target: "DROP") with { NegateSource = true }), "not interfaces or negations" },
        { "a rule with a change's tag", new(AgentStepAction.InsertRule, Key, Rule: Rule(tag: "netlab:change-7")), "the run's own tag" },
        { "a rule with another run's tag", new(AgentStepAction.InsertRule, Key, Rule: Rule(tag: "netlab:run-main-ffffffffffffffffffffffffffffffff")), "the run's own tag" },
        { "a TRACE rule", new(AgentStepAction.InsertRule, Key, Rule: Rule(target: "TRACE")), "ACCEPT, DROP" },
        { "an invalid rule", new(AgentStepAction.InsertRule, Key, Rule: Rule() with { Chain = "-F" }), "not valid" },
        { "no rule", new(AgentStepAction.InsertRule, Key), "needs the rule" },
        { "removing a change's rules", new(AgentStepAction.DeleteTagged, Key, Tag: "netlab:change-7"), "the run's own tag" },
        { "removing another run's rules", new(AgentStepAction.DeleteTagged, Key, Tag: "netlab:run-main-ffffffffffffffffffffffffffffffff"), "the run's own tag" },
        { "a network not named for the run", new(AgentStepAction.CreateNetwork, Key, Name: "bridge"), "is named nlrun-01234567-" },
        { "a network named for another run", new(AgentStepAction.CreateNetwork, Key, Name: "nlrun-ffffffff-net1"), "is named nlrun-01234567-" },
        { "a container on a network not the run's", new(AgentStepAction.RunContainer, Key, Name: "nlrun-01234567-c1", Network: "host"), "one of the run's own networks" },
        { "a capture on the host's uplink", new(AgentStepAction.StartCapture, Key, Interface: "eth0"), "not a bridge of this run" },
        { "a capture the run does not have", new(AgentStepAction.StopCapture, Key, Capture: "x"), "no capture" },
        { "a TCP probe from someone else's container", new(AgentStepAction.Tcp, Key, Container: "postgres", Address: "172.18.0.2", Port: 5432), "not a container of this run" },
        { "a run key that is a path", new(AgentStepAction.RemoveRun, "../../etc"), "32 hex digits" },
        { "no run key", new(AgentStepAction.RemoveRun, null!), "32 hex digits" },
        { "reconciling every dashboard rule", new(AgentStepAction.Reconcile, "", TagPrefix: "netlab:"), "run tag prefix" },
        { "reconciling with a bad run key to keep", new(AgentStepAction.Reconcile, "", TagPrefix: "netlab:run-main-", Keep: ["x"]), "run keys" },
        { "a change's rule with a run's tag", new(AgentStepAction.ChangeInsert, "", Rule: Rule()), "its change's tag" },
        { "a change's rule with no tag pattern", new(AgentStepAction.ChangeInsert, "", Rule: Rule(tag: "netlab:change-main-7; rm -rf /")), "its change's tag" },
        { "a change that is a TRACE", new(AgentStepAction.ChangeInsert, "", Rule: Rule(target: "TRACE", tag: "netlab:change-main-7")), "no TRACE rule" },
        { "an invalid change rule", new(AgentStepAction.ChangeInsert, "", Rule: Rule(tag: "netlab:change-main-7") with { Table = "security" }), "not valid" },
        { "removing a run's rules as a change", new(AgentStepAction.ChangeDeleteTagged, "", Tag: Tag), "its change's tag" },
        { "removing one of someone else's rules", new(AgentStepAction.ChangeDeleteOne, "", Tag: "DOCKER-ISOLATION"), "its change's tag" },
        { "an unknown step", new((AgentStepAction)99, Key), "unknown run step" },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public async Task AHostileStep_IsRefusedWithItsReason_AndNothingRuns(string what, AgentStep command, string reason)
    {
        var reply = await Steps().HandleAsync(command);
        Assert.True(reply.Refused?.Contains(reason, StringComparison.Ordinal) == true, $"{what}: {reply}");
        Assert.Null(reply.Failed);
    }
}
