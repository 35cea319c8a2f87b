using System.Net.Sockets;

namespace Dashboard.Web.Tests.Hosts;

/// <summary>
/// A link between an agent and the dashboard's Unix socket that a test can cut: while <see cref="Down"/>, every
/// connection through it is closed and new ones are closed on arrival, as a cable pulled out would leave them.
/// </summary>
public sealed class UnixRelay : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly string _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _open = [];
    private volatile bool _down;

    public UnixRelay(string upstream)
    {
        _upstream = upstream;
        Path = $"/run/netlab-relay-{Guid.NewGuid().ToString("N")[..8]}.sock";
        _listener.Bind(new UnixDomainSocketEndPoint(Path));
        _listener.Listen(16);
        _ = AcceptAsync();
    }

    public string Path { get; }

    /// <summary>Cuts the link: open connections closed, new ones refused until <see cref="Up"/>.</summary>
    public void Down()
    {
        _down = true;
        lock (_open)
        {
            foreach (var s in _open)
            {
                s.Dispose();
            }

            _open.Clear();
        }
    }

    public void Up() => _down = false;

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            if (_down)
            {
                client.Dispose();
                continue;
            }

            var server = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await server.ConnectAsync(new UnixDomainSocketEndPoint(_upstream), _stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException)
            {
                client.Dispose();
                server.Dispose();
                continue;
            }

            lock (_open)
            {
                _open.Add(client);
                _open.Add(server);
            }

            _ = PumpAsync(client, server);
            _ = PumpAsync(server, client);
        }
    }

    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (n == 0)
                {
                    break;
                }

                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        Down();
        _listener.Dispose();
        File.Delete(Path);
        _stop.Dispose();
    }
}
