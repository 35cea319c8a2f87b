using Dashboard.Core.Experiments;

namespace Dashboard.Core.Tests.Experiments;

/// <summary>A scenario's JSON that cannot be read is said in the scenario's words, with where: never a .NET type's name.</summary>
public class ScenarioJsonErrorsTests
{
    private static string Error(string json, bool strict = true)
    {
        var ex = Assert.Throws<ScenarioException>(() => ScenarioDefinition.Parse(json, strict));
        var message = Assert.Single(ex.Errors);
        Assert.DoesNotContain("System.", message, StringComparison.Ordinal);
        Assert.DoesNotContain("Dashboard.", message, StringComparison.Ordinal);
        Assert.DoesNotContain("IReadOnlyList", message, StringComparison.Ordinal);
        return message;
    }

    [Fact]
    public void AStringWhereNetworksGo_SaysAListOfNetworks_AndWhatWasFound()
    {
        var m = Error("""{ "networks": "net1" }""");
        Assert.StartsWith("$.networks (line 1, column ", m, StringComparison.Ordinal);
        Assert.Contains("expected a list ([…]) of networks, each { \"name\", \"internal\", \"icc\" }", m, StringComparison.Ordinal);
        Assert.EndsWith("found the string \"net1\"", m, StringComparison.Ordinal);
    }

    [Fact]
    public void AProbeCountInWords_SaysAWholeNumber_WithItsPath()
    {
        var m = Error("""
            {
              "networks": [{ "name": "net1" }],
              "containers": [{ "name": "c1", "network": "net1" }],
              "probes": [{ "kind": "ping", "from": "c1", "to": "c1", "count": "three" }],
              "variants": [{ "name": "v", "rules": [] }],
              "captures": []
            }
            """);
        Assert.StartsWith("$.probes[0].count (line 4, column ", m, StringComparison.Ordinal);
        Assert.EndsWith("expected a whole number, found the string \"three\"", m, StringComparison.Ordinal);
    }

    [Fact]
    public void ARulePositionNotANumber_SaysAWholeNumberOrNull()
    {
        var m = Error("""{ "variants": [{ "name": "v", "rules": [{ "chain": "DOCKER-USER", "position": true }] }] }""");
        Assert.StartsWith("$.variants[0].rules[0].position", m, StringComparison.Ordinal);
        Assert.Contains("expected a whole number or null, found true", m, StringComparison.Ordinal);
    }

    [Fact]
    public void AMisspelledField_IsNamed_WithTheFieldsThereAre()
    {
        var m = Error("""{ "netwroks": [] }""");
        Assert.Contains("has no field \"netwroks\"", m, StringComparison.Ordinal);
        Assert.Contains("\"networks\", \"containers\", \"probes\", \"variants\", \"captures\", \"trace\"", m, StringComparison.Ordinal);

        var inRule = Error("""{ "variants": [{ "name": "v", "rules": [{ "chain": "DOCKER-USER", "sauce": "net:net1" }] }] }""");
        Assert.Contains("a rule has no field \"sauce\"", inRule, StringComparison.Ordinal);
        Assert.Contains("\"source\"", inRule, StringComparison.Ordinal);
    }

    [Fact]
    public void BrokenJson_SaysWhereItBreaks()
    {
        var m = Error("{ \"networks\": [\n  { \"name\": \"net1\" ,, }\n] }");
        Assert.StartsWith("not valid JSON (line 2, column ", m, StringComparison.Ordinal);
    }

    [Fact]
    public void AStoredScenario_IsReadWithoutStrictness_TheSeedRoundTrips()
    {
        var json = ScenarioDefinition.Seed.ToJson();
        Assert.Equal(json, ScenarioDefinition.Parse(json, strict: true).ToJson());
        var withExtra = json.Insert(json.LastIndexOf('}'), ", \"note\": \"kept from an older version\"");
        Assert.Equal(json, ScenarioDefinition.Parse(withExtra).ToJson());
        Assert.Throws<ScenarioException>(() => ScenarioDefinition.Parse(withExtra, strict: true));
    }
}
