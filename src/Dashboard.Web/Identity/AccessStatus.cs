
namespace Dashboard.Web.Identity;

/// <summary>The HTTP status a refusal answers with: the application layer names a reason, the web layer the code.</summary>
public static class AccessStatus
{
    extension(LabAccessException e)
    {
        /// <summary>401 sign in first, 403 role too low, 404 not a member (nothing disclosed).</summary>
        public int Status => e.Reason switch
        {
            AccessDenial.SignInRequired => StatusCodes.Status401Unauthorized,
            AccessDenial.NotFound => StatusCodes.Status404NotFound,
            _ => StatusCodes.Status403Forbidden,
        };
    }
}
