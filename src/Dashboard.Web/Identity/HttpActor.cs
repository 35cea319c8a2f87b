
namespace Dashboard.Web.Identity;

/// <summary>The acting user of a request: <c>Actor.From(http)</c> in endpoints, with the client's address for the audit.</summary>
public static class HttpActor
{
    extension(Actor)
    {
        public static Actor From(HttpContext http) => Actor.From(http.User, http.Connection.RemoteIpAddress?.ToString());
    }
}
