using System.ComponentModel.DataAnnotations;
using System.Text;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Microsoft.OpenApi;
using Referloop.Http;
using Referloop.Outbound;
using Referloop.Security;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Rewards;

/// <summary>
/// A pool with its stock. <c>secret</c> appears only when the pool is created and when it is rotated;
/// <c>previousSecretExpiresAt</c> while a rotated-out secret still signs.
/// </summary>
public sealed record CouponPoolResponse(
    string Name,
    string CampaignId,
    string? CreateCouponUrl,
    int Available,
    int Allocated,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Secret { get; init; }

    /// <summary>After a rotation with an overlap: until then the previous secret signs create-coupon calls too.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DateTimeOffset? PreviousSecretExpiresAt { get; init; }
}

public sealed record CouponResponse(
    string Id,
    string Code,
    string Status,
    string Source,
    string? RewardId,
    string? ParticipantId,
    DateTimeOffset? AllocatedAt,
    DateTimeOffset CreatedAt);

public static class CouponStatus
{
    public const string Available = "available";
    public const string Allocated = "allocated";
}

/// <summary>The campaign and pool named in the route.</summary>
public sealed partial record PoolRoute(string Id, string Pool) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        if (!PoolName().IsWholeMatch(Pool))
        {
            errors.Add("pool", "must be 1–64 letters, digits, '_' or '-' (the name reward rules use in 'incentive.pool').");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex PoolName();
}

/// <summary>The body of <c>PUT …/coupon-pools/{pool}</c>: the whole settable state of a pool.</summary>
public sealed record CouponPoolInput([Url, StringLength(2048)] string? CreateCouponUrl) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        if (CreateCouponUrl is not null)
        {
            errors.HttpUrl("createCouponUrl", CreateCouponUrl);
        }
    }
}

public sealed record CouponPoolListQuery(string? Cursor, int? Limit) : IValidatable
{
    public void Validate(ValidationErrors errors) => Paging.ValidateQuery(errors, Cursor, Limit);
}

public sealed record CouponListQuery(string? Status, string? Cursor, int? Limit) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        if (Status is not null)
        {
            errors.OneOf("status", Status, CouponStatus.Available, CouponStatus.Allocated);
        }
        Paging.ValidateQuery(errors, Cursor, Limit);
    }
}

public static class CouponPoolsApi
{
    /// <summary>
    /// The HttpClient for create-coupon calls (guarded like every outbound client, and bounded in time) and the
    /// background service that makes them, outside the transactions that release rewards.
    /// </summary>
    public static IServiceCollection AddCouponPools(this IServiceCollection services)
    {
        services.AddSingleton<CouponRequests>();
        services.AddHostedService(provider => provider.GetRequiredService<CouponRequests>());
        services.AddGuardedHttpClient(CouponAllocator.HttpClientName,
            (_, client) => client.Timeout = CouponAllocator.CreateCouponTimeout,
            (_, handler) =>
            {
                handler.ConnectTimeout = CouponAllocator.CreateCouponTimeout;
                handler.PooledConnectionLifetime = TimeSpan.FromMinutes(5);
            });
        return services;
    }

    public static RouteGroupBuilder MapCouponPools(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/campaigns/{id}/coupon-pools")
            .WithTags("Coupon pools")
            .RequireAuthorization(AdminAuthentication.Policy)
            .WithValidation();

        group.MapGet("/", List).WithName("ListCouponPools")
            .WithSummary("List a campaign's coupon pools with their stock (available and allocated codes)");
        group.MapGet("/{pool}", Get).WithName("GetCouponPool").WithSummary("Get one coupon pool with its stock");
        group.MapPut("/{pool}", Put).WithName("PutCouponPool")
            .WithSummary("Create a pool, or set its create-coupon URL; the signing secret is returned when the pool is created");
        group.MapPost("/{pool}/rotate-secret", RotateSecret).WithName("RotateCouponPoolSecret")
            .WithSummary("Replace the secret that signs create-coupon calls; the old one signs too for overlapHours (default 24); the new secret is returned once");
        group.MapPost("/{pool}/coupons", Upload).WithName("UploadCoupons")
            .AddOpenApiOperationTransformer(DescribeUploadBody)
            .WithSummary("Upload codes as JSON {\"codes\": [...]} or CSV (one code a line); repeats are counted, not added; creates the pool if needed");
        group.MapGet("/{pool}/coupons", ListCoupons).WithName("ListCoupons")
            .WithSummary("List a pool's codes, oldest first, optionally only 'available' or 'allocated' ones");
        return group;
    }

    /// <summary>
    /// Declares both bodies in OpenAPI. <c>Accepts(...)</c> would do it too, but it also makes routing answer other
    /// content types with a bare 415 that speaks only of JSON; the handler answers them with a clearer one.
    /// </summary>
    private static async Task DescribeUploadBody(OpenApiOperation operation, OpenApiOperationTransformerContext context,
        CancellationToken ct)
    {
        operation.RequestBody = new OpenApiRequestBody
        {
            Required = true,
            Description = "JSON {\"codes\": [...]}, or CSV / plain text with one code a line (an optional first line 'code' is a header).",
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/json"] = new() { Schema = await context.GetOrCreateSchemaAsync(typeof(CouponCodesInput), null, ct) },
                ["text/csv"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String } },
                ["text/plain"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String } },
            },
        };
    }

    private static async Task<Results<Ok<Page<CouponPoolResponse>>, ProblemHttpResult>> List(string id,
        [AsParameters] CouponPoolListQuery query, ReferloopDb db, TimeProvider clock, CancellationToken ct)
    {
        if (!await db.Campaigns.AnyAsync(c => c.Id == id, ct))
        {
            return Problems.NotFound("campaign", id);
        }
        Paging.TryDecode(query.Cursor, out var after);
        var limit = query.Limit ?? Paging.DefaultLimit;
        var pools = db.CouponPools.AsNoTracking().Where(p => p.CampaignId == id);
        if (after is not null)
        {
            pools = pools.Where(p => string.Compare(p.Id, after) > 0);
        }
        var rows = await pools.OrderBy(p => p.Id).Take(limit + 1).ToListAsync(ct);
        var stock = await StockAsync(db, rows.Select(p => p.Id).ToList(), ct);
        return TypedResults.Ok(Paging.ToPage(rows, limit, p => p.Id, p => ToResponse(p, stock, clock.GetUtcNow())));
    }

    private static async Task<Results<Ok<CouponPoolResponse>, ProblemHttpResult>> Get([AsParameters] PoolRoute route,
        ReferloopDb db, TimeProvider clock, CancellationToken ct)
    {
        var pool = await FindAsync(db, route, ct);
        if (pool is null)
        {
            return Problems.NotFound("coupon pool", route.Pool);
        }
        return TypedResults.Ok(ToResponse(pool, await StockAsync(db, [pool.Id], ct), clock.GetUtcNow()));
    }

    private static async Task<Results<Created<CouponPoolResponse>, Ok<CouponPoolResponse>, ValidationProblem, ProblemHttpResult>> Put(
        [AsParameters] PoolRoute route, CouponPoolInput input, ReferloopDb db, NetworkGuard guard, TimeProvider clock,
        CancellationToken ct)
    {
        // Before the pool is created: a refused URL leaves nothing behind.
        if (input.CreateCouponUrl is not null && await guard.CheckUrlAsync(input.CreateCouponUrl, ct) is { } refusal)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["createCouponUrl"] = [refusal] },
                title: "The request is not valid.", detail: "See 'errors' for each field and the rule it broke.");
        }
        var (pool, created, problem) = await FindOrCreateAsync(db, clock, route, ct);
        if (problem is not null)
        {
            return problem;
        }
        if (pool!.CreateCouponUrl != input.CreateCouponUrl)
        {
            pool.CreateCouponUrl = input.CreateCouponUrl;
            pool.UpdatedAt = clock.GetUtcNow();
            await db.SaveChangesAsync(ct);
        }
        var response = ToResponse(pool, await StockAsync(db, [pool.Id], ct), clock.GetUtcNow());
        return created
            ? TypedResults.Created($"/api/v1/campaigns/{route.Id}/coupon-pools/{pool.Name}", response with { Secret = pool.Secret })
            : TypedResults.Ok(response);
    }

    /// <summary>As for webhook endpoints: the old secret keeps signing, next to the new one, for the overlap.</summary>
    private static async Task<Results<Ok<CouponPoolResponse>, ProblemHttpResult>> RotateSecret([AsParameters] PoolRoute route,
        [FromBody] RotateSecretInput? input, ReferloopDb db, TimeProvider clock, IOptions<WebhookOptions> options, CancellationToken ct)
    {
        var pool = await db.CouponPools.FirstOrDefaultAsync(p => p.CampaignId == route.Id && p.Name == route.Pool, ct);
        if (pool is null)
        {
            return Problems.NotFound("coupon pool", route.Pool);
        }
        var now = clock.GetUtcNow();
        var overlap = input?.OverlapHours is { } hours ? TimeSpan.FromHours(hours) : options.Value.RotationOverlap;
        var overlapping = overlap > TimeSpan.Zero;
        pool.PreviousSecret = overlapping ? pool.Secret : null;
        pool.PreviousSecretExpiresAt = overlapping ? now + overlap : null;
        pool.Secret = WebhookSignature.NewSecret();
        pool.UpdatedAt = now;
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(ToResponse(pool, await StockAsync(db, [pool.Id], ct), now) with { Secret = pool.Secret });
    }

    private static async Task<Results<Ok<CouponUploadResult>, ValidationProblem, ProblemHttpResult>> Upload(
        [AsParameters] PoolRoute route, HttpRequest request, ReferloopDb db, TimeProvider clock, CancellationToken ct)
    {
        var mediaType = MediaTypeHeaderValue.TryParse(request.ContentType, out var parsed)
            ? parsed.MediaType.Value?.ToLowerInvariant()
            : null;
        var json = mediaType is "application/json" || mediaType?.EndsWith("+json", StringComparison.Ordinal) == true;
        if (!json && mediaType is not ("text/csv" or "text/plain"))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType,
                title: "The codes must be JSON or CSV.",
                detail: "Send 'Content-Type: application/json' with {\"codes\": [\"CODE-1\", …]}, or 'Content-Type: text/csv' with one code a line.");
        }

        string body;
        using (var reader = new StreamReader(request.Body, Encoding.UTF8))
        {
            body = await reader.ReadToEndAsync(ct);
        }
        var (result, errors, problem) = await UploadAsync(db, clock, route, body, json, ct);
        if (errors is not null)
        {
            return TypedResults.ValidationProblem(errors, title: "The request is not valid.",
                detail: "See 'errors' for each bad code (JSON path or CSV line) and the rule it broke.");
        }
        return problem is not null ? problem : TypedResults.Ok(result!);
    }

    /// <summary>
    /// Parses uploaded codes (JSON or CSV) and adds the new ones to the pool, creating it if needed: the result, or
    /// the errors by JSON path or CSV line, or a problem when the campaign is missing. The dashboard uploads through here too.
    /// </summary>
    public static async Task<(CouponUploadResult? Result, Dictionary<string, string[]>? Errors, ProblemHttpResult? Problem)> UploadAsync(
        ReferloopDb db, TimeProvider clock, PoolRoute route, string body, bool json, CancellationToken ct)
    {
        var (codes, errors) = json ? CouponCodes.ParseJson(body) : CouponCodes.ParseCsv(body);
        if (errors.Count == 0 && codes.Count == 0)
        {
            errors["codes"] = ["must hold at least one code."];
        }
        if (codes.Count > CouponCodes.MaxPerUpload)
        {
            errors["codes"] = [$"must hold at most {CouponCodes.MaxPerUpload:N0} codes per upload (got {codes.Count:N0}); split the file."];
        }
        if (errors.Count > 0)
        {
            return (null, errors, null);
        }

        var (pool, _, problem) = await FindOrCreateAsync(db, clock, route, ct);
        if (problem is not null)
        {
            return (null, null, problem);
        }
        var added = await InsertNewAsync(db, pool!.Id, codes, clock.GetUtcNow(), ct);
        var available = await db.Coupons.CountAsync(c => c.PoolId == pool.Id && c.AllocatedToRewardId == null, ct);
        return (new CouponUploadResult(added, codes.Count - added, available), null, null);
    }

    /// <summary>
    /// Inserts the codes the pool lacks, in one transaction, and returns how many that was. The unique index decides
    /// what is new (<c>ON CONFLICT DO NOTHING</c>), so concurrent uploads of overlapping files add each code once;
    /// sorted input makes them take row locks in one order, so they cannot deadlock on PostgreSQL. Multi-row
    /// statements keep a 100,000-code upload to a couple of hundred round trips.
    /// </summary>
    private static async Task<int> InsertNewAsync(ReferloopDb db, string poolId, List<string> codes, DateTimeOffset now,
        CancellationToken ct)
    {
        const int rowsPerStatement = 500;
        var createdAt = UtcTicksConverter.SqlValue(db, now);
        var sorted = codes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var added = 0;
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        foreach (var chunk in sorted.Chunk(rowsPerStatement))
        {
            // {0}–{2} are shared by every row; each row adds its id and code.
            var sql = new StringBuilder("""INSERT INTO coupons ("Id", "PoolId", "Code", "Source", "CreatedAt") VALUES """);
            var arguments = new List<object>(3 + 2 * chunk.Length) { poolId, CouponSource.Upload, createdAt };
            foreach (var code in chunk)
            {
                sql.Append(arguments.Count == 3 ? "" : ", ")
                    .Append($"({{{arguments.Count}}}, {{0}}, {{{arguments.Count + 1}}}, {{1}}, {{2}})");
                arguments.Add(Ids.New("cpn"));
                arguments.Add(code);
            }
            sql.Append(""" ON CONFLICT ("PoolId", "Code") DO NOTHING""");
            added += await db.Database.ExecuteSqlRawAsync(sql.ToString(), arguments, ct);
        }
        await transaction.CommitAsync(ct);
        return added;
    }

    private static async Task<Results<Ok<Page<CouponResponse>>, ProblemHttpResult>> ListCoupons([AsParameters] PoolRoute route,
        [AsParameters] CouponListQuery query, ReferloopDb db, CancellationToken ct)
    {
        var pool = await FindAsync(db, route, ct);
        if (pool is null)
        {
            return Problems.NotFound("coupon pool", route.Pool);
        }
        Paging.TryDecode(query.Cursor, out var after);
        var limit = query.Limit ?? Paging.DefaultLimit;
        var coupons = db.Coupons.AsNoTracking().Where(c => c.PoolId == pool.Id);
        coupons = query.Status switch
        {
            CouponStatus.Available => coupons.Where(c => c.AllocatedToRewardId == null),
            CouponStatus.Allocated => coupons.Where(c => c.AllocatedToRewardId != null),
            _ => coupons,
        };
        if (after is not null)
        {
            coupons = coupons.Where(c => string.Compare(c.Id, after) > 0);
        }
        var rows = await coupons.OrderBy(c => c.Id).Take(limit + 1).ToListAsync(ct);
        return TypedResults.Ok(Paging.ToPage(rows, limit, c => c.Id, c => new CouponResponse(c.Id, c.Code,
            c.AllocatedToRewardId is null ? CouponStatus.Available : CouponStatus.Allocated, c.Source,
            c.AllocatedToRewardId, c.AllocatedToParticipantId, c.AllocatedAt, c.CreatedAt)));
    }

    private static Task<CouponPool?> FindAsync(ReferloopDb db, PoolRoute route, CancellationToken ct) =>
        db.CouponPools.AsNoTracking().FirstOrDefaultAsync(p => p.CampaignId == route.Id && p.Name == route.Pool, ct);

    /// <summary>The tracked pool, created when missing; concurrent creations of one pool settle on one row.</summary>
    private static async Task<(CouponPool? Pool, bool Created, ProblemHttpResult? Problem)> FindOrCreateAsync(ReferloopDb db,
        TimeProvider clock, PoolRoute route, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            var pool = await db.CouponPools.FirstOrDefaultAsync(p => p.CampaignId == route.Id && p.Name == route.Pool, ct);
            if (pool is not null)
            {
                return (pool, false, null);
            }
            if (!await db.Campaigns.AnyAsync(c => c.Id == route.Id, ct))
            {
                return (null, false, Problems.NotFound("campaign", route.Id));
            }
            var now = clock.GetUtcNow();
            pool = new CouponPool
            {
                Id = Ids.New("cpl"),
                CampaignId = route.Id,
                Name = route.Pool,
                Secret = WebhookSignature.NewSecret(),
                CreatedAt = now,
                UpdatedAt = now,
            };
            db.CouponPools.Add(pool);
            try
            {
                await db.SaveChangesAsync(ct);
                return (pool, true, null);
            }
            catch (DbUpdateException) when (attempt < 2)
            {
                db.Entry(pool).State = EntityState.Detached;
            }
        }
    }

    /// <summary>Available and allocated codes per pool id.</summary>
    public static async Task<Dictionary<string, (int Available, int Allocated)>> StockAsync(ReferloopDb db, List<string> poolIds,
        CancellationToken ct)
    {
        var rows = await db.Coupons.AsNoTracking()
            .Where(c => poolIds.Contains(c.PoolId))
            .GroupBy(c => c.PoolId)
            .Select(g => new { PoolId = g.Key, Available = g.Count(c => c.AllocatedToRewardId == null), Total = g.Count() })
            .ToListAsync(ct);
        return rows.ToDictionary(r => r.PoolId, r => (r.Available, r.Total - r.Available));
    }

    private static CouponPoolResponse ToResponse(CouponPool pool, Dictionary<string, (int Available, int Allocated)> stock,
        DateTimeOffset now)
    {
        var (available, allocated) = stock.GetValueOrDefault(pool.Id);
        return new CouponPoolResponse(pool.Name, pool.CampaignId, pool.CreateCouponUrl, available, allocated, pool.CreatedAt, pool.UpdatedAt)
        {
            PreviousSecretExpiresAt = pool.PreviousSecret is not null && pool.PreviousSecretExpiresAt > now ? pool.PreviousSecretExpiresAt : null,
        };
    }
}
