namespace Dashboard.App.Access;

/// <summary>Why an action was refused; the web layer turns it into a status (401, 403, 404) and the hub into its error.</summary>
public enum AccessDenial
{
    /// <summary>Nobody is signed in.</summary>
    SignInRequired,

    /// <summary>Signed in, but the role is too low for this action.</summary>
    Forbidden,

    /// <summary>Not a member, or no such thing: the lab's content is not disclosed.</summary>
    NotFound,
}

/// <summary>An action refused server-side, with the reason and a message that names what was missing.</summary>
public sealed class LabAccessException(AccessDenial reason, string message) : Exception(message)
{
    public AccessDenial Reason { get; } = reason;
}
