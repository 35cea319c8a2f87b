using Dashboard.Core.Firewall;

namespace Dashboard.App.Firewall;

/// <summary>A change with its cause decided: what the history writes.</summary>
public sealed record DecidedChange(RuleChange Change, DateTimeOffset At, ChangeCause Cause, string? Detail);

/// <summary>
/// One host's firewall history as it is being recorded: the last ruleset structure seen, when the engine last changed its
/// networks or containers, and the changes whose cause waits for Docker's window.
/// <para>
/// A change is the dashboard's when its rule carries the dashboard's tag. It is Docker's when it has Docker's shape (the
/// collector's classification) and the engine's networks or containers changed within the window around the read that
/// saw it; such a change, or a rule naming a Docker-looking bridge the topology did not know yet, waits up to the window for
/// that activity (the topology refresh follows Docker's event by a debounce and a read). Anything else is outside, at once.
/// </para>
/// Thread-safe: the recorder's loop observes reads, the feed's callbacks report engine activity.
/// </summary>
public sealed class HostHistoryState(TimeSpan window)
{
    private readonly object _gate = new();
    private readonly List<DateTimeOffset> _activity = [];
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
    public void Baseline(RulesetShape shape)
    {
        lock (_gate)
        {
            _shape = shape;
        }
    }

    /// <summary>The engine's networks or containers changed (or the engine came back) at <paramref name="at"/>.</summary>
    public void EngineActive(DateTimeOffset at)
    {
        lock (_gate)
        {
            _activity.Add(at);
            // Only activity that can still fall in a window matters.
            _activity.RemoveAll(a => a < at - (Window * 4));
        }
    }

    /// <summary>A new read: its changes whose cause is known now (the others wait for <see cref="Due"/>).</summary>
    public IReadOnlyList<DecidedChange> Observe(RulesetShape shape, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(shape);
        lock (_gate)
        {
            if (_shape is null)
            {
                _shape = shape;
                return [];
            }

            var changes = RulesetChanges.Compare(_shape, shape);
            _shape = shape;
            var decided = new List<DecidedChange>();
            if (_pending.Count > 0)
            {
                // A later read may classify a waiting rule as Docker's (the topology caught up): take its latest owner.
                RefreshOwners(shape);
                DecideWaiting(at, decided);
            }

            foreach (var c in changes)
            {
                if (Decide(c, at, at, final: false) is { } d)
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
            if (Decide(c, at, now, final: now >= at + Window) is { } d)
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

    private DecidedChange? Decide(RuleChange c, DateTimeOffset at, DateTimeOffset now, bool final)
    {
        if (ChangeAttribution.DashboardOwner(c) is { } owner)
        {
            return new DecidedChange(c, at, ChangeCause.Dashboard, owner);
        }

        var couldBeDocker = ChangeAttribution.CouldBeDocker(c);
        if (couldBeDocker && ActivityNear(at) is { } active)
        {
            return new DecidedChange(c, at, ChangeCause.Docker, $"the engine's networks or containers changed {Math.Abs((active - at).TotalSeconds):0.0} s {(active <= at ? "before" : "after")} the read");
        }

        if (final)
        {
            return new DecidedChange(c, at, ChangeCause.Outside, couldBeDocker
                ? $"Docker's shape, but the engine's networks and containers did not change within {Window.TotalSeconds:0.#} s"
                : null);
        }

        return couldBeDocker || ChangeAttribution.NamesDockerLikeBridge(c) ? null : new DecidedChange(c, at, ChangeCause.Outside, null);
    }

    private DateTimeOffset? ActivityNear(DateTimeOffset at)
    {
        DateTimeOffset? best = null;
        foreach (var a in _activity)
        {
            if ((a - at).Duration() <= Window && (best is null || (a - at).Duration() < (best.Value - at).Duration()))
            {
                best = a;
            }
        }

        return best;
    }
}
