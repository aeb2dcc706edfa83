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
            Write(writer, request.Headers, customHeaders);
            if (request.Content is not null)
            {
                Write(writer, request.Content.Headers, customHeaders);
            }
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void Write(Utf8JsonWriter writer, System.Net.Http.Headers.HttpHeaders headers,
        IReadOnlyDictionary<string, string> customHeaders)
    {
        foreach (var (name, values) in headers.NonValidated)
        {
            writer.WriteString(name, IsSecret(name, customHeaders) ? Redacted : values.ToString());
        }
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
