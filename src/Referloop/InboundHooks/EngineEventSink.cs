using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Referloop.Http;
using Referloop.Referrals;
using Referloop.Storage;
using Referloop.Tracking;

namespace Referloop.InboundHooks;

/// <summary>
/// Hands <c>track</c> and <c>qualify</c> hooks to the referral engine, exactly as <c>POST /api/v1/events</c> and
/// <c>POST /api/v1/referrals/qualify</c> would: the same validation, the same idempotency on order ids. The engine
/// works in units of work of its own (the event loop's, or a scope of its own for a qualification): the receiver's
/// context still holds the hook's request, whose outcome it records after.
/// </summary>
internal sealed class EngineEventSink(ReferloopDb db, EventIngest ingest, IServiceScopeFactory scopes, TimeProvider clock) : IInboundEventSink
{
    // Web defaults read "120.5" as a number too, which is what form posts send.
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<InboundOutcome> TrackAsync(string campaignId, JsonObject payload, string? idempotencyKey, CancellationToken ct)
    {
        TrackEvent? input;
        try
        {
            input = payload.Deserialize<TrackEvent>(Json);
        }
        catch (JsonException e)
        {
            return InboundOutcome.Invalid(new Dictionary<string, string[]>
            {
                [string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "body" : e.Path.TrimStart('$', '.')] = ["has the wrong type."],
            });
        }
        input = (input ?? new TrackEvent()) with { CampaignId = campaignId };
        var errors = new ValidationErrors();
        input.Validate(errors);
        if (input.OccursInTheFuture(clock.GetUtcNow()))
        {
            errors.Add("occurredAt", "must not be in the future.");
        }
        if (!errors.IsEmpty)
        {
            return InboundOutcome.Invalid(errors.ToDictionary());
        }

        var campaign = await db.Campaigns.AsNoTracking().FirstAsync(c => c.Id == campaignId, ct);
        var outcome = await ingest.TrackAsync(new TrackRequest(campaign, input, idempotencyKey, input.Ip, input.UserAgent, EventSource.Server));
        if (outcome.Refund is { Effect: RefundEffect.UnknownOrder } unknown)
        {
            return InboundOutcome.Refused(StatusCodes.Status422UnprocessableEntity,
                $"No purchase with order id '{unknown.OrderId}' was reported to this campaign: nothing was refunded.");
        }
        return InboundOutcome.Processed(JsonSerializer.SerializeToNode(outcome, Json));
    }

    public async Task<InboundOutcome> QualifyAsync(string campaignId, string code, JsonObject payload, CancellationToken ct)
    {
        var referralId = await db.Referrals.AsNoTracking()
            .Where(r => r.CampaignId == campaignId && r.Friend!.Code == code)
            .Select(r => r.Id)
            .FirstOrDefaultAsync(ct);
        if (referralId is null)
        {
            return InboundOutcome.Refused(StatusCodes.Status404NotFound, $"No referred friend in this campaign has the code '{code}'.");
        }
        var reason = payload["reason"] is JsonValue value && value.TryGetValue<string>(out var given) && given.Length is > 0 and <= 500
            ? given
            : "qualified by an inbound hook";
        await using var scope = scopes.CreateAsyncScope();
        var result = await scope.ServiceProvider.GetRequiredService<ReferralEngine>().QualifyAsync(referralId, reason, ct);
        return result switch
        {
            { Conflict: { } conflict } => InboundOutcome.Refused(StatusCodes.Status409Conflict, conflict),
            { Referral: { } referral } => InboundOutcome.Processed(new JsonObject
            {
                ["referral"] = new JsonObject { ["id"] = referral.Id, ["status"] = referral.Status },
            }),
            _ => InboundOutcome.Refused(StatusCodes.Status404NotFound, $"No referred friend in this campaign has the code '{code}'."),
        };
    }
}
