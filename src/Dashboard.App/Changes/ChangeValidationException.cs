namespace Dashboard.App.Changes;

/// <summary>A proposal that does not hold up, field by field (nothing was saved).</summary>
public sealed class ChangeValidationException(IReadOnlyDictionary<string, string> errors)
    : Exception(string.Join("; ", errors.Select(e => $"{e.Key}: {e.Value}")))
{
    public IReadOnlyDictionary<string, string> Errors { get; } = errors;
}
