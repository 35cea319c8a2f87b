using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;

namespace Dashboard.Web.Tests.Hubs;

/// <summary>A client of <c>/hubs/lab</c> over the test server, signed in with an API token (long polling: no real socket needed).</summary>
internal static class TestHub
{
    public static HubConnection Connect(DashboardFactory factory, string? token)
    {
        var server = factory.Server;
        return new HubConnectionBuilder()
            .WithUrl(new Uri(server.BaseAddress, "hubs/lab"), o =>
            {
                o.HttpMessageHandlerFactory = _ => server.CreateHandler();
                o.Transports = HttpTransportType.LongPolling;
                o.AccessTokenProvider = () => Task.FromResult(token);
            })
            .Build();
    }
}
