using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Mvc.Infrastructure;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Referloop.Campaigns;

namespace Referloop.Http;

/// <summary>
/// Makes each object schema say what the server enforces, from the attributes beside the properties:
/// <c>[Required]</c> (present and not null; a string also not blank), <c>[Values]</c> (an enum),
/// <c>[StringLength]</c> and <c>[Range]</c>. A request body lists as required only its <c>[Required]</c> members;
/// a member left out when null (<c>JsonIgnore WhenWritingNull</c>) is never required; a member holding any JSON
/// (<see cref="JsonNode"/>) accepts any value, null included, without a <c>oneOf</c> that null would match twice.
/// </summary>
internal sealed class ContractSchemaTransformer : IOpenApiSchemaTransformer
{
    public Task TransformAsync(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken ct)
    {
        if (context.JsonTypeInfo.Type == typeof(FraudAction) || context.JsonTypeInfo.Type == typeof(BrowserConversions))
        {
            // Written by converters of their own as lower-case names; a fraud check also reads true (block) and false (allow).
            var names = Enum.GetNames(context.JsonTypeInfo.Type).Select(n => (JsonNode)JsonValue.Create(n.ToLowerInvariant()));
            schema.Type = JsonSchemaType.String;
            schema.Enum = [.. names];
            if (context.JsonTypeInfo.Type == typeof(FraudAction))
            {
                schema.Type |= JsonSchemaType.Boolean;
                schema.Enum.Add(JsonValue.Create(true));
                schema.Enum.Add(JsonValue.Create(false));
            }
        }
        else if (context.JsonPropertyInfo is null && context.JsonTypeInfo.Kind == JsonTypeInfoKind.Object && schema.Properties is not null)
        {
            Describe(schema, context.JsonTypeInfo);
        }
        else if (context.ParameterDescription is { } parameter && parameter.ParameterDescriptor is IParameterInfoParameterDescriptor descriptor)
        {
            // Only [Values] on a query record's property: validation attributes on [AsParameters] members make the
            // document generator itself fail (it reads them back as the wrong array type).
            Constrain(schema, descriptor.ParameterInfo.GetCustomAttributes(typeof(ValuesAttribute), true).OfType<Attribute>().ToList());
        }
        return Task.CompletedTask;
    }

    private static void Describe(OpenApiSchema schema, JsonTypeInfo type)
    {
        var input = typeof(IValidatable).IsAssignableFrom(type.Type);
        schema.Required ??= new HashSet<string>();
        foreach (var property in type.Properties)
        {
            if (!schema.Properties!.TryGetValue(property.Name, out var propertySchema))
            {
                continue;
            }
            var attributes = Attributes(property);
            var required = attributes.OfType<RequiredAttribute>().Any();
            var omittedWhenNull = attributes.OfType<JsonIgnoreAttribute>()
                .Any(a => a.Condition is JsonIgnoreCondition.WhenWritingNull or JsonIgnoreCondition.WhenWritingDefault);
            if (required)
            {
                schema.Required.Add(property.Name);
                propertySchema = schema.Properties[property.Name] = NotNull(propertySchema);
            }
            else if (input || omittedWhenNull)
            {
                schema.Required.Remove(property.Name);
            }
            if (property.PropertyType == typeof(JsonNode) || property.PropertyType == typeof(JsonElement)
                || property.PropertyType == typeof(JsonElement?))
            {
                schema.Properties[property.Name] = new OpenApiSchema { Description = propertySchema.Description };
                continue;
            }
            if (propertySchema is OpenApiSchema inline)
            {
                if (omittedWhenNull)
                {
                    // Left out instead of written as null: when present it has a value.
                    inline.Type &= ~JsonSchemaType.Null;
                }
                Constrain(inline, attributes);
                if (required && inline.Type == JsonSchemaType.String && inline.Enum is not { Count: > 0 } && inline.Pattern is null)
                {
                    inline.MinLength = Math.Max(inline.MinLength ?? 0, 1);
                    inline.Pattern = @"\S"; // blank is refused like missing
                }
            }
        }
    }

    /// <summary>Applies <c>[Values]</c>, <c>[StringLength]</c>, <c>[MaxLength]</c> and <c>[Range]</c>.</summary>
    private static void Constrain(OpenApiSchema schema, IReadOnlyList<Attribute> attributes)
    {
        var target = schema.Type?.HasFlag(JsonSchemaType.Array) == true && schema.Items is OpenApiSchema items ? items : schema;
        foreach (var attribute in attributes)
        {
            switch (attribute)
            {
                case ValuesAttribute values:
                    target.Enum = [.. values.Values.Select(v => (JsonNode)JsonValue.Create(v))];
                    if (target.Type?.HasFlag(JsonSchemaType.Null) == true)
                    {
                        target.Enum.Add(null!);
                    }
                    break;
                case StringLengthAttribute length:
                    target.MaxLength = length.MaximumLength;
                    if (length.MinimumLength > 0)
                    {
                        target.MinLength = length.MinimumLength;
                    }
                    break;
                case MaxLengthAttribute maxLength when schema.Type?.HasFlag(JsonSchemaType.Array) == true:
                    schema.MaxItems = maxLength.Length;
                    break;
                case RegularExpressionAttribute regex:
                    target.Pattern = regex.Pattern;
                    break;
                case UrlAttribute:
                    target.Format = "uri";
                    break;
                case EmailAddressAttribute:
                    target.Format = "email";
                    break;
                case RangeAttribute range:
                    schema.Minimum = Convert.ToString(range.Minimum, CultureInfo.InvariantCulture);
                    schema.Maximum = Convert.ToString(range.Maximum, CultureInfo.InvariantCulture);
                    break;
            }
        }
    }

    /// <summary>The attributes of a property and, for a positional record, of its constructor parameter.</summary>
    private static List<Attribute> Attributes(JsonPropertyInfo property) =>
    [
        .. property.AttributeProvider?.GetCustomAttributes(true).OfType<Attribute>() ?? [],
        .. property.AssociatedParameter?.AttributeProvider?.GetCustomAttributes(true).OfType<Attribute>() ?? [],
    ];

    private static IOpenApiSchema NotNull(IOpenApiSchema schema)
    {
        if (schema is OpenApiSchema { OneOf: { Count: 2 } oneOf } && oneOf.FirstOrDefault(s => s is OpenApiSchemaReference) is { } reference)
        {
            return reference;
        }
        if (schema is OpenApiSchema inline && inline.Type is { } type)
        {
            inline.Type = type & ~JsonSchemaType.Null;
        }
        return schema;
    }
}
