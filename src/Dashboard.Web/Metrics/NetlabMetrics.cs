using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Dashboard.App.Hosts;
using Dashboard.App.Live;
using Dashboard.Core.Firewall;
using Dashboard.Host.Collector;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Dashboard.Web.Metrics;

/// <summary>Configuration section "Metrics": whether <c>/metrics</c> is served, and how many rules of a host it exports at most.</summary>
public sealed class MetricsOptions
{
    public const string Section = "Metrics";

    public bool Enabled { get; set; } = true;

    /// <summary>Rules exported per host (each is two series and an info series); the rest are counted in netlab_rules_left_out.</summary>
    public int MaxRulesPerHost { get; set; } = 10_000;
}

/// <summary>
/// The dashboard's Prometheus metrics, in a registry of its own (prometheus-net), filled at each scrape from what the
/// live feeds of every host hold: each rule's packet and byte counters as the collector last read them (labels host,
/// family, table, chain, owner and a stable rule id: a hash of the rule's identity in its chain, so it does not move
/// when rules are inserted above it), the rule's text in an info series, chain policy counters, the collectors' reads,
/// capture drops and agent connections. Nothing is invented: a host that has not reported has no series.
/// Label cardinality is bounded by <see cref="MetricsOptions.MaxRulesPerHost"/>; series of rules gone are removed.
/// </summary>
public sealed class NetlabMetrics
{
    private static readonly string[] RuleLabels = ["host", "family", "table", "chain", "owner", "rule"];

    /// <summary>The longest rule text in netlab_rule_info (an agent's rule could be longer; the rest is cut, marked "…").</summary>
    public const int MaxTextLabel = 512;

    /// <summary>One scrape at a time: a scrape's update and its serialisation see the same series.</summary>
    public SemaphoreSlim ScrapeGate { get; } = new(1, 1);
    private static readonly ConditionalWeakTable<FirewallRule, string> Ids = new();

    private readonly HostDirectory _hosts;
    private readonly int _max;
    private readonly object _gate = new();
    private readonly Counter _packets;
    private readonly Counter _bytes;
    private readonly Gauge _info;
    private readonly Counter _policyPackets;
    private readonly Counter _policyBytes;
    private readonly Gauge _exported;
    private readonly Gauge _leftOut;
    private readonly Counter _reads;
    private readonly Gauge _readRate;
    private readonly Gauge _lastRead;
    private readonly Histogram _readSeconds;
    private readonly Gauge _agentConnected;
    private readonly Counter _captureDropped;
    private readonly Counter _captureNotShown;
    private Dictionary<string, (Collector Metric, string[] Labels)> _series = new(StringComparer.Ordinal);

    public NetlabMetrics(HostDirectory hosts, CollectorReadObserver reads, IOptions<MetricsOptions> options)
    {
        ArgumentNullException.ThrowIfNull(reads);
        ArgumentNullException.ThrowIfNull(options);
        _hosts = hosts;
        _max = Math.Max(0, options.Value.MaxRulesPerHost);
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var f = Prometheus.Metrics.WithCustomRegistry(Registry);
        _packets = f.CreateCounter("netlab_rule_packets_total", "Packets a rule counted, as the host's collector last read them.", RuleLabels);
        _bytes = f.CreateCounter("netlab_rule_bytes_total", "Bytes a rule counted, as the host's collector last read them.", RuleLabels);
        _info = f.CreateGauge("netlab_rule_info", "A rule's text (value always 1); join on host and rule.", "host", "family", "table", "chain", "rule", "text");
        _policyPackets = f.CreateCounter("netlab_chain_policy_packets_total", "Packets a built-in chain's policy decided.", "host", "family", "table", "chain", "policy");
        _policyBytes = f.CreateCounter("netlab_chain_policy_bytes_total", "Bytes a built-in chain's policy decided.", "host", "family", "table", "chain", "policy");
        _exported = f.CreateGauge("netlab_rules_exported", "Rules of the host exported here.", "host");
        _leftOut = f.CreateGauge("netlab_rules_left_out", "Rules of the host not exported (beyond Metrics:MaxRulesPerHost).", "host");
        _reads = f.CreateCounter("netlab_collector_reads_total", "Firewall reads by the host's collector.", "host");
        _readRate = f.CreateGauge("netlab_collector_read_rate_hz", "Firewall reads per second the host's collector achieved lately.", "host");
        _lastRead = f.CreateGauge("netlab_collector_last_read_seconds", "How long the host collector's last firewall read took.", "host");
        _readSeconds = f.CreateHistogram("netlab_collector_read_duration_seconds", "Every firewall read of this dashboard's own collector (agents' hosts: see netlab_collector_last_read_seconds).",
            new HistogramConfiguration { LabelNames = ["host"], Buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
        _agentConnected = f.CreateGauge("netlab_agent_connected", "Whether the host's agent is connected (1) or not (0).", "host");
        _captureDropped = f.CreateCounter("netlab_capture_kernel_dropped_packets_total", "Packets the kernel dropped for a capture (tcpdump's count, known when it ends).", "host", "capture", "interface");
        _captureNotShown = f.CreateCounter("netlab_capture_not_shown_packets_total", "Packets of a capture counted under their flow but not shown one by one.", "host", "capture", "interface");
        reads.ReadCompleted += (host, took) => _readSeconds.WithLabels(host).Observe(took.TotalSeconds);
        Registry.AddBeforeCollectCallback(Update);
    }

    public CollectorRegistry Registry { get; }

    /// <summary>A rule's stable id: 12 hex digits of the SHA-256 of its family, table, chain and identity in the chain (content and occurrence, no counters, no position).</summary>
    public static string RuleIdOf(FirewallRule rule) => Ids.GetValue(rule, static r =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{r.Family}\n{r.Table}\n{r.Chain}\n{r.Key}")))[..12]);

    /// <summary>Fills the registry from the feeds (called by prometheus-net before each scrape).</summary>
    public void Update()
    {
        lock (_gate)
        {
            var seen = new Dictionary<string, (Collector, string[])>(_series.Count, StringComparer.Ordinal);
            Export(_hosts.Local, null, seen);
            foreach (var remote in _hosts.Remotes)
            {
                Set(_agentConnected, [remote.Name], remote.State == AgentState.Connected ? 1 : 0, seen);
                Export(remote.Feed, remote.Name, seen);
            }

            // Series of rules, captures and hosts that are gone: off the exposition.
            foreach (var (key, (metric, labels)) in _series)
            {
                if (!seen.ContainsKey(key))
                {
                    Remove(metric, labels);
                }
            }

            _series = seen;
        }
    }

    private void Export(LiveFeed feed, string? remote, Dictionary<string, (Collector, string[])> seen)
    {
        var host = remote ?? feed.Host;
        if (feed.Status.Reads > 0)
        {
            Count(_reads, [host], feed.Status.Reads, seen);
            Set(_readRate, [host], feed.Status.AchievedRateHz, seen);
            Set(_lastRead, [host], feed.Status.LastReadMilliseconds / 1000, seen);
        }

        foreach (var capture in feed.Captures)
        {
            string[] labels = [host, capture.Id, capture.Interface];
            if (capture.Session.Stats.DroppedByKernel is { } dropped)
            {
                Count(_captureDropped, labels, dropped, seen);
            }

            Count(_captureNotShown, labels, capture.NotShown, seen);
        }

        if (feed.Ruleset is not { } ruleset)
        {
            return;
        }

        int exported = 0, leftOut = 0;
        foreach (var table in ruleset.Tables)
        {
            var family = table.Family.ToString().ToLowerInvariant();
            foreach (var chain in table.Chains)
            {
                if (chain.IsBuiltin)
                {
                    var (pp, pb) = feed.PolicyCountersOf(table.Family, table.Name, chain);
                    string[] policy = [host, family, table.Name, chain.Name, chain.Policy!];
                    Count(_policyPackets, policy, pp, seen);
                    Count(_policyBytes, policy, pb, seen);
                }

                foreach (var rule in chain.Rules)
                {
                    if (exported >= _max)
                    {
                        leftOut++;
                        continue;
                    }

                    exported++;
                    var id = RuleIdOf(rule);
                    var (packets, bytes) = feed.CountersOf(rule);
                    string[] labels = [host, family, table.Name, chain.Name, rule.Owner.ToString().ToLowerInvariant(), id];
                    Count(_packets, labels, packets, seen);
                    Count(_bytes, labels, bytes, seen);
                    Set(_info, [host, family, table.Name, chain.Name, id, rule.Text.Length > MaxTextLabel ? rule.Text[..MaxTextLabel] + "…" : rule.Text], 1, seen);
                }
            }
        }

        Set(_exported, [host], exported, seen);
        Set(_leftOut, [host], leftOut, seen);
    }

    /// <summary>A counter taken to the host's value; a value below the exported one (the rule was re-made) starts the series again, which Prometheus reads as a reset.</summary>
    private static void Count(Counter counter, string[] labels, double value, Dictionary<string, (Collector, string[])> seen)
    {
        var child = counter.WithLabels(labels);
        if (value < child.Value)
        {
            child.Remove();
            child = counter.WithLabels(labels);
        }

        child.IncTo(value);
        seen[Key(counter, labels)] = (counter, labels);
    }

    private static void Set(Gauge gauge, string[] labels, double value, Dictionary<string, (Collector, string[])> seen)
    {
        gauge.WithLabels(labels).Set(value);
        seen[Key(gauge, labels)] = (gauge, labels);
    }

    private static void Remove(Collector metric, string[] labels)
    {
        switch (metric)
        {
            case Counter c:
                c.RemoveLabelled(labels);
                break;
            case Gauge g:
                g.RemoveLabelled(labels);
                break;
        }
    }

    private static string Key(Collector metric, string[] labels) => metric.Name + "\u0001" + string.Join('\u0001', labels);
}
