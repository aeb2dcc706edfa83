using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Referloop.Http;

/// <summary>Marks a route that a browser may call with a campaign's publishable key as well as with the admin key.</summary>
public sealed record PublishableKeyAccess;

/// <summary>
/// Declares who may call each operation: the admin bearer key on the admin API, the admin key or a publishable key on
/// the routes a shop page calls, and nobody's key on the public routes (share links, hooks, scripts).
/// </summary>
internal sealed class BearerSecurityTransformer : IOpenApiDocumentTransformer, IOpenApiOperationTransformer
{
    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken ct)
    {
        document.Info.Title = "Referloop API";
        document.Info.Description = "Self-hosted referral programs with first-class webhooks. " +
            "Authenticate with 'Authorization: Bearer <admin key>'; a shop page uses the campaign's publishable key where an " +
            "operation says so. Operations without a security requirement are public.";
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes["Bearer"] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            Description = "An admin API key (rl_admin_…). Each key has a scope: full (everything; the only one that manages " +
                "keys and reads webhook secrets), read-only (GET requests) or events-only (POST /api/v1/events and reading " +
                "events). Each operation lists the scopes it allows in its description and in x-referloop-scopes; a key " +
                "outside them is refused with 403.",
        };
        document.Components.SecuritySchemes["PublishableKey"] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey,
            In = ParameterLocation.Header,
            Name = "X-Referloop-Key",
            Description = "A campaign's publishable key (pk_…): safe to embed in the shop's pages.",
        };
        return Task.CompletedTask;
    }

    public Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken ct)
    {
        var metadata = context.Description.ActionDescriptor.EndpointMetadata;
        var admin = metadata.OfType<IAuthorizeData>().Any();
        var publishable = metadata.OfType<PublishableKeyAccess>().Any();
        if (!admin && !publishable)
        {
            // Said outright rather than left out, so that no tool reads a public route as needing some key.
            operation.Security = [];
            return Task.CompletedTask;
        }
        operation.Security = [Requirement("Bearer", context.Document)];
        var scopes = Security.ApiKeyScope.Allowing(context.Description.HttpMethod ?? "GET", "/" + context.Description.RelativePath,
            new EndpointMetadataCollection(metadata));
        var allowed = $"Admin API key scopes allowed: {string.Join(", ", scopes)}.";
        operation.Description = string.IsNullOrEmpty(operation.Description) ? allowed : $"{operation.Description} {allowed}";
        operation.Extensions ??= new Dictionary<string, IOpenApiExtension>();
        operation.Extensions["x-referloop-scopes"] = new JsonNodeExtension(new JsonArray([.. scopes.Select(s => (JsonNode)JsonValue.Create(s))]));
        if (publishable)
        {
            operation.Security.Add(Requirement("PublishableKey", context.Document));
        }
        return Task.CompletedTask;
    }

    private static OpenApiSecurityRequirement Requirement(string scheme, OpenApiDocument? document) =>
        new() { [new OpenApiSecuritySchemeReference(scheme, document)] = [] };
}
