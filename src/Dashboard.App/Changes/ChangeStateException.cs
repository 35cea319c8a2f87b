namespace Dashboard.App.Changes;

/// <summary>The action does not fit the change's state (409), e.g. approving one that was already rejected.</summary>
public sealed class ChangeStateException(string message) : Exception(message);
