using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Referloop.Http;

/// <summary>
/// Refuses with 400 a request whose query string or posted form holds a NUL character (<c>%00</c>): no value Referloop
/// takes has one, and PostgreSQL's text refuses it, which turned the bad request into a 500 wherever the value reached
/// a query (a filter, a search). ASP.NET Core's form reader throws on one (and on a malformed form), a 500 too.
/// </summary>
public static class NulGuard
{
    /// <summary>Forms as the pages post them; a larger one is left to its page, whose size limit applies before it is read.</summary>
    private const long FormBytes = 16 * 1024;

    public static IApplicationBuilder UseNulGuard(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        var request = http.Request;
        if (request.QueryString.Value?.Contains("%00", StringComparison.Ordinal) == true || !await FormReadsAsync(http))
        {
            await TypedResults.Problem(title: "The request is not valid.", statusCode: StatusCodes.Status400BadRequest,
                detail: "A value in the address or the form holds a NUL character (%00), or the form cannot be read.").ExecuteAsync(http);
            return;
        }
        await next(http);
    });

    /// <summary>What a JSON string with a NUL character is refused with.</summary>
    public const string JsonRule = "must not contain a NUL character (\\u0000).";

    private static ReadOnlySpan<byte> NulEscape => "\\u0000"u8;

    /// <summary>
    /// Refuses with 400, naming the field, a JSON body of the API holding <c>\u0000</c> in a string or a name: as in
    /// an address or a form, no value Referloop takes has one, and PostgreSQL's text refuses it. Runs after the routes'
    /// size limits: the body is read (and kept for the route) only up to them. The bytes are looked through for the
    /// escape first, a piece at a time whatever the body's size; only a body that has it is parsed.
    /// </summary>
    public static IApplicationBuilder UseJsonNulGuard(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        var request = http.Request;
        // Not an event: the hot path's body is not read twice, and TrackEvent checks its own strings. Only for a route
        // (authorised by now): a path nothing answers is not worth reading.
        if (request.ContentLength is not 0 && http.GetEndpoint() is not null && request.Path.StartsWithSegments("/api")
            && !request.Path.StartsWithSegments(Tracking.EventsApi.Path)
            && request.ContentType?.Contains("json", StringComparison.OrdinalIgnoreCase) == true)
        {
            request.EnableBuffering();
            var field = await HoldsNulEscapeAsync(request.Body, http.RequestAborted) ? await FieldWithNulAsync(request.Body, http.RequestAborted) : null;
            request.Body.Position = 0;
            if (field is not null)
            {
                await TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [JsonRule] },
                    title: "The request is not valid.", detail: "See 'errors' for each field and the rule it broke.").ExecuteAsync(http);
                return;
            }
        }
        await next(http);
    });

    /// <summary>Whether the body holds the escape <c>\u0000</c>, read from its start a piece at a time.</summary>
    internal static async Task<bool> HoldsNulEscapeAsync(Stream body, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            // The last bytes of a piece are kept before the next, so an escape split between two pieces is found.
            var kept = 0;
            int read;
            while ((read = await body.ReadAsync(buffer.AsMemory(kept), ct)) > 0)
            {
                var filled = kept + read;
                if (buffer.AsSpan(0, filled).IndexOf(NulEscape) >= 0)
                {
                    return true;
                }
                kept = Math.Min(filled, NulEscape.Length - 1);
                buffer.AsSpan(filled - kept, kept).CopyTo(buffer);
            }
            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            body.Position = 0;
        }
    }

    /// <summary>
    /// The field of a JSON body holding a NUL; <c>body</c> when the body has the escape but is not JSON without
    /// repeated names (the route would bind the last of them, unchecked); null when it holds none.
    /// </summary>
    private static async Task<string?> FieldWithNulAsync(Stream body, CancellationToken ct)
    {
        try
        {
            return FieldWithNul(await JsonNode.ParseAsync(body, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false },
                cancellationToken: ct), "");
        }
        catch (JsonException)
        {
            return "body";
        }
    }

    /// <summary>The path (<c>a.b[0].c</c>) of the first name or string value holding a NUL character, if any.</summary>
    public static string? FieldWithNul(JsonNode? node, string path) => node switch
    {
        JsonObject fields => fields
            .Select(field => (Path: path.Length == 0 ? field.Key : $"{path}.{field.Key}", field.Key, field.Value))
            .Select(field => field.Key.Contains('\0') ? field.Path : FieldWithNul(field.Value, field.Path))
            .FirstOrDefault(found => found is not null),
        JsonArray items => items.Select((item, i) => FieldWithNul(item, $"{path}[{i}]")).FirstOrDefault(found => found is not null),
        JsonValue value when value.GetValueKind() == JsonValueKind.String && value.GetValue<string>().Contains('\0') => path,
        _ => null,
    };

    private static async Task<bool> FormReadsAsync(HttpContext http)
    {
        var request = http.Request;
        // The pages' forms only: an inbound hook keeps its body as received, and reads it itself.
        if (request.ContentType?.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase) != true
            || request.ContentLength > FormBytes || request.Path.StartsWithSegments("/hooks") || request.Path.StartsWithSegments("/api"))
        {
            return true;
        }
        try
        {
            await request.ReadFormAsync(http.RequestAborted);
            return true;
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }
}
