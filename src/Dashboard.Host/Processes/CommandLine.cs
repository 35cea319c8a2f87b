namespace Dashboard.Host.Processes;

/// <summary>Shows an argument vector as a person would type it, quoting what needs it. For display and audit only: nothing is ever run through a shell.</summary>
public static class CommandLine
{
    public static string Format(string program, IEnumerable<string> args) =>
        string.Join(' ', new[] { program }.Concat(args.Select(Quote)));

    private static string Quote(string a) =>
        a.Length > 0 && a.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/' or ':' or ',' or '=' or '+' or '@' or '!')
            ? a
            : "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
