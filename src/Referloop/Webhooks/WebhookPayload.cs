using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Referloop.Webhooks;

/// <summary>The HTTP request one message becomes for one endpoint format. The signature covers <see cref="SignedContent"/> exactly.</summary>
public sealed record WebhookPayload(HttpMethod Method, string Url, string Body, string? ContentType)
{
    /// <summary>
    /// What the signature covers in place of Standard Webhooks' body: the body of a POST; for a GET (the <c>query</c>
    /// format, which has no body) the query string exactly as sent, without its <c>?</c> and neither decoded nor
    /// re-ordered, so that <c>orderID</c> or <c>purchaseValue</c> cannot be changed in the URL.
    /// </summary>
    public string SignedContent => Method == HttpMethod.Get ? QueryAsSent(Url) : Body;

    /// <summary>
    /// The query of <paramref name="url"/> as HttpClient writes it on the request line: it sends the
    /// <see cref="Uri"/>'s escaped path and query, so that is the form signed, not the string the URL was built from.
    /// </summary>
    public static string QueryAsSent(string url)
    {
        var query = new Uri(url).Query;
        return query.Length > 0 ? query[1..] : "";
    }

    public static string Timestamp(DateTimeOffset createdAt) =>
        createdAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    public static WebhookPayload Build(string format, string url, OutboxMessage message) => format switch
    {
        WebhookFormat.Form => new(HttpMethod.Post, url, Encode(FormFields(message)), "application/x-www-form-urlencoded"),
        WebhookFormat.Query => new(HttpMethod.Get, AppendQuery(url, QueryFields(message)), "", null),
        _ => new(HttpMethod.Post, url, JsonEnvelope(message), "application/json"),
    };

    /// <summary>
    /// <c>{"type","timestamp","message","data"}</c>, composed around the stored data text so that the body is the
    /// same bytes on every retry; <c>message</c> says in a sentence what happened (<see cref="WebhookMessageText"/>).
    /// </summary>
    public static string JsonEnvelope(OutboxMessage message)
    {
        var buffer = new ArrayBufferWriter<byte>(message.Data.Length + 256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("type", message.Type);
            writer.WriteString("timestamp", Timestamp(message.CreatedAt));
            writer.WriteString("message", WebhookMessageText.Describe(message.Type, message.Data));
            writer.WritePropertyName("data");
            writer.WriteRawValue(message.Data, skipInputValidation: true);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary><c>type</c>, <c>timestamp</c>, then every field of data flattened: <c>referral.id</c> → <c>referral_id</c>.</summary>
    public static List<KeyValuePair<string, string>> FormFields(OutboxMessage message)
    {
        var fields = new List<KeyValuePair<string, string>>
        {
            new("type", message.Type),
            new("timestamp", Timestamp(message.CreatedAt)),
        };
        using var data = JsonDocument.Parse(message.Data);
        Flatten(data.RootElement, null, fields, snakeCase: true);
        return fields;
    }

    /// <summary>
    /// <c>conversion</c> passes its data through with the exact parameter names receivers of the classic
    /// conversion callback expect (<c>orderID</c>, <c>purchaseValue</c>, …) and nothing else; other types
    /// are sent like the form format.
    /// </summary>
    public static List<KeyValuePair<string, string>> QueryFields(OutboxMessage message)
    {
        if (message.Type != EventTypes.Conversion)
        {
            return FormFields(message);
        }
        var fields = new List<KeyValuePair<string, string>>();
        using var data = JsonDocument.Parse(message.Data);
        Flatten(data.RootElement, null, fields, snakeCase: false);
        return fields;
    }

    private static void Flatten(JsonElement element, string? prefix, List<KeyValuePair<string, string>> fields, bool snakeCase)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    var name = snakeCase ? JsonNamingPolicy.SnakeCaseLower.ConvertName(property.Name) : property.Name;
                    Flatten(property.Value, prefix is null ? name : $"{prefix}_{name}", fields, snakeCase);
                }
                break;
            case JsonValueKind.Array when element.EnumerateArray().All(item => item.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array)):
                // A list of plain values (roles, tags) reads best as one comma-separated field.
                fields.Add(new(prefix ?? "value", string.Join(',', element.EnumerateArray().Select(Scalar))));
                break;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    Flatten(item, $"{prefix}_{index++}", fields, snakeCase);
                }
                break;
            default:
                fields.Add(new(prefix ?? "value", Scalar(element)));
                break;
        }
    }

    private static string Scalar(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!,
        JsonValueKind.Null or JsonValueKind.Undefined => "",
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => value.GetRawText(),
    };

    private static string Encode(IEnumerable<KeyValuePair<string, string>> fields)
    {
        var text = new StringBuilder();
        foreach (var (key, value) in fields)
        {
            if (text.Length > 0)
            {
                text.Append('&');
            }
            text.Append(Uri.EscapeDataString(key)).Append('=').Append(Uri.EscapeDataString(value));
        }
        return text.ToString();
    }

    private static string AppendQuery(string url, List<KeyValuePair<string, string>> fields)
    {
        if (fields.Count == 0)
        {
            return url;
        }
        var fragment = url.IndexOf('#');
        if (fragment >= 0)
        {
            url = url[..fragment];
        }
        var separator = url.Contains('?') ? (url.EndsWith('?') || url.EndsWith('&') ? "" : "&") : "?";
        return url + separator + Encode(fields);
    }
}
