using System.Text.Json;
using System.Text.Json.Serialization;

namespace Referloop.Http;

/// <summary>
/// Refuses a JSON string holding a NUL character (<c>\u0000</c>) in a request body: no value Referloop takes has one,
/// and PostgreSQL's text refuses it, which turned the bad request into a 500 wherever the value reached a statement.
/// The serializer adds the field's path, so the answer is a 400 naming it (<see cref="BadRequestHandler"/>).
/// </summary>
public sealed class NulFreeStrings : JsonConverter<string>
{
    public const string Rule = "must not contain a NUL character (\\u0000).";

    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var value = reader.GetString();
        return value is not null && value.Contains('\0') ? throw new JsonException(Rule) : value;
    }

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);

    public override string ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var value = reader.GetString()!;
        return value.Contains('\0') ? throw new JsonException(Rule) : value;
    }

    public override void WriteAsPropertyName(Utf8JsonWriter writer, string value, JsonSerializerOptions options) =>
        writer.WritePropertyName(value);
}
