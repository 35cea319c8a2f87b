using Dashboard.Core.Experiments;

namespace Dashboard.Core.Tests.Experiments;

/// <summary>A variant's rules run without approval, so they may touch only the run's own networks and containers.</summary>
public class ScenarioDefinitionTests
{
    private static string With(string rule) => $$"""
        {"networks":[{"name":"net1"},{"name":"net2"}],"containers":[{"name":"c1","network":"net1"},{"name":"c2","network":"net2"}],
         "probes":[{"kind":"ping","from":"c2","to":"c1"}],"variants":[{"name":"v","rules":[{{rule}}]}],"captures":["net1"]}
        """;

    [Theory]
    [InlineData("""{"chain":"FORWARD","position":1,"target":"ACCEPT"}""", "never INPUT, OUTPUT, FORWARD or raw")]
    [InlineData("""{"chain":"DOCKER-USER","position":1,"target":"ACCEPT"}""", "would match every packet the chain sees")]
    [InlineData("""{"chain":"INPUT","source":"net:net1","target":"DROP"}""", "never INPUT")]
    [InlineData("""{"chain":"OUTPUT","destination":"ctr:c1","target":"DROP"}""", "never INPUT, OUTPUT")]
    [InlineData("""{"table":"raw","chain":"PREROUTING","target":"DROP"}""", "table filter")]
    [InlineData("""{"chain":"DOCKER-USER","source":"172.16.0.0/12","target":"ACCEPT"}""", "'172.16.0.0/12' is not net:<network> or ctr:<container>")]
    [InlineData("""{"chain":"DOCKER-USER","source":"net:nowhere","target":"ACCEPT"}""", "'net:nowhere' is not")]
    public void Parse_VariantRuleBeyondTheRun_IsRefused_NamingTheRule(string rule, string reason)
    {
        var ex = Assert.Throws<ScenarioException>(() => ScenarioDefinition.Parse(With(rule)));

        Assert.Contains(ex.Errors, e => e.StartsWith("variant v: rule '", StringComparison.Ordinal) && e.Contains(reason, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("""{"chain":"DOCKER-USER","source":"net:net2","destination":"net:net1","target":"ACCEPT"}""")]
    [InlineData("""{"chain":"DOCKER-ISOLATION-STAGE-1","source":"net:net2","target":"ACCEPT"}""")]
    [InlineData("""{"chain":"DOCKER-USER","destination":"ctr:c1","protocol":"tcp","destinationPort":80,"target":"DROP"}""")]
    public void Parse_VariantRuleBoundToTheRun_IsAccepted(string rule) => Assert.Single(ScenarioDefinition.Parse(With(rule)).Variants);

    [Fact]
    public void Seed_EveryVariant_IsBoundToTheRun() => Assert.Equal(3, ScenarioDefinition.Parse(ScenarioDefinition.Seed.ToJson()).Variants.Count);
}
