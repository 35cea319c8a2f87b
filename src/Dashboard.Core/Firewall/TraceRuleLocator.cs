
namespace Dashboard.Core.Firewall;

/// <summary>Finds a traced rule's position in a ruleset by its specification (the same tokens as <c>iptables-save</c> prints).</summary>
public sealed class TraceRuleLocator(Ruleset ruleset)
{
    private readonly Dictionary<(string Table, string Chain, string Spec), int> _positions = Build(ruleset);

    public int? PositionOf(string table, string chain, string ruleText)
    {
        try
        {
            return _positions.TryGetValue((table, chain, string.Join('\u0001', IptablesSaveReader.SpecArguments(ruleText))), out var p) ? p : null;
        }
        catch (RulesetFormatException)
        {
            return null;
        }
    }

    private static Dictionary<(string, string, string), int> Build(Ruleset ruleset)
    {
        var d = new Dictionary<(string, string, string), int>();
        foreach (var r in ruleset.Rules.Where(r => r.Family == TableFamily.Ipv4 && r.Text.StartsWith("-A ", StringComparison.Ordinal)))
        {
            d.TryAdd((r.Table, r.Chain, string.Join('\u0001', IptablesSaveReader.SpecArguments(r.Text))), r.Position);
        }

        return d;
    }
}
