using System.Buffers;
using System.Text;
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

    private static ReadOnlySpan<byte> Utf8Bom => [0xEF, 0xBB, 0xBF];

    /// <summary>
    /// Refuses with 400, naming the field, a JSON body of the API holding <c>\u0000</c> in a string or a name: as in
    /// an address or a form, no value Referloop takes has one, and PostgreSQL's text refuses it. Runs after the routes'
    /// size limits: the body is read (and kept for the route) only up to them. The bytes are looked through for the
    /// escape first, a piece at a time whatever the body's size; only a body that has it is walked, token by token.
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
    /// repeated names (the route would bind the last of them, unchecked); null when it holds none. Read a piece at a
    /// time: memory holds a piece (more for a longer single name or value), the path, and the names of the objects
    /// the walk is in, not the body as a tree.
    /// </summary>
    internal static async Task<string?> FieldWithNulAsync(Stream body, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        var walk = new NulWalk();
        var state = new JsonReaderState();
        try
        {
            var filled = 0;
            var first = true;
            while (true)
            {
                // A full piece at a time, however little each read brings: a token cut by a piece's end is read again
                // with the next one, and reading it again for every few bytes would cost its length squared.
                var ended = false;
                while (filled < buffer.Length && !ended)
                {
                    var read = await body.ReadAsync(buffer.AsMemory(filled), ct);
                    filled += read;
                    ended = read == 0;
                }
                // A byte order mark is not JSON, but the route's binding skips it, as a parse did.
                var skipped = first && buffer.AsSpan(0, filled).StartsWith(Utf8Bom) ? Utf8Bom.Length : 0;
                first = false;
                var consumed = skipped + walk.Read(buffer.AsSpan(skipped, filled - skipped), final: ended, ref state);
                if (ended)
                {
                    return walk.Found;
                }
                // What the reader could not take yet goes first in the next piece; a token longer than the buffer
                // makes it grow.
                buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                filled -= consumed;
                if (filled == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, filled).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
            }
        }
        catch (JsonException)
        {
            return "body";
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Walks a JSON document token by token, keeping the path to where it is (<c>a.b[0].c</c>) and the names of the
    /// objects it is in; <see cref="Found"/> is the first name or string value holding a NUL character. A repeated name
    /// or a document that is not JSON throws <see cref="JsonException"/>.
    /// </summary>
    private sealed class NulWalk
    {
        private sealed class Level(bool array)
        {
            public bool Array { get; } = array;
            public int Index { get; set; } = -1;
            public string Name { get; set; } = "";
            public HashSet<string>? Names { get; } = array ? null : [];
        }

        private readonly List<Level> _levels = [];

        public string? Found { get; private set; }

        /// <summary>Reads what it can of <paramref name="json"/>; returns how many bytes it took.</summary>
        public int Read(ReadOnlySpan<byte> json, bool final, ref JsonReaderState state)
        {
            var reader = new Utf8JsonReader(json, final, state);
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        var level = _levels[^1];
                        level.Name = Text(ref reader);
                        if (!level.Names!.Add(level.Name))
                        {
                            throw new JsonException($"The name '{level.Name}' is repeated.");
                        }
                        if (level.Name.Contains('\0'))
                        {
                            Found ??= Path();
                        }
                        break;
                    case JsonTokenType.StartObject or JsonTokenType.StartArray:
                        Step();
                        _levels.Add(new Level(reader.TokenType == JsonTokenType.StartArray));
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        _levels.RemoveAt(_levels.Count - 1);
                        break;
                    case JsonTokenType.String:
                        Step();
                        // The raw escape may be an escaped backslash followed by "u0000"; only the value tells.
                        if (reader.ValueIsEscaped && reader.ValueSpan.IndexOf(NulEscape) >= 0 && Text(ref reader).Contains('\0'))
                        {
                            Found ??= Path();
                        }
                        break;
                    default:
                        Step();
                        break;
                }
            }
            state = reader.CurrentState;
            return (int)reader.BytesConsumed;
        }

        // A name or value that is not valid UTF-8 is no JSON either.
        private static string Text(ref Utf8JsonReader reader)
        {
            try
            {
                return reader.GetString()!;
            }
            catch (InvalidOperationException e)
            {
                throw new JsonException("A name or value is not valid UTF-8.", e);
            }
        }

        // A value in an array is its next item.
        private void Step()
        {
            if (_levels.Count > 0 && _levels[^1].Array)
            {
                _levels[^1].Index++;
            }
        }

        private string Path()
        {
            var path = new StringBuilder();
            foreach (var level in _levels)
            {
                if (level.Array)
                {
                    path.Append('[').Append(level.Index).Append(']');
                }
                else
                {
                    path.Append(path.Length == 0 ? "" : ".").Append(level.Name);
                }
            }
            return path.ToString();
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
