using System.Text.Json.Nodes;
using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Firewall;

/// <summary>
/// The readers answer any input with a model or a <see cref="RulesetFormatException"/> (which the API turns into a
/// 400 naming the place), never another exception: every node of a real nft JSON dump replaced in turn by values of
/// every JSON kind, and every line of the real iptables-save dumps cut and twisted token by token.
/// </summary>
public class ReaderShapeTests
{
    private static readonly string[] Replacements = ["5", "-1", "1e300", "\"x\"", "\"\"", "[]", "[1, \"a\", {}]", "{}", "{\"op\": 1, \"left\": [], \"right\": null}", "null", "true"];

    private static string NftFixture() =>
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "nft", "docker-29-bridge1-published-port.json"));

    /// <summary>Every node of the document, as a way to reach it from the root and put something else there.</summary>
    private static IEnumerable<Action<JsonNode, JsonNode?>> Places(JsonNode node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (name, child) in o.ToList())
                {
                    var key = name;
                    yield return (root, value) => Find(root, node)!.AsObject()[key] = value;
                    if (child is not null)
                    {
                        foreach (var inner in Places(child))
                        {
                            yield return inner;
                        }
                    }
                }

                break;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                {
                    var at = i;
                    yield return (root, value) => Find(root, node)!.AsArray()[at] = value;
                    if (a[i] is { } child)
                    {
                        foreach (var inner in Places(child))
                        {
                            yield return inner;
                        }
                    }
                }

                break;
        }
    }

    /// <summary>The node at the same path in a fresh copy of the document.</summary>
    private static JsonNode? Find(JsonNode root, JsonNode original)
    {
        var path = original.GetPath(); // "$", "$.nftables[3].rule.expr[0]"
        return path == "$" ? root : JsonPathOf(root, path);
    }

    private static JsonNode? JsonPathOf(JsonNode root, string path)
    {
        JsonNode? node = root;
        var i = 1;
        while (i < path.Length && node is not null)
        {
            if (path[i] == '.')
            {
                var end = path.IndexOfAny(['.', '['], i + 1);
                var name = path[(i + 1)..(end < 0 ? path.Length : end)];
                node = node[name];
                i = end < 0 ? path.Length : end;
            }
            else if (path[i] == '[')
            {
                var end = path.IndexOf(']', i);
                var inside = path[(i + 1)..end];
                node = inside.StartsWith('\'') ? node[inside.Trim('\'')] : node[int.Parse(inside, System.Globalization.CultureInfo.InvariantCulture)];
                i = end + 1;
            }
        }

        return node;
    }

    [Fact]
    public void NftJson_EveryNodeReplacedByEveryKindOfValue_IsAModelOrAFormatError()
    {
        var text = NftFixture();
        var places = Places(JsonNode.Parse(text)!).ToList();
        var tried = 0;
        var refused = 0;
        foreach (var place in places)
        {
            foreach (var replacement in Replacements)
            {
                var copy = JsonNode.Parse(text)!;
                place(copy, JsonNode.Parse(replacement));
                var mutated = copy.ToJsonString();
                tried++;
                try
                {
                    NftJsonReader.Read(mutated);
                }
                catch (RulesetFormatException ex)
                {
                    refused++;
                    // The message names the item, or says what the whole document lacks.
                    Assert.True(ex.Message.StartsWith("item ", StringComparison.Ordinal) || ex.Message.StartsWith("not `nft -j list ruleset`", StringComparison.Ordinal) || ex.Message == "the ruleset holds no tables", ex.Message);
                }
                catch (Exception ex)
                {
                    Assert.Fail($"{ex.GetType().Name} for {replacement} at a node of the dump: {ex.Message}");
                }
            }
        }

        Assert.True(places.Count > 500, $"{places.Count} places");
        Assert.InRange(refused, 1, tried - 1); // some changes are harmless, many are refused
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

    [Theory]
    [InlineData("iptables/docker-20.10-two-networks-isolated.save")]
    [InlineData("iptables/docker-17-seed-accept.save")]
    [InlineData("iptables/docker-28.5-bridge1-published-port.save")]
    public void IptablesSave_EveryLineTwisted_IsAModelOrAFormatErrorNamingTheLine(string fixture)
    {
        var lines = TestPaths.ReadShared(fixture).Split('\n');
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
                try
                {
                    IptablesSaveReader.Read(string.Join('\n', copy));
                }
                catch (RulesetFormatException ex)
                {
                    Assert.True(ex.Line >= 1 && ex.Line <= lines.Length, $"line {ex.Line} of {lines.Length}: {ex.Message}");
                }
                catch (Exception ex)
                {
                    Assert.Fail($"{ex.GetType().Name} for line {i + 1} twisted to '{copy[i]}': {ex.Message}");
                }
            }
        }
    }
}
