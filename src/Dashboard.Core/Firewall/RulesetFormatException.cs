namespace Dashboard.Core.Firewall;

/// <summary>A dump that cannot be read; names the line (1-based) where reading stopped.</summary>
public sealed class RulesetFormatException : FormatException
{
    public RulesetFormatException(int line, string message)
        : base(line > 0 ? $"line {line}: {message}" : message)
    {
        Line = line;
        Reason = message;
    }

    /// <summary>1-based line number; 0 when the problem is not tied to one line.</summary>
    public int Line { get; }

    public string Reason { get; }
}
