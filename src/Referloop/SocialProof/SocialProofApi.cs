using System.Globalization;
using Microsoft.OpenApi;
using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Referloop.Http;
using Referloop.InboundHooks;
using Referloop.Security;
using Referloop.Storage;

namespace Referloop.SocialProof;

public sealed record ConversionCounts(long Total, int LastWeek);

public sealed record Attribution(string Text, string Url);

/// <summary>The feed: recent items, the campaign's conversion counts, and the GeoIP attribution when a location came from it.</summary>
public sealed record SocialProofFeed(string CampaignId, IReadOnlyList<SocialProofEntry> Data, ConversionCounts Conversions,
    Attribution? Attribution);

public sealed record SocialProofQuery(int? Limit) : IValidatable
{
    public const int MaxLimit = 50;

    public void Validate(ValidationErrors errors) => errors.Range("limit", Limit, 1, MaxLimit);
}

internal static class SocialProofApi
{
    public const string CorsPolicy = "social-proof";
    public const string KeyHeader = "X-Referloop-Key";

    public static IEndpointRouteBuilder MapSocialProof(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/campaigns/{id}/social-proof", Feed)
            .WithTags("Social proof")
            .WithName("GetSocialProof")
            .WithSummary("Recent purchases and sign-ups for the widget: first name, last initial, city, state, country, product, time")
            .WithValidation()
            .Produces<SocialProofFeed>()
            .AddOpenApiOperationTransformer((operation, _, _) =>
            {
                if (operation.Parameters?.FirstOrDefault(p => p.Name is "limit" or "Limit")?.Schema is OpenApiSchema limit)
                {
                    limit.Minimum = "1";
                    limit.Maximum = SocialProofQuery.MaxLimit.ToString(CultureInfo.InvariantCulture);
                }
                return Task.CompletedTask;
            })
            .WithMetadata(new PublishableKeyAccess())
            .RequireCors(CorsPolicy);
        routes.MapGet("/js/social-proof.js", Widget)
            .WithTags("Social proof")
            .WithName("SocialProofWidget")
            .WithSummary("The embeddable widget that shows the feed as rotating notifications")
            .Produces<string>(contentType: "application/javascript");
        return routes;
    }

    private static async Task<Results<JsonHttpResult<SocialProofFeed>, ProblemHttpResult, ValidationProblem>> Feed(string id,
        [AsParameters] SocialProofQuery query, HttpContext http, ReferloopDb db, TimeProvider clock, CancellationToken ct)
    {
        var admin = http.Request.Headers.Authorization.Count > 0
            && (await http.AuthenticateAsync(AdminAuthentication.SchemeName)).Succeeded;
        var campaign = await db.Campaigns.AsNoTracking().Where(c => c.Id == id)
            .Select(c => new { c.Id, c.PublishableKey }).FirstOrDefaultAsync(ct);
        if (!admin)
        {
            string? key = http.Request.Headers[KeyHeader];
            key ??= http.Request.Query["key"];
            if (campaign is null || string.IsNullOrEmpty(key) || !CryptographicOperations.FixedTimeEquals(
                    Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(campaign.PublishableKey)))
            {
                return TypedResults.Problem(title: "A key is required.",
                    detail: $"Send the campaign's publishable key (pk_…) in the {KeyHeader} header or the 'key' query parameter, or an admin key as 'Authorization: Bearer <key>'.",
                    statusCode: StatusCodes.Status401Unauthorized);
            }
        }
        if (campaign is null)
        {
            return Problems.NotFound("campaign", id);
        }

        var now = clock.GetUtcNow();
        var items = await db.SocialProofItems.AsNoTracking()
            .Where(i => i.CampaignId == id)
            .OrderByDescending(i => i.OccurredAt).ThenByDescending(i => i.Id)
            .Take(query.Limit ?? 20)
            .ToListAsync(ct);
        var total = await db.InboundHooks.Where(h => h.CampaignId == id && h.Kind == InboundHookKind.Conversion)
            .SumAsync(h => h.Conversions, ct);
        var weekAgo = now.AddDays(-7);
        var lastWeek = await db.InboundRequests
            .Where(r => r.CampaignId == id && r.ReceivedAt >= weekAgo && r.Outcome == InboundOutcomeStatus.Processed)
            .Join(db.InboundHooks.Where(h => h.Kind == InboundHookKind.Conversion), r => r.HookId, h => h.Id, (r, _) => r)
            .CountAsync(ct);

        http.Response.Headers.CacheControl = "private, max-age=15";
        http.Response.Headers.XContentTypeOptions = "nosniff";
        return TypedResults.Json(new SocialProofFeed(id, items.Select(i => SocialProofEntry.From(i, now)).ToList(),
            new ConversionCounts(total, lastWeek),
            items.Any(i => i.LocatedByIp) ? new Attribution(DbIpGeoIp.Attribution, DbIpGeoIp.AttributionUrl) : null), FeedJson);
    }

    /// <summary>The feed is read cross-origin by merchants' pages: HTML-significant characters are escaped (\u003C).</summary>
    private static readonly JsonSerializerOptions FeedJson = new(JsonSerializerDefaults.Web) { Encoder = JavaScriptEncoder.Default };

    private static readonly Lazy<string> WidgetScript = new(() =>
    {
        using var stream = typeof(SocialProofApi).Assembly.GetManifestResourceStream("Referloop.SocialProof.social-proof.js")!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    private static ContentHttpResult Widget(HttpContext http)
    {
        http.Response.Headers.CacheControl = "public, max-age=300";
        http.Response.Headers.XContentTypeOptions = "nosniff";
        return TypedResults.Content(WidgetScript.Value, "application/javascript; charset=utf-8");
    }
}
