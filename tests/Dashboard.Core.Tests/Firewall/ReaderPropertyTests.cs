using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CsCheck;
using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Firewall;

/// <summary>
/// Property-based (CsCheck): generated nft JSON with members of the wrong type, missing and extra at every level, and
/// iptables-save text with damaged lines, always read to a ruleset or a <see cref="RulesetFormatException"/> naming the
/// item or line, in bounded time. CsCheck shrinks a failing input to a small one and prints its seed.
/// </summary>
public class ReaderPropertyTests
{
    private static readonly string[] Keys =
    [
        "nftables", "metainfo", "table", "chain", "rule", "set", "map", "family", "name", "handle", "type", "hook", "prio",
        "policy", "expr", "match", "op", "left", "right", "payload", "protocol", "field", "meta", "key", "ct", "counter",
        "packets", "bytes", "jump", "goto", "target", "accept", "drop", "return", "nat", "addr", "port", "comment",
        "prefix", "len", "elem", "set", "data", "flags", "base", "offset", "range", "concat", "version", "dnat", "masquerade",
    ];

    private static readonly Gen<string> Leaf = Gen.OneOf<string>(
        Gen.OneOf("null", "true", "false", "0", "-1", "1e300", "18446744073709551616", "\"\"", "\"ip\"", "\"filter\"", "\"FORWARD\"", "\"==\"", "\"@set\"", "\"172.18.0.0\""),
        Gen.Int.Select(i => i.ToString(CultureInfo.InvariantCulture)),
        Gen.String[0, 12].Select(s => JsonSerializer.Serialize(s)));

    private static Gen<string> Value(int depth) => depth == 0
        ? Leaf
        : Gen.OneOf<string>(
            Leaf,
            Value(depth - 1).Array[0, 4].Select(xs => "[" + string.Join(",", xs) + "]"),
            Gen.Select(Gen.OneOf(Keys), Value(depth - 1), (k, v) => $"\"{k}\":{v}").Array[0, 4].Select(kvs => "{" + string.Join(",", kvs) + "}"));

    /// <summary>A document shaped like <c>nft -j list ruleset</c> output: items with the real kinds, contents anything.</summary>
    private static readonly Gen<string> NftDocument =
        Gen.Select(Gen.OneOf("metainfo", "table", "chain", "rule", "set", "map", "flowtable"), Value(3), (kind, v) => $"{{\"{kind}\":{v}}}")
            .Array[0, 8].Select(items => "{\"nftables\":[" + string.Join(",", items) + "]}");

    private static void ReadsOrRefuses(Func<Ruleset> read, Func<RulesetFormatException, bool> namesThePlace)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            read();
        }
        catch (RulesetFormatException ex)
        {
            Assert.True(namesThePlace(ex), ex.Message);
        }

        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2), $"took {sw.Elapsed}");
    }

    private static bool NamesAnItem(RulesetFormatException ex) =>
        ex.Message.StartsWith("item ", StringComparison.Ordinal) || ex.Message.StartsWith("not `nft -j list ruleset`", StringComparison.Ordinal) || ex.Message == "the ruleset holds no tables";

    [Fact]
    public void NftJson_GeneratedDocuments_AreReadOrRefusedNamingTheItem() =>
        NftDocument.Sample(json => ReadsOrRefuses(() => NftJsonReader.Read(json), NamesAnItem), iter: 3_000);

    [Fact]
    public void NftJson_TheRealDumpWithAnyNodeReplacedByAGeneratedValue_IsReadOrRefusedNamingTheItem()
    {
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "nft", "docker-29-bridge1-published-port.json"));
        Gen.Select(Gen.Int[0, MalformedCorpus.NftNodeCount(text) - 1], Value(2)).Sample((at, value) =>
        {
            var json = MalformedCorpus.Replaced(text, at, value);
            ReadsOrRefuses(() => NftJsonReader.Read(json), NamesAnItem);
        }, iter: 2_000);
    }

    private static readonly Gen<string> Token = Gen.OneOf<string>(
        Gen.OneOf("-A", "-I", "-j", "-g", "-m", "-p", "-s", "-d", "-i", "-o", "!", "--comment", "\"", "\"x y\"", "--dport", "--to-destination",
            "--ctstate", "--match-set", "[0:0]", "[x:y]", "[18446744073709551616:1]", "COMMIT", "*filter", ":FORWARD", "DROP", "ACCEPT", "RETURN",
            "DOCKER-USER", "999.1.1.1/77", "172.18.0.0/16", "tcp", "-w", "\\", "'", "#", ""),
        Gen.String[0, 8]);

    [Theory]
    [InlineData("iptables/docker-20.10-two-networks-isolated.save")]
    [InlineData("iptables/docker-28.5-bridge1-published-port.save")]
    public void IptablesSave_ADamagedLine_IsReadOrRefusedNamingALine(string fixture)
    {
        var lines = TestPaths.ReadShared(fixture).Split('\n');
        Gen.Select(Gen.Int[0, lines.Length - 1], Token.Array[0, 10], Gen.Int[0, 2]).Sample((at, tokens, how) =>
        {
            var copy = (string[])lines.Clone();
            var damaged = string.Join(' ', tokens);
            copy[at] = how switch { 0 => damaged, 1 => copy[at] + " " + damaged, _ => damaged + " " + copy[at] };
            var text = string.Join('\n', copy);
            ReadsOrRefuses(() => IptablesSaveReader.Read(text), ex => ex.Line >= 1 && ex.Line <= copy.Length);
        }, iter: 3_000);
    }
}
