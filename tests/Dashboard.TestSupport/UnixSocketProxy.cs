using System.Net.Sockets;

namespace Dashboard.TestSupport;

/// <summary>
/// A Unix socket that forwards to the Docker socket and can be cut and restored: an engine outage for one app under
/// test, without stopping the engine other tests use.
/// </summary>
public sealed class UnixSocketProxy : IAsyncDisposable
{
    private readonly string _target;
    private readonly List<Socket> _open = [];
    private Socket? _listener;
    private CancellationTokenSource? _cts;
    private Task? _accepting;

    public UnixSocketProxy(string target = "/var/run/docker.sock")
    {
        _target = target;
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"netlab-proxy-{Guid.NewGuid():N}.sock");
    }

    public string Path { get; }

    public string Endpoint => "unix://" + Path;

    public void Start()
    {
        File.Delete(Path);
        _cts = new CancellationTokenSource();
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(Path));
        _listener.Listen(64);
        _accepting = AcceptAsync(_listener, _cts.Token);
    }

    /// <summary>Closes the listener and every forwarded connection, and removes the socket file.</summary>
    public async Task StopAsync()
    {
        _cts?.Cancel();
        _listener?.Dispose();
        lock (_open)
        {
            foreach (var s in _open)
            {
                s.Dispose();
            }

            _open.Clear();
        }

        if (_accepting is not null)
        {
            try
            {
                await _accepting;
            }
            catch (Exception)
            {
                // Accept loop ends with the listener.
            }
        }

        File.Delete(Path);
    }

    private async Task AcceptAsync(Socket listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(ct);
            }
            catch (Exception)
            {
                return;
            }

            _ = ForwardAsync(client, ct);
        }
    }

    private async Task ForwardAsync(Socket client, CancellationToken ct)
    {
        var upstream = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        lock (_open)
        {
            _open.Add(client);
            _open.Add(upstream);
        }

        try
        {
            await upstream.ConnectAsync(new UnixDomainSocketEndPoint(_target), ct);
            using var a = new NetworkStream(client, ownsSocket: false);
            using var b = new NetworkStream(upstream, ownsSocket: false);
            await Task.WhenAny(a.CopyToAsync(b, ct), b.CopyToAsync(a, ct));
        }
        catch (Exception)
        {
            // A cut connection is the point of this class.
        }
        finally
        {
            client.Dispose();
            upstream.Dispose();
            lock (_open)
            {
                _open.Remove(client);
                _open.Remove(upstream);
            }
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
