using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Mvc.ModelBinding;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.OpenApi;
using Referloop.Idempotency;
using Referloop.Security;

namespace Referloop.Http;

/// <summary>
/// Adds to each operation the answers that the pipeline gives rather than the handler, read from the endpoint's own
/// metadata so they cannot drift from it: 400 for a body, query or Idempotency-Key that is not valid, 401 where a key is
/// required, 404 where the path names something, 409 and 422 for Idempotency-Key, 413 under a body-size limit, 415 for
/// a JSON body sent as something else, 403 where an API key's scope can be refused, 429 under a rate limit. Every error
/// is RFC 9457 problem details.
/// </summary>
internal sealed class ContractOperationTransformer : IOpenApiDocumentTransformer, IOpenApiOperationTransformer
{
    public const string Problem = "ProblemDetails";
    public const string ValidationProblem = "HttpValidationProblemDetails";
    public const string ScopeProblem = "ScopeProblemDetails";

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken ct)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        document.Components.Schemas[Problem] = ProblemSchema(errors: false);
        document.Components.Schemas[ValidationProblem] = ProblemSchema(errors: true);
        document.Components.Schemas[ScopeProblem] = ScopeProblemSchema();
        return Task.CompletedTask;
    }

    public Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken ct)
    {
        var description = context.Description;
        var metadata = description.ActionDescriptor.EndpointMetadata;
        var path = "/" + description.RelativePath?.TrimStart('/');
        var api = path.StartsWith("/api/v1/", StringComparison.Ordinal);
        var post = string.Equals(description.HttpMethod, HttpMethods.Post, StringComparison.OrdinalIgnoreCase);
        var jsonBody = description.ParameterDescriptions.Any(p => p.Source == BindingSource.Body);
        var query = description.ParameterDescriptions.Any(p => p.Source == BindingSource.Query);
        var idempotent = api && post;

        foreach (var parameter in operation.Parameters ?? [])
        {
            // Query binding ignores case; the document names parameters as clients write them.
            if (parameter is OpenApiParameter { In: ParameterLocation.Query, Name: { Length: > 0 } name } query1 && char.IsUpper(name[0]))
            {
                query1.Name = char.ToLowerInvariant(name[0]) + name[1..];
            }
            if (parameter is OpenApiParameter { In: ParameterLocation.Query, Name: "limit", Schema: OpenApiSchema { Maximum: null } limit })
            {
                limit.Minimum = "1";
                limit.Maximum = Paging.MaxLimit.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        if (idempotent)
        {
            operation.Parameters ??= [];
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = IdempotencyKeys.Header,
                In = ParameterLocation.Header,
                Description = "Makes a retry safe: the same key and request replay the first answer (with Idempotent-Replayed: true) " +
                    "for 24 hours; the key with another request is a 422, while the first still runs a 409.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = IdempotencyKeys.MaxKeyLength },
            });
        }

        if (jsonBody || query || idempotent)
        {
            Add(operation, context, StatusCodes.Status400BadRequest, "The body, a query parameter or the Idempotency-Key is not valid; 'errors' names each field.", ValidationProblem);
        }
        if (metadata.OfType<IAuthorizeData>().Any() || metadata.OfType<PublishableKeyAccess>().Any())
        {
            Add(operation, context, StatusCodes.Status401Unauthorized, "No key, or not a valid one.");
            var allowing = ApiKeyScope.Allowing(description.HttpMethod ?? HttpMethods.Get, path, new EndpointMetadataCollection(metadata));
            if (allowing.Length < ApiKeyScope.All.Length)
            {
                Add(operation, context, StatusCodes.Status403Forbidden,
                    $"The admin API key's scope does not allow this operation (it needs {string.Join(" or ", allowing)}); " +
                    "'scope' names the key's scope and 'requiredScopes' the ones that would do.", ScopeProblem);
            }
        }
        if (api && description.ParameterDescriptions.Any(p => p.Source == BindingSource.Path))
        {
            Add(operation, context, StatusCodes.Status404NotFound, "Nothing with this id.");
        }
        if (idempotent)
        {
            Add(operation, context, StatusCodes.Status409Conflict, "A request with this Idempotency-Key is still running, or the request conflicts with the current state.");
        }
        if (metadata.OfType<IRequestSizeLimitMetadata>().Any(m => m.MaxRequestBodySize is not null))
        {
            Add(operation, context, StatusCodes.Status413PayloadTooLarge, "The body is larger than this operation accepts.", ValidationProblem);
        }
        if (jsonBody)
        {
            Add(operation, context, StatusCodes.Status415UnsupportedMediaType, "The body was not sent as application/json.", ValidationProblem);
        }
        if (idempotent)
        {
            Add(operation, context, StatusCodes.Status422UnprocessableEntity, "The Idempotency-Key was used for another request.");
        }
        if (metadata.OfType<EnableRateLimitingAttribute>().Any())
        {
            Add(operation, context, StatusCodes.Status429TooManyRequests, "Too many requests; retry after the seconds in Retry-After.");
        }
        Order(operation);
        return Task.CompletedTask;
    }

    /// <summary>Adds a problem-details answer unless the operation declares that status itself.</summary>
    private static void Add(OpenApiOperation operation, OpenApiOperationTransformerContext context, int status, string description,
        string schema = Problem)
    {
        operation.Responses ??= [];
        var key = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (operation.Responses.TryGetValue(key, out var existing) && existing is OpenApiResponse declared)
        {
            // A ProducesProblem(...) of the route itself: keep its wording, give it the shared schema.
            if (declared.Content is { } content && content.TryGetValue("application/problem+json", out var media) && media.Schema is null or OpenApiSchemaReference { Reference.Id: "ProblemDetails" })
            {
                media.Schema = new OpenApiSchemaReference(schema, context.Document);
            }
            return;
        }
        operation.Responses[key] = new OpenApiResponse
        {
            Description = description,
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/problem+json"] = new() { Schema = new OpenApiSchemaReference(schema, context.Document) },
            },
        };
    }

    private static void Order(OpenApiOperation operation)
    {
        if (operation.Responses is not { Count: > 1 } responses)
        {
            return;
        }
        var sorted = responses.OrderBy(r => r.Key, StringComparer.Ordinal).ToList();
        responses.Clear();
        foreach (var (key, value) in sorted)
        {
            responses[key] = value;
        }
    }

    private static OpenApiSchema ScopeProblemSchema()
    {
        var schema = ProblemSchema(errors: false);
        var scope = new OpenApiSchema { Type = JsonSchemaType.String, Enum = [.. ApiKeyScope.All.Select(s => (JsonNode)JsonValue.Create(s))] };
        schema.Description = "RFC 9457 problem details for a request outside the API key's scope.";
        schema.Required!.Add("scope");
        schema.Required.Add("requiredScopes");
        schema.Properties!["scope"] = scope;
        schema.Properties["requiredScopes"] = new OpenApiSchema { Type = JsonSchemaType.Array, Items = scope, MinItems = 1 };
        return schema;
    }

    private static OpenApiSchema ProblemSchema(bool errors)
    {
        var text = new OpenApiSchema { Type = JsonSchemaType.String };
        var schema = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = errors
                ? "RFC 9457 problem details; 'errors' maps each field (its JSON path) to the rules it broke."
                : "RFC 9457 problem details.",
            Required = new HashSet<string> { "title", "status" },
            Properties = new Dictionary<string, IOpenApiSchema>
            {
                ["type"] = text,
                ["title"] = text,
                ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Minimum = "400", Maximum = "599" },
                ["detail"] = text,
                ["instance"] = text,
                ["traceId"] = text,
            },
        };
        if (errors)
        {
            schema.Properties["errors"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Array, Items = text },
            };
        }
        return schema;
    }
}
