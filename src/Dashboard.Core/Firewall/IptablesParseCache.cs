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

    /// <summary>Counts table sections across reads: duplicates are numbered per section, as a fresh read numbers them.</summary>
    private int _section;

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
        cache.Section = ++_section;
        return cache;
    }

    /// <summary>After a read that failed: forgets the texts it added, so only successful reads fill the cache.</summary>
    internal void AbandonRead()
    {
        foreach (var table in _tables.Values)
        {
            foreach (var (text, rule) in table.Map)
            {
                if (rule.AddedIn == Generation)
                {
                    table.Map.Remove(text);
                }
            }
        }
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

        public int Section { get; set; }
    }

    internal sealed class CachedRule(string text, string chain, IptablesSaveReader.ParsedRule parsed, int addedIn)
    {
        public int AddedIn { get; } = addedIn;

        public string Text { get; } = text;

        public string Chain { get; } = chain;

        public IptablesSaveReader.ParsedRule Parsed { get; } = parsed;

        public int Generation { get; private set; }

        private int _section;
        private int _seen;

        /// <summary>The how-many-th time this text occurs in the current table section: duplicates get "#2", "#3" in their key.</summary>
        public int Occur(int generation, int section)
        {
            Generation = generation;
            if (_section != section)
            {
                _section = section;
                _seen = 0;
            }

            return ++_seen;
        }
    }
}
