using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Referloop.Webhooks;

/// <summary>
/// The headers of an outbound request as the attempt log keeps them: a compact JSON object written in one pass, with
/// the endpoint's custom headers and anything credential-like replaced by <see cref="Redacted"/>, since the log is
/// shown to anyone with a read key and kept long after the request.
/// </summary>
public static class SentHeaders
{
    public const string Redacted = "[redacted]";

    /// <summary>The column's length: headers past it are left out, so the record (and the attempt) is never lost to it.</summary>
    public const int MaxLength = 8192;
    private const int Reserve = 64;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Names whose values are credentials wherever they appear, custom or not.</summary>
    private static readonly HashSet<string> Credentials = new(StringComparer.OrdinalIgnoreCase)
    {
        "Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "Api-Key", "X-Auth-Token",
    };

    public static string Record(HttpRequestMessage request, IReadOnlyDictionary<string, string> customHeaders)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            var headers = request.Content is null
                ? request.Headers.NonValidated
                : request.Headers.NonValidated.Concat(request.Content.Headers.NonValidated);
            foreach (var (name, values) in headers)
            {
                var value = IsSecret(name, customHeaders) ? Redacted : values.ToString();
                // An escaped character takes at most 6 bytes (\uXXXX), and a byte is at least a character of the column.
                if (writer.BytesCommitted + writer.BytesPending + (name.Length + value.Length + 2) * 6 > MaxLength - Reserve)
                {
                    writer.WriteString("…", "further headers left out");
                    break;
                }
                writer.WriteString(name, value);
            }
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static bool IsSecret(string name, IReadOnlyDictionary<string, string> customHeaders) =>
        Credentials.Contains(name)
        || name.Contains("secret", StringComparison.OrdinalIgnoreCase)
        || name.Contains("token", StringComparison.OrdinalIgnoreCase)
        || customHeaders.Keys.Any(custom => string.Equals(custom, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The stored JSON back as name → value, for the API and the dashboard.</summary>
    public static IReadOnlyDictionary<string, string>? Read(string? json) =>
        json is null ? null : JsonSerializer.Deserialize<Dictionary<string, string>>(json, Json);
}
