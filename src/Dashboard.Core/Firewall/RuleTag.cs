namespace Dashboard.Core.Firewall;

/// <summary>
/// The comment this dashboard puts on every rule it adds: <c>netlab:&lt;owner&gt;</c>, where owner is e.g. <c>change-42</c>,
/// <c>trace-7</c> or <c>test-1a2b3c</c>. Only rules carrying it are ever removed by the dashboard.
/// </summary>
public static class RuleTag
{
    public const string Prefix = "netlab:";

    public static string For(string owner)
    {
        if (string.IsNullOrEmpty(owner) || owner.Length > 200 || !owner.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':'))
        {
            throw new ArgumentException("a rule tag owner is 1-200 characters of letters, digits, '-', '_', '.', ':'", nameof(owner));
        }

        return Prefix + owner;
    }

    public static bool IsDashboardComment(string? comment) => comment is not null && comment.StartsWith(Prefix, StringComparison.Ordinal);
}
