using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Net.Http.Headers;
using Referloop.Http;

namespace Referloop.InboundHooks;

/// <summary>Why a body could not be read: the HTTP status to answer and a message for the sender.</summary>
public sealed record BodyError(int Status, string Title, string Detail);

/// <summary>
/// Turns an inbound body into a JSON object according to its Content-Type: JSON as is, form data with nested keys
/// (<c>products[0][name]</c>) as objects and arrays. A body that does not match its Content-Type is refused with a
/// message saying so, rather than guessed at.
/// </summary>
public static class InboundBody
{
    public const int MaxBytes = 1024 * 1024;

    /// <summary>Form keys such as <c>products[5000][name]</c> must not make us allocate huge arrays.</summary>
    public const int MaxArrayIndex = 999;

    private const int MaxDepth = 16;

    public static bool IsJson(MediaTypeHeaderValue? type) =>
        type is not null && (type.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || type.MediaType.Value?.EndsWith("+json", StringComparison.OrdinalIgnoreCase) == true);

    public static bool IsForm(MediaTypeHeaderValue? type) =>
        type is not null && type.MediaType.Equals("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Parses <paramref name="body"/>; an empty body is an empty object whatever the Content-Type says. A value or key
    /// holding a NUL character is refused: no field Referloop reads has one, and PostgreSQL's text refuses it.
    /// </summary>
    public static (JsonObject? Payload, BodyError? Error) Parse(string? contentType, string body)
    {
        var (payload, error) = Read(contentType, body);
        return payload is not null && NulGuard.FieldWithNul(payload, "") is { } field
            ? (null, new BodyError(StatusCodes.Status400BadRequest, "A value is not valid.",
                $"'{Shorten(field.Replace("\0", "\\u0000", StringComparison.Ordinal))}' holds a NUL character (\\u0000 or %00), which no field may."))
            : (payload, error);
    }

    private static (JsonObject? Payload, BodyError? Error) Read(string? contentType, string body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return (new JsonObject(), null);
        }
        MediaTypeHeaderValue.TryParse(contentType, out var type);
        if (IsJson(type))
        {
            return ParseJson(body);
        }
        if (IsForm(type))
        {
            var trimmed = body.TrimStart();
            if (trimmed.StartsWith('{') || trimmed.StartsWith('['))
            {
                return (null, Mismatch("The body looks like JSON, but the Content-Type is application/x-www-form-urlencoded. " +
                    "Send JSON with 'Content-Type: application/json', or form fields (email=…&firstName=…) as form data."));
            }
            return ParseForm(body);
        }
        return (null, new BodyError(StatusCodes.Status415UnsupportedMediaType, "Unsupported Content-Type.",
            $"The Content-Type '{contentType ?? "(none)"}' is not accepted. Send 'Content-Type: application/json' with a JSON body, " +
            "or 'Content-Type: application/x-www-form-urlencoded' with form fields."));
    }

    private static BodyError Mismatch(string detail) =>
        new(StatusCodes.Status415UnsupportedMediaType, "The body does not match its Content-Type.", detail);

    private static (JsonObject?, BodyError?) ParseJson(string body)
    {
        JsonNode? node;
        try
        {
            // A name given twice is refused here: JsonObject would throw only when the object is first read.
            node = JsonNode.Parse(body, documentOptions: new JsonDocumentOptions { MaxDepth = 64, AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            var trimmed = body.TrimStart();
            if (!trimmed.StartsWith('{') && !trimmed.StartsWith('[') && trimmed.Contains('='))
            {
                return (null, Mismatch("The Content-Type is application/json, but the body looks like form data (key=value&…). " +
                    "Send form data with 'Content-Type: application/x-www-form-urlencoded', or send JSON."));
            }
            var where = e.LineNumber is { } line ? $" (line {line + 1}, position {e.BytePositionInLine + 1})" : "";
            return (null, new BodyError(StatusCodes.Status400BadRequest, "The body is not valid JSON.",
                $"The Content-Type is application/json, but the body is not valid JSON{where}."));
        }
        return node is JsonObject payload
            ? (payload, null)
            : (null, new BodyError(StatusCodes.Status400BadRequest, "The body must be a JSON object.",
                "The body is JSON, but not an object: send the fields as {\"email\": …, …}."));
    }

    private static (JsonObject?, BodyError?) ParseForm(string body)
    {
        var root = new JsonObject();
        foreach (var pair in body.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=');
            var key = WebUtility.UrlDecode(equals < 0 ? pair : pair[..equals]);
            var value = equals < 0 ? "" : WebUtility.UrlDecode(pair[(equals + 1)..]);
            if (string.IsNullOrEmpty(key))
            {
                continue;
            }
            var path = SplitKey(key);
            if (path is null)
            {
                return (null, new BodyError(StatusCodes.Status400BadRequest, "A form key is not valid.",
                    $"The form key '{Shorten(key)}' is malformed or nested too deeply; use keys such as products[0][name]."));
            }
            if (!Set(root, path, value))
            {
                return (null, new BodyError(StatusCodes.Status400BadRequest, "A form key is not valid.",
                    $"The form key '{Shorten(key)}' conflicts with another key or uses an index above {MaxArrayIndex}."));
            }
        }
        return (root, null);
    }

    private static string Shorten(string key) => key.Length <= 100 ? key : key[..100] + "…";

    /// <summary><c>a[b][0][]</c> → a, b, 0, "" (an empty segment appends to an array).</summary>
    private static List<string>? SplitKey(string key)
    {
        var open = key.IndexOf('[');
        if (open < 0)
        {
            return [key];
        }
        if (open == 0)
        {
            return null;
        }
        var segments = new List<string> { key[..open] };
        var rest = key.AsSpan(open);
        while (!rest.IsEmpty)
        {
            if (rest[0] != '[')
            {
                return null;
            }
            var close = rest.IndexOf(']');
            if (close < 0)
            {
                return null;
            }
            segments.Add(rest[1..close].ToString());
            rest = rest[(close + 1)..];
            if (segments.Count > MaxDepth)
            {
                return null;
            }
        }
        return segments;
    }

    private static bool Set(JsonNode container, List<string> path, string value)
    {
        var node = container;
        for (var i = 0; i < path.Count; i++)
        {
            var last = i == path.Count - 1;
            var nextIsArray = !last && (path[i + 1].Length == 0 || int.TryParse(path[i + 1], out _));
            JsonNode? Create() => last ? JsonValue.Create(value) : nextIsArray ? new JsonArray() : new JsonObject();

            switch (node)
            {
                case JsonObject obj:
                    if (last)
                    {
                        obj[path[i]] = Create();
                        return true;
                    }
                    if (obj[path[i]] is not (JsonObject or JsonArray))
                    {
                        obj[path[i]] = Create();
                    }
                    node = obj[path[i]]!;
                    break;
                case JsonArray array:
                    int index;
                    if (path[i].Length == 0)
                    {
                        index = array.Count;
                    }
                    else if (!int.TryParse(path[i], out index) || index < 0)
                    {
                        return false;
                    }
                    if (index > MaxArrayIndex)
                    {
                        return false;
                    }
                    while (array.Count <= index)
                    {
                        array.Add(null);
                    }
                    if (last || array[index] is not (JsonObject or JsonArray))
                    {
                        array[index] = Create();
                    }
                    if (last)
                    {
                        return true;
                    }
                    node = array[index]!;
                    break;
                default:
                    return false;
            }
        }
        return true;
    }
}
