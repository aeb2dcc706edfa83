using System.Text.RegularExpressions;

namespace Referloop.Http;

public static class WholeMatch
{
    /// <summary>
    /// Whether <paramref name="rule"/> (anchored with <c>^</c>) matches all of <paramref name="value"/>. The rules end in
    /// <c>$</c>, as the OpenAPI document shows them (the end of input in ECMAScript); in .NET <c>$</c> also matches before
    /// a final newline, which let a value one character longer than its column through (a 500 on PostgreSQL).
    /// </summary>
    public static bool IsWholeMatch(this Regex rule, string value) =>
        rule.Match(value) is { Success: true } match && match.Length == value.Length;
}
