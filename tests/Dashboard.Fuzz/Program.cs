using System.Text;
using Dashboard.Core.Evaluation;
using Dashboard.Core.Firewall;
using SharpFuzz;

namespace Dashboard.Fuzz;

/// <summary>
/// The coverage-guided harness of the ruleset readers (AFL++ through SharpFuzz; <c>scripts/fuzz.sh</c> instruments
/// Dashboard.Core and runs it). One input is one dump: it must give a ruleset, which the layout detector and the
/// evaluator then take without failing, or a <see cref="RulesetFormatException"/>. Anything else escapes and AFL++
/// keeps the input as a crash; an input that takes longer than AFL's time limit is kept as a hang.
/// </summary>
public static class Program
{
    private static readonly FlowSpec Flow = new() { InInterface = "br-a", OutInterface = "br-b", Source = "172.18.0.2", Destination = "172.19.0.2" };

    public static int Main(string[] args)
    {
        var reader = args.Length == 1 ? args[0] : "";
        Func<string, Ruleset>? read = reader switch
        {
            "iptables" => text => IptablesSaveReader.Read(text, TableFamily.Ipv4),
            "nft" => NftJsonReader.Read,
            "any" => RulesetReader.Read,
            _ => null,
        };
        if (read is null)
        {
            Console.Error.WriteLine("usage: Dashboard.Fuzz iptables|nft|any   (input on stdin, as afl-fuzz gives it)");
            return 2;
        }

        Fuzzer.OutOfProcess.Run(stream => Once(stream, read));
        return 0;
    }

    /// <summary>Reads one input; also the regression path of the crashes kept under tests/Dashboard.Core.Tests/Fixtures/fuzz.</summary>
    public static void Once(Stream input, Func<string, Ruleset> read)
    {
        using var text = new StreamReader(input, Encoding.UTF8);
        Ruleset ruleset;
        try
        {
            ruleset = read(text.ReadToEnd());
        }
        catch (RulesetFormatException)
        {
            return;
        }

        DockerLayoutDetector.Detect(ruleset);
        PacketEvaluator.Explain(ruleset, Flow);
    }
}
