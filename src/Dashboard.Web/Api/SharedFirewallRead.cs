using Dashboard.Host;

namespace Dashboard.Web.Api;

/// <summary>
/// <c>GET /api/firewall</c> for everyone shares one host read at most a second old (one <c>iptables-save</c> at a time,
/// whoever asks and however often); an Operator's <c>?fresh=true</c> reads now. The answer says when it was read.
/// </summary>
public sealed class SharedFirewallRead(HostInspector host)
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _one = new(1, 1);
    private (FirewallView View, long At)? _last;

    public async Task<FirewallView> ReadAsync(bool fresh, CancellationToken ct = default)
    {
        await _one.WaitAsync(ct);
        try
        {
            if (!fresh && _last is { } l && Environment.TickCount64 - l.At < MaxAge.TotalMilliseconds)
            {
                return l.View;
            }

            var view = await host.ReadFirewallAsync(ct);
            _last = (view, Environment.TickCount64);
            return view;
        }
        finally
        {
            _one.Release();
        }
    }
}
