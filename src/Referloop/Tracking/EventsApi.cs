using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Http;
using Referloop.Idempotency;
using Referloop.Referrals;
using Referloop.Security;
using Referloop.Storage;

namespace Referloop.Tracking;

internal static class EventsApi
{
    public const string Path = "/api/v1/events";

    /// <summary>CORS policy of the endpoints a shop page calls with the publishable key.</summary>
    public const string BrowserPolicy = "browser";

    public const string KeyHeader = "X-Referloop-Key";
    public const string IdempotencyHeader = "Idempotency-Key";

    public static IEndpointRouteBuilder MapEvents(this IEndpointRouteBuilder routes)
    {
        routes.MapPost(Path, Track)
            .WithTags("Events")
            .WithName("TrackEvent")
            .WithSummary("Report a sign-up, purchase or custom event; answers 202 with the attribution, referral and rewards")
            .WithDescription("Authorise with the admin key (Authorization: Bearer) or, from a browser, with the campaign's " +
                "publishable key (X-Referloop-Key header or publishableKey field). Idempotent on (campaign, orderId) and on " +
                "the Idempotency-Key header: a retry answers the first outcome with duplicate=true. A browser's call is " +
                "rate-limited per address and per key, its ip and userAgent fields are ignored (the connection's are used), " +
                "and what its conversions earn follows the campaign's fraud.browserConversions (review, accept or confirm). " +
                "Bodies are limited to 64 KiB. A refund or chargeback (admin key only) names the purchase's orderId: the purchase " +
                "stops counting, its referral is voided (reason refunded) unless the campaign's refunds policy keeps it for " +
                "the friend's other purchases, and the rewards it earned become revoked (clawback_required when paid); an " +
                "orderId no purchase has is answered 422 and nothing is recorded. Repeating a refund answers its first outcome. " +
                "With the header 'Prefer: respond-async' an event other than a refund is only made durable before the " +
                "answer: 202 with its eventId (and status pending, or the earlier event's id with duplicate=true), the header " +
                "Preference-Applied and, for the admin key, Location; the outcome follows in webhooks and GET /api/v1/events/{id}.")
            .RequireCors(BrowserPolicy)
            .WithMetadata(new PublishableKeyAccess())
            .RequireRateLimiting(PublicLimits.BrowserEvents)
            .WithMetadata(new RequestSizeLimitAttribute(PublicLimits.EventBodyBytes))
            // The engine replays a retried key with duplicate=true; Idempotency-Key only refuses a key reused for another body.
            .WithMetadata(new AnswersRetriesItself())
            .AddOpenApiOperationTransformer(DescribeAcceptedAnswers)
            .WithValidation();

        EventsQueries.Map(routes.MapGroup(Path)
            .WithTags("Events")
            .RequireAuthorization(AdminAuthentication.Policy)
            .WithValidation());
        return routes;
    }

    private static async Task<Results<Accepted<EventOutcome>, Accepted<EventAccepted>, ValidationProblem, ProblemHttpResult>> Track(
        TrackEvent input, HttpContext http, ReferloopDb db, CampaignCache campaigns, EventIngest ingest, EventInbox inbox, TimeProvider clock, PublicLimits limits,
        CancellationToken ct)
    {
        var isAdmin = http.User.Identity?.IsAuthenticated == true;
        var key = http.Request.Headers[KeyHeader].FirstOrDefault() ?? input.PublishableKey;
        Campaign? campaign;
        if (isAdmin)
        {
            if (string.IsNullOrWhiteSpace(input.CampaignId))
            {
                return Invalid("campaignId", "is required with the admin key.");
            }
            campaign = await campaigns.FindAsync(db, input.CampaignId, ct);
            if (campaign is null)
            {
                return Problems.NotFound("campaign", input.CampaignId);
            }
        }
        else if (!string.IsNullOrWhiteSpace(key))
        {
            campaign = key.Length > 100 ? null : await campaigns.FindByPublishableKeyAsync(db, key, ct);
            if (campaign is null || (input.CampaignId is not null && input.CampaignId != campaign.Id))
            {
                return Unauthorized("The publishable key is unknown or belongs to another campaign.");
            }
            if (limits.TakeKeyPermit(http, campaign.Id) is { } tooMany)
            {
                return tooMany;
            }
        }
        else
        {
            return Unauthorized("Send 'Authorization: Bearer <admin key>' or the campaign's publishable key in 'X-Referloop-Key'.");
        }

        if (!isAdmin && EventKinds.IsRefund(input.Type))
        {
            return TypedResults.Problem(title: "Refunds need the admin key.",
                detail: "A refund or chargeback takes rewards back, so a browser holding the publishable key cannot report one: " +
                    "send it from the server with the admin key, or through a track inbound hook.",
                statusCode: StatusCodes.Status403Forbidden);
        }

        var idempotencyKey = http.Request.Headers[IdempotencyHeader].FirstOrDefault();
        if (idempotencyKey is { Length: 0 or > 200 })
        {
            return Invalid("Idempotency-Key", "must be 1–200 characters.");
        }
        if (input.OccursInTheFuture(clock.GetUtcNow()))
        {
            return Invalid("occurredAt", "must not be in the future.");
        }

        // A server reports the friend's address and agent in the body. A browser is the friend: what it writes about
        // itself is not believed, or the same-IP and blocked-IP checks would be one field away from bypassed.
        var ip = isAdmin ? input.Ip : http.Connection.RemoteIpAddress?.ToString();
        var userAgent = isAdmin ? input.UserAgent : Truncate(http.Request.Headers.UserAgent.ToString(), 512);
        var request = new TrackRequest(campaign, input, idempotencyKey, ip, userAgent, isAdmin ? EventSource.Server : EventSource.Browser);
        // A refund is answered when processed: an unknown order is refused rather than accepted. So is the server's
        // report of an order a browser reported first, which may confirm that report or take the order from it.
        if (PrefersAsync(http.Request) && !request.IsRefund && await inbox.AcceptAsync(request) is { } accepted)
        {
            http.Response.Headers["Preference-Applied"] = RespondAsync;
            return TypedResults.Accepted(isAdmin ? $"/api/v1/events/{accepted.EventId}" : null, accepted);
        }
        var outcome = await ingest.TrackAsync(request);
        if (outcome.Refund is { Effect: RefundEffect.UnknownOrder } unknown)
        {
            // Well-formed, but about an order this campaign never saw: 422, so that a sender can tell it from a typo in the body.
            return TypedResults.Problem(title: "The order is unknown.",
                detail: "A refund names the order id of a purchase reported to the campaign; nothing was refunded or recorded.",
                statusCode: StatusCodes.Status422UnprocessableEntity,
                extensions: new Dictionary<string, object?>
                {
                    ["errors"] = new Dictionary<string, string[]>
                    {
                        ["orderId"] = [$"no purchase with order id '{unknown.OrderId}' was reported to this campaign."],
                    },
                });
        }
        return TypedResults.Accepted((string?)null, isAdmin ? outcome : outcome.ForBrowser());
    }

    /// <summary>The 202 is the outcome, or with <c>Prefer: respond-async</c> the acceptance: both are declared.</summary>
    private static async Task DescribeAcceptedAnswers(OpenApiOperation operation, OpenApiOperationTransformerContext context,
        CancellationToken ct)
    {
        // Generated once so that both are components, then referred to: the document's own transformers complete components.
        await context.GetOrCreateSchemaAsync(typeof(EventOutcome), null, ct);
        await context.GetOrCreateSchemaAsync(typeof(EventAccepted), null, ct);
        var outcome = new OpenApiSchemaReference(nameof(EventOutcome), context.Document);
        var accepted = new OpenApiSchemaReference(nameof(EventAccepted), context.Document);
        if (operation.Responses?.GetValueOrDefault("202") is OpenApiResponse answer)
        {
            answer.Description = "The event's outcome; with 'Prefer: respond-async', its id once it is durable.";
            answer.Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/json"] = new() { Schema = new OpenApiSchema { AnyOf = [outcome, accepted] } },
            };
            answer.Headers ??= new Dictionary<string, IOpenApiHeader>();
            answer.Headers["Preference-Applied"] = new OpenApiHeader
            {
                Description = "respond-async, when the preference was applied.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
            };
        }
    }

    /// <summary>Whether the request carries the <c>respond-async</c> preference (RFC 7240), among others or alone.</summary>
    internal static bool PrefersAsync(HttpRequest request) =>
        request.Headers["Prefer"].SelectMany(value => (value ?? "").Split(','))
            .Any(preference => preference.Split(';')[0].Trim().Equals(RespondAsync, StringComparison.OrdinalIgnoreCase));

    private const string RespondAsync = "respond-async";

    private static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] },
            title: "The request is not valid.", detail: "See 'errors' for each field and the rule it broke.");

    private static ProblemHttpResult Unauthorized(string detail) =>
        TypedResults.Problem(title: "An admin key or the campaign's publishable key is required.", detail: detail,
            statusCode: StatusCodes.Status401Unauthorized);

    private static string? Truncate(string value, int max) =>
        string.IsNullOrEmpty(value) ? null : value.Length <= max ? value : value[..max];
}
