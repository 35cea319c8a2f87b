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
        var firewall = new HostFirewallReader(runner, options);
        var writer = new IptablesRuleWriter(runner, options);
        var steps = new AgentSteps(new LabProvisioner(docker, runner, options), topology, firewall, writer,
            new CaptureService(runner, topology, options), new TraceService(runner, writer, firewall, topology, options, NullLogger<TraceService>.Instance), new ContainerProbe(docker), NullLogger<AgentSteps>.Instance);

        // The run Key made two networks and a container in each (as CreateNetwork and RunContainer record them).
        steps.Remember(Key, new ProvisionedNetwork("nlrun-01234567-net1", "n1", "br-0123456789ab", "172.18.0.0/24", "172.18.0.1"), new ProvisionedContainer("nlrun-01234567-c1", "c1", "nlrun-01234567-net1", "172.18.0.2"));
        steps.Remember(Key, new ProvisionedNetwork("nlrun-01234567-net2", "n2", "br-ba9876543210", "172.19.0.0/24", "172.19.0.1"), new ProvisionedContainer("nlrun-01234567-c2", "c2", "nlrun-01234567-net2", "172.19.0.2"));
        return steps;
    }

    private static ChangeRule Change() => new() { Chain = "DOCKER-USER", Position = 1, Source = "172.18.0.0/24", Target = "ACCEPT" };

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
        { "a change's rule with a run's tag", new(AgentStepAction.ChangeInsert, "", Tag: Tag, Change: Change()), "its change's tag" },
        { "a change's rule with no tag pattern", new(AgentStepAction.ChangeInsert, "", Tag: "netlab:change-main-7; rm -rf /", Change: Change()), "its change's tag" },
        { "a change that is a TRACE", new(AgentStepAction.ChangeInsert, "", Tag: "netlab:change-main-7", Change: Change() with { Target = "TRACE" }), "not valid" },
        { "a change that REJECTs (not a change's target)", new(AgentStepAction.ChangeInsert, "", Tag: "netlab:change-main-7", Change: Change() with { Target = "REJECT" }), "not valid" },
        { "a change in mangle (not a change's table)", new(AgentStepAction.ChangeInsert, "", Tag: "netlab:change-main-7", Change: Change() with { Table = "mangle" }), "not valid" },
        { "a change without its rule", new(AgentStepAction.ChangeInsert, "", Tag: "netlab:change-main-7"), "needs the change's rule" },
        { "a staging under the change's own tag", new(AgentStepAction.ChangeStage, "", Tag: "netlab:change-main-7", Change: Change()), "staged tag" },
        { "an insert under a staged tag", new(AgentStepAction.ChangeInsert, "", Tag: "netlab:change-main-7-staged", Change: Change()), "not its staged tag" },
        { "a promotion under a staged tag", new(AgentStepAction.ChangePromote, "", Tag: "netlab:change-main-7-staged", Change: Change()), "not its staged tag" },
        { "a promotion without its rule", new(AgentStepAction.ChangePromote, "", Tag: "netlab:change-main-7"), "needs the change's rule" },
        { "a staging that is a TRACE", new(AgentStepAction.ChangeStage, "", Tag: "netlab:change-main-7-staged", Change: Change() with { Target = "TRACE" }), "not valid" },
        { "a run rule before the run has networks", new(AgentStepAction.InsertRule, "fedcba9876543210fedcba9876543210", Rule: Rule(tag: "netlab:run-main-fedcba9876543210fedcba9876543210")), "after its networks" },
        { "a null run key to keep", new(AgentStepAction.Reconcile, "", TagPrefix: "netlab:run-main-", Keep: [null!]), "run keys" },
        { "removing a run's rules as a change", new(AgentStepAction.ChangeDeleteTagged, "", Tag: Tag), "its change's tag" },
        { "removing one of someone else's rules", new(AgentStepAction.ChangeDeleteOne, "", Tag: "DOCKER-ISOLATION"), "its change's tag" },
        { "a trace for a run the agent does not have", new(AgentStepAction.StartTrace, "fedcba9876543210fedcba9876543210", Trace: new TraceRequest("172.18.0.2", "172.19.0.2")), "its own flow" },
        { "a trace of another container's flow", new(AgentStepAction.StartTrace, Key, Trace: new TraceRequest("172.17.0.5", "172.19.0.2")), "its own flows only" },
        { "a trace whose replies go elsewhere", new(AgentStepAction.StartTrace, Key, Trace: new TraceRequest("172.18.0.2", "172.19.0.2", ReplyDestinations: ["172.17.0.1"])), "its own flows only" },
        { "a rule in INPUT", new(AgentStepAction.InsertRule, Key, Rule: Rule() with { Chain = "INPUT" }), "a run's rules go in" },
        { "a rule in nat", new(AgentStepAction.InsertRule, Key, Rule: Rule() with { Table = "nat", Chain = "POSTROUTING" }), "a run's rules go in" },
        { "a rule in FORWARD (not a variant's chain)", new(AgentStepAction.InsertRule, Key, Rule: Rule() with { Chain = "FORWARD" }), "a run's rules go in" },
        { "a LOG flood (not a variant's target)", new(AgentStepAction.InsertRule, Key, Rule: Rule(target: "LOG")), "a run's rules go in" },
        { "a rule for every container on the host", new(AgentStepAction.InsertRule, Key, Rule: Rule(source: "172.16.0.0/12", target: "DROP")), "not inside this run's own networks" },
        { "a rule for another lab's subnet", new(AgentStepAction.InsertRule, Key, Rule: Rule(destination: "172.20.0.0/24")), "not inside this run's own networks" },
        { "a TCP probe into a container not the run's", new(AgentStepAction.Tcp, Key, Container: "nlrun-01234567-c1", Target: "postgres", Address: "172.19.0.2", Port: 5432), "one of its own containers" },
        { "a TCP probe to another address", new(AgentStepAction.Tcp, Key, Container: "nlrun-01234567-c1", Target: "nlrun-01234567-c2", Address: "172.17.0.9", Port: 80), "one of its own containers" },
        { "a container on another run's network", new(AgentStepAction.RunContainer, Key, Name: "nlrun-01234567-c3", Network: "nlrun-01234567-other"), "one of the run's own networks" },
        { "stopping someone else's trace", new(AgentStepAction.StopTrace, Key, Capture: "t1"), "no trace" },
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
