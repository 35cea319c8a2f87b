namespace Dashboard.App.Runs;

/// <summary>The kinds of artifact a run stores (RunArtifact.Kind), written by the run and read by the history.</summary>
public static class RunArtifactKind
{
    public const string Scenario = "scenario";
    public const string Image = "image";
    public const string RulesetBefore = "ruleset-before";
    public const string RulesetAfter = "ruleset-after";
    public const string Topology = "topology";
    public const string Commands = "commands";
    public const string Matrix = "matrix";
    public const string Traces = "traces";
    public const string Cleanup = "cleanup";

    /// <summary>Whether an artifact is plain text (rulesets as iptables-save prints them, commands, cleanup) or JSON.</summary>
    public static bool IsText(string kind) => kind.StartsWith("ruleset", StringComparison.Ordinal) || kind is Commands or Cleanup;
}
