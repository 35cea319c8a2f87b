using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using Dashboard.TestSupport;

namespace Dashboard.Core.Tests.Firewall;

/// <summary>
/// What AFL++ found while fuzzing the readers (scripts/fuzz.sh; the figures are in the README): every input it kept
/// is read as the harness reads it, to a ruleset that the layout detector and the evaluator then take, or to a
/// <see cref="RulesetFormatException"/> naming the place; never another exception, each in bounded time.
/// </summary>
public class FuzzCorpusTests
{
    private static readonly FlowSpec Flow = new() { InInterface = "br-a", OutInterface = "br-b", Source = "172.18.0.2", Destination = "172.19.0.2" };

    [Fact]
    public void EveryInputTheFuzzerKept_IsAModelOrAFormatErrorNamingThePlace()
    {
        var corpus = MalformedCorpus.FuzzCorpus().ToList();
        Assert.True(corpus.Count(c => c.Reader == "iptables") >= 50, $"{corpus.Count(c => c.Reader == "iptables")} iptables inputs kept");
        Assert.True(corpus.Count(c => c.Reader == "nft") >= 50, $"{corpus.Count(c => c.Reader == "nft")} nft inputs kept");
        var (read, refused) = (0, 0);
        foreach (var (reader, name, text) in corpus)
        {
            var started = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                var ruleset = reader == "nft" ? NftJsonReader.Read(text) : IptablesSaveReader.Read(text, TableFamily.Ipv4);
                DockerLayoutDetector.Detect(ruleset);
                PacketEvaluator.Explain(ruleset, Flow);
                read++;
            }
            catch (RulesetFormatException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message), $"{reader}/{name}: a format error without a message");
                refused++;
            }

            Assert.True(started.Elapsed < TimeSpan.FromSeconds(2), $"{reader}/{name} took {started.Elapsed.TotalMilliseconds:0} ms");
        }

        Assert.True(read > 0 && refused > 0, $"{read} read, {refused} refused: the corpus should hold both");
    }
}
