using System.Reflection;
using System.Text.Json;

namespace Dashboard.Core.Experiments;

/// <summary>
/// A scenario's JSON that cannot be read, said in the scenario's own words: where (the path, line and column) and what
/// belongs there ("a whole number", "a list of rules { "chain", … }") beside what was found, never a .NET type's name.
/// </summary>
public static class ScenarioJsonErrors
{
    /// <summary>The message for <paramref name="ex"/>, thrown while reading <paramref name="json"/> as a scenario.</summary>
    public static string Describe(string json, JsonException ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        var at = Where(ex);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json ?? "", new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException syntax)
        {
            // Not JSON at all: the reader's own sentence (it names characters, never types), without its location suffix.
            return $"not valid JSON{Where(syntax)}: {Sentence(syntax.Message)}";
        }

        using (doc)
        {
            var path = ex.Path ?? "$";
            var (expected, found, unknown) = Explain(doc.RootElement, path);
            if (unknown is not null)
            {
                return $"{Show(path)}{at}: {found} has no field \"{unknown}\"; {expected}";
            }

            return $"{Show(path)}{at}: expected {expected}{(found is null ? "" : ", found " + found)}";
        }
    }

    private static string Show(string path) => path == "$" ? "the scenario" : path;

    private static string Where(JsonException ex) =>
        ex.LineNumber is { } line ? $" (line {line + 1}{(ex.BytePositionInLine is { } col ? $", column {col + 1}" : "")})" : "";

    /// <summary>The sentence of a reader's message, without " Path: … | LineNumber: …".</summary>
    private static string Sentence(string message)
    {
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        var s = cut >= 0 ? message[..cut] : message;
        cut = s.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return (cut >= 0 ? s[..cut] : s).TrimEnd('.', ' ', '|');
    }

    /// <summary>Walks <paramref name="path"/> over the scenario's shape and its JSON at once: what belongs at its end and what is there.</summary>
    private static (string Expected, string? Found, string? Unknown) Explain(JsonElement root, string path)
    {
        var type = typeof(ScenarioDefinition);
        JsonElement? at = root;
        foreach (var step in Steps(path))
        {
            if (step.Index is { } i)
            {
                type = ElementOf(type) ?? type;
                at = at is { ValueKind: JsonValueKind.Array } arr && i < arr.GetArrayLength() ? arr[i] : null;
                continue;
            }

            var property = PropertyOf(type, step.Name!);
            if (property is null)
            {
                return ($"its fields are {Fields(type)}", Noun(type), step.Name);
            }

            type = property.PropertyType;
            at = at is { ValueKind: JsonValueKind.Object } obj && TryGet(obj, step.Name!, out var v) ? v : null;
        }

        return (Words(type), at is { } found ? Found(found) : null, null);
    }

    private sealed record Step(string? Name, int? Index);

    /// <summary>The steps of a reader's path: <c>$.variants[1].rules[0].position</c>, <c>$['odd name']</c>.</summary>
    private static IEnumerable<Step> Steps(string path)
    {
        var i = path.StartsWith('$') ? 1 : 0;
        while (i < path.Length)
        {
            if (path[i] == '.')
            {
                var end = i + 1;
                while (end < path.Length && path[end] is not ('.' or '['))
                {
                    end++;
                }

                yield return new Step(path[(i + 1)..end], null);
                i = end;
            }
            else if (path[i] == '[')
            {
                var close = path.IndexOf(']', i);
                if (close < 0)
                {
                    yield break;
                }

                var inside = path[(i + 1)..close];
                if (inside.Length >= 2 && inside[0] == '\'' && inside[^1] == '\'')
                {
                    yield return new Step(inside[1..^1], null);
                }
                else if (int.TryParse(inside, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index))
                {
                    yield return new Step(null, index);
                }

                i = close + 1;
            }
            else
            {
                yield break;
            }
        }
    }

    private static bool TryGet(JsonElement obj, string name, out JsonElement value)
    {
        foreach (var p in obj.EnumerateObject())
        {
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                value = p.Value;
                return true;
            }
        }

        value = default;
        return false;
    }

    private static PropertyInfo? PropertyOf(Type type, string name) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).FirstOrDefault(p => p.CanRead && string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase) && p.Name != "EqualityContract");

    private static Type? ElementOf(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyList<>) ? type.GetGenericArguments()[0] : null;

    private static string JsonName(string name) => JsonNamingPolicy.CamelCase.ConvertName(name);

    private static string Fields(Type type) =>
        string.Join(", ", type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.Name != "EqualityContract").Select(p => $"\"{JsonName(p.Name)}\""));

    /// <summary>What a value of <paramref name="type"/> is, in the scenario's words.</summary>
    private static string Words(Type type)
    {
        if (Nullable.GetUnderlyingType(type) is { } inner)
        {
            return Words(inner) + " or null";
        }

        if (ElementOf(type) is { } element)
        {
            return element == typeof(string) ? "a list of network names ([\"net1\", …])" : $"a list ([…]) of {Words(element)}";
        }

        return type switch
        {
            _ when type == typeof(string) => "a string in quotes",
            _ when type == typeof(bool) => "true or false",
            _ when type == typeof(int) => "a whole number",
            _ when type == typeof(ScenarioDefinition) => $"a scenario object {{ {Fields(type)} }}",
            _ when type == typeof(ScenarioNetwork) => $"networks, each {{ {Fields(type)} }}",
            _ when type == typeof(ScenarioContainer) => $"containers, each {{ {Fields(type)} }}",
            _ when type == typeof(ScenarioProbe) => $"probes, each {{ {Fields(type)} }} (kind \"ping\" or \"tcp\")",
            _ when type == typeof(ScenarioVariant) => $"variants, each {{ {Fields(type)} }}",
            _ when type == typeof(ScenarioRule) => $"rules, each {{ {Fields(type)} }}",
            _ => $"an object {{ {Fields(type)} }}",
        };
    }

    private static string Noun(Type type) => type switch
    {
        _ when type == typeof(ScenarioNetwork) => "a network",
        _ when type == typeof(ScenarioContainer) => "a container",
        _ when type == typeof(ScenarioProbe) => "a probe",
        _ when type == typeof(ScenarioVariant) => "a variant",
        _ when type == typeof(ScenarioRule) => "a rule",
        _ => "a scenario",
    };

    /// <summary>What the JSON holds there, briefly.</summary>
    private static string Found(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{Cut(e.GetString() ?? "")}\"",
        JsonValueKind.Number => $"the number {Cut(e.GetRawText())}",
        JsonValueKind.True or JsonValueKind.False => e.GetRawText(),
        JsonValueKind.Null => "null",
        JsonValueKind.Array => $"a list of {e.GetArrayLength()}",
        JsonValueKind.Object => "an object",
        _ => e.ValueKind.ToString().ToLowerInvariant(),
    };

    private static string Cut(string s) => s.Length > 40 ? s[..40] + "…" : s;
}
