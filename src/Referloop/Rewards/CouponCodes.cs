using System.Text;
using System.Text.Json;

namespace Referloop.Rewards;

/// <summary>The body of a JSON upload.</summary>
public sealed record CouponCodesInput(List<string?>? Codes);

/// <summary>What an upload did. <c>duplicates</c> counts codes already in the pool and codes repeated in the upload.</summary>
public sealed record CouponUploadResult(int Added, int Duplicates, int Available);

/// <summary>Reads and checks uploaded codes: JSON <c>{"codes": [...]}</c> or CSV/plain text with one code a line.</summary>
public static class CouponCodes
{
    public const int MaxLength = 100;
    public const int MaxPerUpload = 100_000;
    private const int MaxErrors = 20;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>The trimmed code, or null unless it is 1–100 printable characters.</summary>
    public static string? Clean(string? code)
    {
        var trimmed = code?.Trim();
        if (string.IsNullOrEmpty(trimmed) || trimmed.Length > MaxLength)
        {
            return null;
        }
        foreach (var c in trimmed)
        {
            if (char.IsControl(c) || char.IsSurrogate(c) || c is '\uFFFD' or '\uFEFF')
            {
                return null;
            }
        }
        return trimmed;
    }

    /// <summary>Codes in upload order (repeats kept, so they can be counted), or the errors keyed by JSON path or line.</summary>
    public static (List<string> Codes, Dictionary<string, string[]> Errors) ParseJson(string body)
    {
        CouponCodesInput? input;
        try
        {
            input = JsonSerializer.Deserialize<CouponCodesInput>(body, Json);
        }
        catch (JsonException error)
        {
            var field = error.Path is null or "$" ? "body" : error.Path.StartsWith("$.") ? error.Path[2..] : error.Path;
            return ([], new() { [field] = ["is not valid JSON of the form {\"codes\": [\"CODE-1\", \"CODE-2\"]}."] });
        }
        if (input?.Codes is null)
        {
            return ([], new() { ["codes"] = ["is required: an array of code strings."] });
        }
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var codes = new List<string>(input.Codes.Count);
        for (var i = 0; i < input.Codes.Count; i++)
        {
            if (Clean(input.Codes[i]) is { } code)
            {
                codes.Add(code);
            }
            else if (errors.Count < MaxErrors)
            {
                errors[$"codes[{i}]"] = [$"must be 1–{MaxLength} printable characters."];
            }
        }
        return (codes, errors);
    }

    /// <summary>
    /// One code a line, in the first column: CRLF or LF, blank lines skipped, a first line that reads <c>code</c> taken
    /// as a header, and a code in double quotes unquoted (<c>""</c> inside stands for one quote).
    /// </summary>
    public static (List<string> Codes, Dictionary<string, string[]> Errors) ParseCsv(string body)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var codes = new List<string>();
        var lines = body.TrimStart('\uFEFF').Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            var field = FirstField(line);
            if (codes.Count == 0 && errors.Count == 0 && string.Equals(field?.Trim(), "code", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            if (Clean(field) is { } code)
            {
                codes.Add(code);
            }
            else if (errors.Count < MaxErrors)
            {
                errors[$"line {i + 1}"] = [$"must hold a code of 1–{MaxLength} printable characters (got '{Shorten(line)}')."];
            }
        }
        return (codes, errors);
    }

    /// <summary>The first CSV field of a line; null when a quote is left open.</summary>
    private static string? FirstField(string line)
    {
        var text = line.TrimStart();
        if (!text.StartsWith('"'))
        {
            var comma = text.IndexOf(',');
            return comma < 0 ? text : text[..comma];
        }
        var value = new StringBuilder();
        for (var i = 1; i < text.Length; i++)
        {
            if (text[i] != '"')
            {
                value.Append(text[i]);
            }
            else if (i + 1 < text.Length && text[i + 1] == '"')
            {
                value.Append('"');
                i++;
            }
            else
            {
                return value.ToString();
            }
        }
        return null;
    }

    private static string Shorten(string line) => line.Length <= 40 ? line : line[..40] + "…";
}
