using Dashboard.Core.Changes;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using Dashboard.Core.Topology;
using Dashboard.Host.Docker;
using Dashboard.App.Live;
using Microsoft.EntityFrameworkCore;

namespace Dashboard.App.Isolation;

/// <summary>Whether the kernel agreed with a cell's prediction, from a real probe.</summary>
public enum Agreement
{
    Agreed,
    Disagreed,
    NotProbed,
}

/// <summary>A cell with its probe: predicted round trip, observed round trip (ping replies), and whether they agree.</summary>
public sealed record VerifiedCell(string From, string To, bool Predicted, bool? Observed, Agreement Agreement, string? ProbeFrom, string? ProbeTo, string Detail)
{
    /// <summary>Why a cell was not probed, in a few words for the cell itself (<see cref="Detail"/> says it whole).</summary>
    public string? NotProbedBecause { get; init; }
}

public sealed record Verification(IsolationMatrix Matrix, IReadOnlyList<VerifiedCell> Cells, DateTimeOffset At)
{
    public int Agreed => Cells.Count(c => c.Agreement == Agreement.Agreed);

    public int Disagreed => Cells.Count(c => c.Agreement == Agreement.Disagreed);
}

/// <summary>
/// A what-if: the matrix before and after the rules (added in order), the cells that change, the first rule's command
/// and every rule's (<see cref="Commands"/>), and the rulesets and context behind the two matrices (to draw a changed
/// cell's walk before and after).
/// </summary>
public sealed record WhatIf(IsolationMatrix Before, IsolationMatrix After, IReadOnlyList<MatrixChange> Changes, string Command)
{
    /// <summary>The iptables command of each rule, in the order they are added.</summary>
    public IReadOnlyList<string> Commands { get; init; } = [Command];

    public Ruleset? RulesetBefore { get; init; }

    public Ruleset? RulesetAfter { get; init; }

    public EvaluationContext? Context { get; init; }
}

/// <summary>
/// Isolation matrices for the live host (the live feed's ruleset and topology, or a fresh read when the collector is
/// off), what-if matrices with a proposed rule, and verification by real pings from inside the lab containers.
/// </summary>
/// <summary>A verification is already running on this host.</summary>
public sealed class VerifyBusyException() : Exception("a verification is already running on this host: wait for it to finish");

public sealed class IsolationService(LiveFeed feed, Dashboard.Host.HostInspector inspector, ContainerProbe probe, Microsoft.Extensions.Options.IOptions<Dashboard.Host.DockerHostOptions> hostOptions,
    Microsoft.EntityFrameworkCore.IDbContextFactory<Dashboard.Data.DashboardDbContext> dbs, Dashboard.App.Hosts.HostDirectory hosts, Dashboard.App.Hosts.IAgentCommands agents)
{
    /// <summary>Probes run at most this many at a time (each a bounded ping inside a container).</summary>
    public const int ProbeConcurrency = 4;

    public async Task<(Ruleset Ruleset, HostTopology Topology)> CurrentAsync(CancellationToken ct = default)
    {
        if (feed.Ruleset is { } rs && feed.Topology is { } t)
        {
            return (rs, t);
        }

        var topology = await inspector.ReadTopologyAsync(ct);
        var firewall = await inspector.ReadFirewallAsync(ct);
        return (firewall.Snapshot.Ruleset, topology);
    }

    /// <summary>The ruleset alone: the collector's copy, else one fresh firewall read (no topology read).</summary>
    public async Task<Ruleset> RulesetAsync(CancellationToken ct = default) =>
        feed.Ruleset ?? (await inspector.ReadFirewallAsync(ct)).Snapshot.Ruleset;

    /// <summary>A host's matrix from what its feed holds (an agent's host, or the local one), or null before it reported rules and topology.</summary>
    public static IsolationMatrix? MatrixOf(LiveFeed feed, string by, MatrixProbe matrixProbe) =>
        feed.Ruleset is { } rs && feed.Topology is { } t ? Build(rs, t, by, matrixProbe) : null;

    public static IReadOnlyList<MatrixEndpoint> Endpoints(HostTopology topology, string by) =>
        by == "containers" ? IsolationMatrices.Containers(topology) : IsolationMatrices.Networks(topology);

    public async Task<IsolationMatrix> MatrixAsync(string by, MatrixProbe matrixProbe, CancellationToken ct = default)
    {
        var (ruleset, topology) = await CurrentAsync(ct);
        return Build(ruleset, topology, by, matrixProbe);
    }

    private static IsolationMatrix Build(Ruleset ruleset, HostTopology topology, string by, MatrixProbe matrixProbe) =>
        IsolationMatrices.Build(ruleset, Endpoints(topology, by), matrixProbe, IsolationMatrices.ContextFor(topology));

    /// <summary>The matrix now and with <paramref name="spec"/> added (nothing touches the host), and the cells that change.</summary>
    public Task<WhatIf> WhatIfAsync(RuleSpec spec, string by, MatrixProbe matrixProbe, CancellationToken ct = default) =>
        WhatIfAsync([spec], by, matrixProbe, ct);

    /// <summary>The most rules one what-if stacks.</summary>
    public const int MaxWhatIfRules = 20;

    /// <summary>The dashboard's own host's name.</summary>
    public string LocalHost => feed.Host;

    /// <summary>The matrix now and with every rule of <paramref name="specs"/> added in order; the command is the first rule's.</summary>
    public Task<WhatIf> WhatIfAsync(IReadOnlyList<RuleSpec> specs, string by, MatrixProbe matrixProbe, CancellationToken ct = default) =>
        WhatIfOnAsync(null, specs, by, matrixProbe, ct);

    /// <summary>The same on a host an agent reports, from what its feed holds (null or the local name: this dashboard's host).</summary>
    public async Task<WhatIf> WhatIfOnAsync(string? host, IReadOnlyList<RuleSpec> specs, string by, MatrixProbe matrixProbe, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(specs);
        if (specs.Count == 0)
        {
            throw new WhatIfException("give at least one rule");
        }

        var (ruleset, topology) = host is null || host == feed.Host ? await CurrentAsync(ct)
            : hosts.Remote(host) is { Feed: { Ruleset: { } r, Topology: { } t } } ? (r, t)
            : throw new Dashboard.App.Hosts.HostUnavailableException($"host '{host}' has not reported its rules and containers: no what-if for it");
        var endpoints = Endpoints(topology, by);
        var context = IsolationMatrices.ContextFor(topology);
        if (specs.Count > MaxWhatIfRules)
        {
            throw new WhatIfException($"at most {MaxWhatIfRules} rules at once ({specs.Count} given)");
        }

        var edited = ruleset;
        for (var i = 0; i < specs.Count; i++)
        {
            try
            {
                edited = RulesetEditor.WithRule(edited, specs[i]);
            }
            catch (WhatIfException ex) when (specs.Count > 1)
            {
                // Each rule goes into the ruleset as the ones before it left it: its position counts them.
                throw new WhatIfException($"rule {i + 1} of {specs.Count}: {ex.Message}");
            }
        }

        var before = IsolationMatrices.Build(ruleset, endpoints, matrixProbe, context);
        var after = IsolationMatrices.Build(edited, endpoints, matrixProbe, context);
        var o = hostOptions.Value;
        var commands = specs.Select(sp => Dashboard.Host.Processes.CommandLine.Format(o.Iptables, sp.InsertArguments(o.XtablesLockWaitSeconds))).ToList();
        return new WhatIf(before, after, IsolationMatrices.Diff(before, after), commands[0]) { Commands = commands, RulesetBefore = ruleset, RulesetAfter = edited, Context = context };
    }

    /// <summary>Pings each cell from a container of the source to a container of the destination and compares with the prediction.</summary>
    public Task<Verification> VerifyAsync(Dashboard.App.Access.Actor actor, IsolationMatrix matrix, IProgress<(int Done, int Total)>? progress = null, CancellationToken ct = default) =>
        VerifyOnAsync(actor, null, matrix, progress, ct);

    /// <summary>
    /// The same on a host an agent reports (<paramref name="host"/>; null or the local name: this dashboard's host): its
    /// agent runs each ping and checks the container is a lab container too. A disconnected host fails at once
    /// (<see cref="Dashboard.App.Hosts.HostUnavailableException"/>).
    /// </summary>
    public async Task<Verification> VerifyOnAsync(Dashboard.App.Access.Actor actor, string? host, IsolationMatrix matrix, IProgress<(int Done, int Total)>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(actor);
        ArgumentNullException.ThrowIfNull(matrix);
        var remote = host is not null && host != feed.Host ? host : null;
        HostTopology? remoteTopology = null;
        if (remote is not null)
        {
            var h = hosts.Remote(remote) ?? throw new Dashboard.App.Hosts.HostUnavailableException($"no agent reports host '{remote}'");
            remoteTopology = h is { IsStale: false, Feed.Topology: { } t } ? t
                : throw new Dashboard.App.Hosts.HostUnavailableException($"host '{remote}' is disconnected (or has not reported its containers): nothing can be probed there");
        }

        // One verification at a time per host, and pings only inside the lab's own containers (labelled by a run or
        // a test): a host's other containers are nobody's experiment.
        var verifying = _verifying.GetOrAdd(remote ?? feed.Host, _ => new SemaphoreSlim(1, 1));
        if (!await verifying.WaitAsync(0, ct))
        {
            throw new VerifyBusyException();
        }

        try
        {
            // A run's containers only for an Operator of the run's lab (another lab's run is not theirs to ping).
            var topology = remoteTopology ?? (await CurrentAsync(ct)).Topology;
            await using var db = await dbs.CreateDbContextAsync(ct);
            var labs = await db.LabMembers.Where(m => m.UserId == actor.UserId && m.Role >= Dashboard.Data.Entities.LabRole.Operator).Select(m => m.LabId).ToListAsync(ct);
            var runs = (await db.Runs.Where(r => labs.Contains(r.LabId) && (r.Status == Dashboard.Data.Entities.RunStatus.Running || r.KeepResources)).Select(r => r.Id).ToListAsync(ct))
                .Select(id => id.ToString("N")).ToHashSet(StringComparer.Ordinal);
            var lab = topology.Containers
                .Where(c => (c.Labels.TryGetValue(LabProvisioner.RunLabel, out var run) && runs.Contains(run)) || c.Labels.ContainsKey(LabProvisioner.TestLabel))
                .Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
            Func<string, string, CancellationToken, Task<ProbeResult>> ping = remote is null
                ? (container, target, t) => probe.PingAsync(container, target, 1, 1, t)
                : (container, target, t) => agents.PingAsync(remote, container, target, 1, 1, t);
            return await VerifyLabAsync(matrix, lab, ping, progress, ct);
        }
        finally
        {
            verifying.Release();
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> _verifying = new(StringComparer.Ordinal);

    private async Task<Verification> VerifyLabAsync(IsolationMatrix matrix, IReadOnlySet<string> labContainers, Func<string, string, CancellationToken, Task<ProbeResult>> ping,
        IProgress<(int Done, int Total)>? progress, CancellationToken ct)
    {
        var byKey = matrix.Endpoints.ToDictionary(e => e.Key);
        var results = new VerifiedCell[matrix.Cells.Count];
        var done = 0;
        using var gate = new SemaphoreSlim(ProbeConcurrency);
        var tasks = matrix.Cells.Select(async (cell, i) =>
        {
            await gate.WaitAsync(ct);
            try
            {
                results[i] = await VerifyCellAsync(matrix.Probe, cell, byKey[cell.From], byKey[cell.To], labContainers, ping, ct);
            }
            finally
            {
                gate.Release();
                progress?.Report((Interlocked.Increment(ref done), matrix.Cells.Count));
            }
        });
        await Task.WhenAll(tasks);
        return new Verification(matrix, results, DateTimeOffset.UtcNow);
    }

    private static async Task<VerifiedCell> VerifyCellAsync(MatrixProbe matrixProbe, MatrixCell cell, MatrixEndpoint from, MatrixEndpoint to, IReadOnlySet<string> labContainers,
        Func<string, string, CancellationToken, Task<ProbeResult>> ping, CancellationToken ct)
    {
        var same = from.Key == to.Key;
        var (target, targetContainer) = same ? (to.Peer, to.PeerContainer) : (to.Address, to.Container);
        if (matrixProbe.Protocol != "icmp")
        {
            return new VerifiedCell(cell.From, cell.To, cell.Succeeds, null, Agreement.NotProbed, null, null, "probes are pings: verify the ICMP matrix") { NotProbedBecause = "probes are pings" };
        }

        if (IsolationMatrices.StaysInside(from, to))
        {
            return new VerifiedCell(cell.From, cell.To, cell.Succeeds, null, Agreement.NotProbed, from.Container, to.Container,
                "the packet stays inside the container (its own address): the host's rules are not on its way") { NotProbedBecause = "stays inside the container" };
        }

        if (cell.Request == Verdict.Undetermined || cell.Reply == Verdict.Undetermined)
        {
            return new VerifiedCell(cell.From, cell.To, cell.Succeeds, null, Agreement.NotProbed, null, null, "the prediction is undetermined: " + cell.Reason) { NotProbedBecause = "undetermined" };
        }

        if (from.Container is null || targetContainer is null || target is null)
        {
            return new VerifiedCell(cell.From, cell.To, cell.Succeeds, null, Agreement.NotProbed, from.Container, targetContainer,
                same ? "needs two running containers on this network" : "needs a running container on both networks") { NotProbedBecause = same ? "one container on the network" : "no container to ping" };
        }

        if (!labContainers.Contains(from.Container) || !labContainers.Contains(targetContainer))
        {
            return new VerifiedCell(cell.From, cell.To, cell.Succeeds, null, Agreement.NotProbed, from.Container, targetContainer,
                $"only the lab's own containers (those of a run in a lab where you are an Operator) are probed; {(labContainers.Contains(from.Container) ? targetContainer : from.Container)} is not one") { NotProbedBecause = "not a lab's container" };
        }

        try
        {
            var r = await ping(from.Container, target, ct);
            var agreement = r.Succeeded == cell.Succeeds ? Agreement.Agreed : Agreement.Disagreed;
            return new VerifiedCell(cell.From, cell.To, cell.Succeeds, r.Succeeded, agreement, from.Container, targetContainer,
                $"ping -c 1 -W 1 {target} from {from.Container}: {r.Sent} sent, {r.Received} received");
        }
        catch (Exception ex) when (ex is ProbeRejectedException or Docker.DotNet.DockerApiException or OperationCanceledException or HttpRequestException or Dashboard.App.Hosts.HostUnavailableException)
        {
            return new VerifiedCell(cell.From, cell.To, cell.Succeeds, null, Agreement.NotProbed, from.Container, targetContainer, "probe failed: " + ex.Message) { NotProbedBecause = "probe failed" };
        }
    }
}
