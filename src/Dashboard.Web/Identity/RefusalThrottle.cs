using Dashboard.App.Audit;

namespace Dashboard.Web.Identity;

/// <summary>
/// Keeps refusals from flooding the audit log: per key (a remote address, a host) at most one entry a minute, the next
/// one saying how many were left out in between. Bounded: beyond 10,000 keys the left-out counts are summed into one
/// entry of their own before the keys are forgotten.
/// </summary>
public sealed class RefusalThrottle(AuditLog audit)
{
    public const int MaxKeys = 10_000;

    private readonly Dictionary<string, (DateTimeOffset At, int LeftOut)> _keys = new(StringComparer.Ordinal);

    /// <summary>Audits the refusal now, or counts it for the key's next entry.</summary>
    public async Task RefusedAsync(string key, Actor actor, string action, string? subject, string why, string? host = null)
    {
        var now = DateTimeOffset.UtcNow;
        int? leftOut = null;
        var dropped = 0;
        lock (_keys)
        {
            if (!_keys.TryGetValue(key, out var e) || now - e.At >= TimeSpan.FromMinutes(1))
            {
                leftOut = e.LeftOut;
                _keys[key] = (now, 0);
            }
            else
            {
                _keys[key] = (e.At, e.LeftOut + 1);
            }

            if (_keys.Count > MaxKeys)
            {
                dropped = _keys.Values.Sum(v => v.LeftOut);
                _keys.Clear();
            }
        }

        if (leftOut is { } n)
        {
            var more = n > 0 ? $" ({n} more refusals of {key} in the minute before were not written)" : "";
            await audit.WriteAsync(actor, action, subject, why + more, succeeded: false, host: host).ConfigureAwait(false);
        }

        if (dropped > 0)
        {
            await audit.WriteAsync(Actor.System, action, null, $"{dropped} refusals from more than {MaxKeys:N0} sources within a minute were not written one by one", succeeded: false).ConfigureAwait(false);
        }
    }
}
