using System.Text.Json.Nodes;

namespace Dashboard.TestSupport;

/// <summary>
/// Damaged dumps made from real ones, for the readers' and the API's bad-input contract: every node of an nft JSON
/// document replaced by values of every JSON kind, and every line of an iptables-save dump twisted token by token.
/// </summary>
public static class MalformedCorpus
{
    public static readonly string[] JsonReplacements = ["5", "-1", "1e300", "\"x\"", "\"\"", "[]", "[1, \"a\", {}]", "{}", "{\"op\": 1, \"left\": [], \"right\": null}", "null", "true"];

    /// <summary>The document with one node replaced, for every <paramref name="step"/>-th node and every replacement.</summary>
    public static IEnumerable<string> NftMutations(string json, int step = 1)
    {
        var count = NftNodeCount(json);
        for (var i = 0; i < count; i += step)
        {
            foreach (var replacement in JsonReplacements)
            {
                yield return Replaced(json, i, replacement);
            }
        }
    }

    /// <summary>How many nodes the document has below its root (the places <see cref="NftMutations"/> and <see cref="Replaced"/> change).</summary>
    public static int NftNodeCount(string json) => Paths(JsonNode.Parse(json)!).Count();

    /// <summary>The document with its <paramref name="index"/>-th node below the root (depth first) replaced by <paramref name="value"/> (JSON).</summary>
    public static string Replaced(string json, int index, string value)
    {
        var copy = JsonNode.Parse(json)!;
        var (parent, key, at) = Locate(copy, Paths(copy).ElementAt(index));
        if (parent is JsonObject o)
        {
            o[key!] = JsonNode.Parse(value);
        }
        else if (parent is JsonArray a)
        {
            a[at] = JsonNode.Parse(value);
        }

        return copy.ToJsonString();
    }

    /// <summary>A node's place: the names and indexes from the root.</summary>
    private static IEnumerable<object[]> Paths(JsonNode node, object[]? prefix = null)
    {
        prefix ??= [];
        switch (node)
        {
            case JsonObject o:
                foreach (var (name, child) in o.ToList())
                {
                    object[] path = [.. prefix, name];
                    yield return path;
                    if (child is not null)
                    {
                        foreach (var inner in Paths(child, path))
                        {
                            yield return inner;
                        }
                    }
                }

                break;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                {
                    object[] path = [.. prefix, i];
                    yield return path;
                    if (a[i] is { } child)
                    {
                        foreach (var inner in Paths(child, path))
                        {
                            yield return inner;
                        }
                    }
                }

                break;
        }
    }

    private static (JsonNode? Parent, string? Key, int Index) Locate(JsonNode root, object[] path)
    {
        JsonNode? parent = root;
        for (var i = 0; i < path.Length - 1; i++)
        {
            parent = path[i] is string name ? parent?[name] : parent?[(int)path[i]];
        }

        return path[^1] is string key ? (parent, key, -1) : (parent, null, (int)path[^1]);
    }

    private static readonly Func<string[], string[]>[] LineTwists =
    [
        t => t[..^1],
        t => [.. t, "-m"],
        t => [.. t, "--comment"],
        t => [.. t, "!"],
        t => [.. t, "\"unterminated"],
        t => t.Select(x => x.StartsWith('[') ? "[x:y]" : x).ToArray(),
        t => t.Select(x => x.StartsWith('[') ? "[18446744073709551616:1]" : x).ToArray(),
        t => t.Select(x => x.Contains('/') ? "999.1.1.1/77" : x).ToArray(),
        t => t.Select(x => x == "-j" ? "-g" : x).ToArray(),
        t => t.Length > 2 ? [t[0], .. t[2..]] : t,
    ];

    /// <summary>The dump with one line twisted, for every non-empty line and every twist: (line number, text).</summary>
    public static IEnumerable<(int Line, string Text)> IptablesMutations(string dump)
    {
        var lines = dump.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0)
            {
                continue;
            }

            foreach (var twist in LineTwists)
            {
                var copy = (string[])lines.Clone();
                copy[i] = string.Join(' ', twist(lines[i].Split(' ')));
                yield return (i + 1, string.Join('\n', copy));
            }
        }
    }

    /// <summary>
    /// The inputs AFL++ kept while fuzzing the readers (<c>scripts/fuzz.sh</c>): a sample of its queue and any crash or
    /// hang, under <c>tests/Dashboard.Core.Tests/Fixtures/fuzz/READER</c>; READER is <c>iptables</c> or <c>nft</c>.
    /// </summary>
    public static IEnumerable<(string Reader, string Name, string Text)> FuzzCorpus()
    {
        var root = TestPaths.CoreFixture("fuzz");
        if (!Directory.Exists(root))
        {
            yield break;
        }

        foreach (var file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            yield return (Path.GetFileName(Path.GetDirectoryName(file)!), Path.GetFileName(file), File.ReadAllText(file));
        }
    }
}
