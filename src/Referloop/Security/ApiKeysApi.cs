using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;
using Referloop.Http;
using Referloop.Storage;

namespace Referloop.Security;

/// <param name="Scope"><c>full</c> (default), <c>read-only</c> (GET only) or <c>events-only</c> (report and read events).</param>
public sealed record CreateApiKey([Required, StringLength(100)] string? Name, [Values(typeof(ApiKeyScope))] string? Scope = null) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        errors.Required("name", Name, 100);
        if (Scope is not null)
        {
            errors.OneOf("scope", Scope, ApiKeyScope.All);
        }
    }
}

public sealed record ApiKeyResponse(string Id, string Name, string Prefix, [property: Values(typeof(ApiKeyScope))] string Scope, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt)
{
    public static ApiKeyResponse From(ApiKey key) => new(key.Id, key.Name, key.Prefix, key.Scope, key.CreatedAt, key.RevokedAt);
}

/// <summary>The one time a key is shown in full.</summary>
public sealed record CreatedApiKey(string Id, string Name, string Prefix, [property: Values(typeof(ApiKeyScope))] string Scope, DateTimeOffset CreatedAt, string Key);

internal static class ApiKeysApi
{
    public static RouteGroupBuilder MapApiKeys(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/api-keys")
            .WithTags("API keys")
            .RequireAuthorization(AdminAuthentication.Policy)
            .RequireFullScope()
            .WithValidation();

        group.MapPost("/", Create).WithName("CreateApiKey").WithSummary("Create an admin API key; the key is shown only in this answer")
            .WithDescription("scope: full (default; everything, and the only scope that manages keys), read-only (GET requests " +
                "only, no secrets) or events-only (POST /api/v1/events and reading events).");
        group.MapGet("/", List).WithName("ListApiKeys").WithSummary("List admin API keys (never the keys themselves)");
        group.MapDelete("/{id}", Revoke).WithName("RevokeApiKey").WithSummary("Revoke an admin API key");
        return group;
    }

    private static async Task<Created<CreatedApiKey>> Create(CreateApiKey input, ReferloopDb db, TimeProvider clock, CancellationToken ct)
    {
        var (key, token) = AdminKeys.New(input.Name!.Trim(), clock.GetUtcNow(), input.Scope ?? ApiKeyScope.Full);
        db.ApiKeys.Add(key);
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/api-keys/{key.Id}",
            new CreatedApiKey(key.Id, key.Name, key.Prefix, key.Scope, key.CreatedAt, token));
    }

    private static async Task<Ok<List<ApiKeyResponse>>> List(ReferloopDb db, CancellationToken ct)
    {
        var keys = await db.ApiKeys.AsNoTracking().OrderBy(k => k.Id).ToListAsync(ct);
        return TypedResults.Ok(keys.Select(ApiKeyResponse.From).ToList());
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Revoke(string id, ClaimsPrincipal user, ReferloopDb db,
        IMemoryCache cache, TimeProvider clock, CancellationToken ct)
    {
        // The check that another full key stays active and the revocation are one transaction: two revocations of the
        // last two full keys at once would each see the other key still active and lock every admin out. On
        // PostgreSQL the active full keys are locked first, so the second waits for the first and then sees its key
        // revoked; on SQLite the transaction holds the one writer (SqliteWriteQueue) from before the check.
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        if (!db.OnSqlite)
        {
            await db.Database.ExecuteSqlAsync(
                $"""SELECT 1 FROM api_keys WHERE "Scope" = {ApiKeyScope.Full} AND "RevokedAt" IS NULL ORDER BY "Id" FOR UPDATE""", ct);
        }
        var key = await db.ApiKeys.FirstOrDefaultAsync(k => k.Id == id, ct);
        if (key is null)
        {
            return Problems.NotFound("API key", id);
        }
        if (key.RevokedAt is null)
        {
            var othersActive = await db.ApiKeys.AnyAsync(k => k.Id != id && k.RevokedAt == null && k.Scope == ApiKeyScope.Full, ct);
            if (!othersActive && key.Scope == ApiKeyScope.Full)
            {
                return Problems.Conflict("This is the last active full-scope admin key; create another before revoking it.");
            }
            key.RevokedAt = clock.GetUtcNow();
            await db.SaveChangesAsync(ct);
            await transaction.CommitAsync(ct);
            cache.Remove(AdminAuthentication.CacheKey(key.Hash));
        }
        return TypedResults.NoContent();
    }
}
