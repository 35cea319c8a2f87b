namespace Dashboard.Core.Firewall;

/// <summary>
/// What a reader of one host keeps between two reads of <c>iptables-save -c</c>: each rule line's parsed form by its text
/// (counters aside), per table. A read whose rules did not change parses nothing but counters; a rule inserted is the
/// only one parsed. After each successful read the cache holds exactly that dump's rules, so it never outgrows the host's
/// ruleset. Not thread-safe: one per reader (one host, one family), used by one read at a time.
/// </summary>
public sealed class IptablesParseCache
{
    private readonly Dictionary<(string Table, TableFamily Family), TableCache> _tables = [];

    internal int Generation { get; private set; }

    /// <summary>Rule lines taken from the cache, and parsed, since the cache was made (for tests and benchmarks).</summary>
    public long Hits { get; internal set; }

    public long Misses { get; internal set; }

    /// <summary>Distinct rule texts held.</summary>
    public int Count => _tables.Values.Sum(t => t.Map.Count);

    internal void BeginRead() => Generation++;

    internal TableCache For(string table, TableFamily family)
    {
        if (!_tables.TryGetValue((table, family), out var cache))
        {
            _tables[(table, family)] = cache = new TableCache();
        }

        cache.Generation = Generation;
        return cache;
    }

    /// <summary>Forgets the rules (and tables) this read did not see.</summary>
    internal void EndRead()
    {
        foreach (var (key, table) in _tables)
        {
            if (table.Generation != Generation)
            {
                _tables.Remove(key);
                continue;
            }

            foreach (var (text, rule) in table.Map)
            {
                if (rule.Generation != Generation)
                {
                    table.Map.Remove(text);
                }
            }
        }
    }

    internal sealed class TableCache
    {
        public TableCache() => Lookup = Map.GetAlternateLookup<ReadOnlySpan<char>>();

        public Dictionary<string, CachedRule> Map { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, CachedRule>.AlternateLookup<ReadOnlySpan<char>> Lookup { get; }

        public int Generation { get; set; }
    }

    internal sealed class CachedRule(string text, string chain, IptablesSaveReader.ParsedRule parsed)
    {
        public string Text { get; } = text;

        public string Chain { get; } = chain;

        public IptablesSaveReader.ParsedRule Parsed { get; } = parsed;

        public int Generation { get; private set; }

        private int _seen;

        /// <summary>The how-many-th time this text occurs in the current read: duplicates get "#2", "#3" in their key.</summary>
        public int Occur(int generation)
        {
            if (Generation != generation)
            {
                Generation = generation;
                _seen = 0;
            }

            return ++_seen;
        }
    }
}
