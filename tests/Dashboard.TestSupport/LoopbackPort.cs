namespace Dashboard.TestSupport;

/// <summary>A loopback TCP port nobody listens on at the moment of asking (the system picks it).</summary>
public static class LoopbackPort
{
    public static int Free()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }
}
