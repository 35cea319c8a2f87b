using Dashboard.Core.Firewall;

namespace Dashboard.App.Firewall;

/// <summary>A change with its cause decided: what the history writes.</summary>
public sealed record DecidedChange(RuleChange Change, DateTimeOffset At, ChangeCause Cause, string? Detail);

/// <summary>
/// What changed in the engine's topology at a moment, as the names and addresses Docker's rules carry: bridges and
/// subnets of networks that appeared, went or changed, addresses of containers that started, stopped or moved.
/// <see cref="Tokens"/> null: the engine itself came back (it rewrites all its rules).
/// </summary>
public sealed record EngineActivity(DateTimeOffset At, IReadOnlySet<string>? Tokens);

/// <summary>
/// One host's firewall history as it is being recorded: the last ruleset structure seen, when and where the engine last
/// changed its networks or containers, and the changes whose cause waits for Docker's window.
/// <para>
/// A change is the dashboard's when its rule carries this dashboard's own tag (<paramref name="isOwnTag"/>: its
/// instance's change, run and trace tags; a tag of another instance, or one copied by hand, is outside). It is Docker's
/// when it has Docker's shape (the collector's classification) and, within the window around the read that saw it, the
/// engine's topology changed in something the rule names (a bridge, a subnet, a container's address; a rule naming none
/// of these, such as a jump into Docker's chains, with any change; chains and the FORWARD policy only when the engine
/// came back). Such a change, or a rule naming a Docker-looking bridge the topology did not know yet, waits up to the
/// window for that activity (the topology refresh follows Docker's event by a debounce and a read). Anything else is
/// outside, at once.
/// </para>
/// Thread-safe: the recorder's loop observes reads, the feed's callbacks report engine activity.
/// </summary>
public sealed class HostHistoryState(TimeSpan window, Func<string, bool> isOwnTag)
{
    private readonly object _gate = new();
    private readonly List<EngineActivity> _activity = [];
    private readonly List<(RuleChange Change, DateTimeOffset At)> _pending = [];
    private RulesetShape? _shape;

    public TimeSpan Window { get; } = window;

    /// <summary>The last structure observed (null before the first read).</summary>
    public RulesetShape? Shape
    {
        get
        {
            lock (_gate)
            {
                return _shape;
            }
        }
    }

    /// <summary>When the last structure observed was read.</summary>
    public DateTimeOffset? LastAt { get; private set; }

    public int PendingCount
    {
        get
        {
            lock (_gate)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>Changes recorded since the last checkpoint (the recorder writes one every so many).</summary>
    public int SinceCheckpoint { get; set; }

    /// <summary>The first structure seen: nothing to compare it with.</summary>
    public void Baseline(RulesetShape shape, DateTimeOffset at)
    {
        lock (_gate)
        {
            _shape = shape;
            LastAt = at;
        }
    }

    /// <summary>The engine's networks or containers changed (or the engine came back: <see cref="EngineActivity.Tokens"/> null).</summary>
    public void EngineActive(EngineActivity activity)
    {
        ArgumentNullException.ThrowIfNull(activity);
        lock (_gate)
        {
            _activity.Add(activity);
            // Only activity that can still fall in a window matters.
            _activity.RemoveAll(a => a.At < activity.At - (Window * 4));
        }
    }

    /// <summary>
    /// A new read: its changes whose cause is known now (the others wait for <see cref="Due"/>). With
    /// <paramref name="unobserved"/> (the read follows a span the dashboard could not see), every change is
    /// <see cref="ChangeCause.Unobserved"/> with that reason.
    /// </summary>
    public IReadOnlyList<DecidedChange> Observe(RulesetShape shape, DateTimeOffset at, string? unobserved = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        lock (_gate)
        {
            if (_shape is null)
            {
                _shape = shape;
                LastAt = at;
                return [];
            }

            var changes = RulesetChanges.Compare(_shape, shape);
            _shape = shape;
            LastAt = at;
            var decided = new List<DecidedChange>();
            if (_pending.Count > 0)
            {
                // A later read may classify a waiting rule as Docker's (the topology caught up): take its latest owner.
                RefreshOwners(shape);
                DecideWaiting(at, decided);
            }

            foreach (var c in changes)
            {
                if (unobserved is not null)
                {
                    decided.Add(new DecidedChange(c, at, ChangeCause.Unobserved, unobserved));
                }
                else if (Decide(c, at, final: false) is { } d)
                {
                    decided.Add(d);
                }
                else
                {
                    _pending.Add((c, at));
                }
            }

            return decided;
        }
    }

    /// <summary>Waiting changes whose cause is known by <paramref name="now"/> (their window closed, or the engine was active).</summary>
    public IReadOnlyList<DecidedChange> Due(DateTimeOffset now)
    {
        lock (_gate)
        {
            if (_pending.Count == 0)
            {
                return [];
            }

            var decided = new List<DecidedChange>();
            DecideWaiting(now, decided);
            return decided;
        }
    }

    private void DecideWaiting(DateTimeOffset now, List<DecidedChange> decided)
    {
        for (var i = 0; i < _pending.Count; i++)
        {
            var (c, at) = _pending[i];
            if (Decide(c, at, final: now >= at + Window) is { } d)
            {
                decided.Add(d);
                _pending.RemoveAt(i);
                i--;
            }
        }
    }

    private void RefreshOwners(RulesetShape shape)
    {
        var chains = shape.Chains.ToLookup(c => (c.Family, c.Table, c.Chain));
        for (var i = 0; i < _pending.Count; i++)
        {
            var (c, at) = _pending[i];
            if (c.Kind is not (RuleChangeKind.Added or RuleChangeKind.Moved) || c.Key is null)
            {
                continue;
            }

            var rule = chains[(c.Family, c.Table, c.Chain)].SelectMany(x => x.Rules).FirstOrDefault(r => r.Key == c.Key);
            if (rule is not null && rule.Owner != c.Owner)
            {
                _pending[i] = (c with { Owner = rule.Owner }, at);
            }
        }
    }

    private DecidedChange? Decide(RuleChange c, DateTimeOffset at, bool final)
    {
        if (ChangeAttribution.DashboardOwner(c) is { } owner)
        {
            return isOwnTag(owner)
                ? new DecidedChange(c, at, ChangeCause.Dashboard, owner)
                : new DecidedChange(c, at, ChangeCause.Outside, $"carries the tag {RuleTag.Prefix}{owner}, which is not this dashboard's (another instance's, or copied)");
        }

        var couldBeDocker = ChangeAttribution.CouldBeDocker(c);
        if (couldBeDocker && MatchingActivity(c, at) is { } active)
        {
            var seconds = Math.Abs((active.At - at).TotalSeconds);
            return new DecidedChange(c, at, ChangeCause.Docker, active.Tokens is null
                ? $"the engine came back {seconds:0.0} s {(active.At <= at ? "before" : "after")} the read"
                : $"the dashboard saw the engine's networks or containers change {seconds:0.0} s {(active.At <= at ? "before" : "after")} the read, in what the rule names");
        }

        if (final)
        {
            return new DecidedChange(c, at, ChangeCause.Outside, couldBeDocker
                ? $"Docker's shape, but the engine's networks and containers did not change in what it names within {Window.TotalSeconds:0.#} s"
                : null);
        }

        return couldBeDocker || ChangeAttribution.NamesDockerLikeBridge(c) ? null : new DecidedChange(c, at, ChangeCause.Outside, null);
    }

    /// <summary>The activity closest to the read, within the window, that explains this change.</summary>
    private EngineActivity? MatchingActivity(RuleChange c, DateTimeOffset at)
    {
        EngineActivity? best = null;
        var isRule = c.Kind is RuleChangeKind.Added or RuleChangeKind.Removed or RuleChangeKind.Moved;
        var generic = isRule && !ChangeAttribution.NamesDockerLikeBridge(c) && !ChangeAttribution.NamesAddress(c);
        foreach (var a in _activity)
        {
            if ((a.At - at).Duration() > Window || (best is not null && (a.At - at).Duration() >= (best.At - at).Duration()))
            {
                continue;
            }

            var explains = a.Tokens is null
                || (isRule && (generic || a.Tokens.Any(t => ChangeAttribution.Names(c, t))))
                || (c.Kind is RuleChangeKind.ChainAdded or RuleChangeKind.ChainRemoved && a.Tokens.Any(t => ChangeAttribution.Names(c, t)));
            if (explains)
            {
                best = a;
            }
        }

        return best;
    }
}
