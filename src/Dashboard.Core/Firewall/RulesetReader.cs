namespace Dashboard.Core.Firewall;

/// <summary>Reads a dump whose format is not known in advance: nft JSON starts with '{', anything else is read as iptables-save text.</summary>
public static class RulesetReader
{
    public static Ruleset Read(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.AsSpan().TrimStart();
        if (trimmed.IsEmpty)
        {
            throw new RulesetFormatException(0, "the dump is empty");
        }

        return trimmed[0] == '{' ? NftJsonReader.Read(text) : IptablesSaveReader.Read(text);
    }
}
