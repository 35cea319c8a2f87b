using System.Security.Cryptography;
using System.Text;

namespace Dashboard.App.Access;

/// <summary>Bearer secrets (API and agent tokens): made from 32 random bytes, kept only as their SHA-256.</summary>
public static class Secrets
{
    /// <summary>A new token: <paramref name="prefix"/> then 43 URL-safe characters (256 random bits).</summary>
    public static string NewToken(string prefix) => prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Lower-case hex SHA-256 of the whole token: what the database keeps.</summary>
    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    /// <summary>Whether <paramref name="s"/> has the shape of a token with this prefix (checked before any lookup).</summary>
    public static bool LooksLike(string? s, string prefix) => s is { Length: >= 36 and <= 200 } && s.StartsWith(prefix, StringComparison.Ordinal) && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');
}
