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
    [Fact]
    public void NftJson_EveryNodeReplacedByEveryKindOfValue_IsAModelOrAFormatErrorNamingTheItem()
    {
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "nft", "docker-29-bridge1-published-port.json"));
        var tried = 0;
        var refused = 0;
        foreach (var mutated in MalformedCorpus.NftMutations(text))
        {
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
                Assert.Fail($"{ex.GetType().Name} for a mutation of the dump: {ex.Message}");
            }
        }

        Assert.True(MalformedCorpus.NftNodeCount(text) > 500);
        Assert.InRange(refused, 1, tried - 1); // some changes are harmless, many are refused
    }

    [Theory]
    [InlineData("iptables/docker-20.10-two-networks-isolated.save")]
    [InlineData("iptables/docker-17-seed-accept.save")]
    [InlineData("iptables/docker-28.5-bridge1-published-port.save")]
    public void IptablesSave_EveryLineTwisted_IsAModelOrAFormatErrorNamingTheLine(string fixture)
    {
        var text = TestPaths.ReadShared(fixture);
        var lines = text.Split('\n').Length;
        foreach (var (line, mutated) in MalformedCorpus.IptablesMutations(text))
        {
            try
            {
                IptablesSaveReader.Read(mutated);
            }
            catch (RulesetFormatException ex)
            {
                Assert.True(ex.Line >= 1 && ex.Line <= lines, $"line {ex.Line} of {lines}: {ex.Message}");
            }
            catch (Exception ex)
            {
                Assert.Fail($"{ex.GetType().Name} for line {line} twisted: {ex.Message}");
            }
        }
    }
}
