using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Referloop.Http;
using Referloop.Storage;

namespace Referloop.Tracking;

/// <summary>Whether an event was processed, or was accepted with <c>Prefer: respond-async</c> and waits.</summary>
public static class EventStatus
{
    public const string Processed = "processed";
    public const string Pending = "pending";
    public static readonly string[] All = [Processed, Pending];
}

/// <summary>An event as it was received, with who reported it and what it did (the 202 it was answered with).</summary>
public sealed record EventResponse(
    string Id,
    string CampaignId,
    string Type,
    string Source,
    string Email,
    string? Name,
    string? OrderId,
    decimal? PurchaseValue,
    string? Currency,
    string? Ip,
    string? UserAgent,
    string? ReferralCode,
    string? ClickId,
    string? IdempotencyKey,
    JsonElement? Properties,
    string? ParticipantId,
    string? ReferralId,
    EventOutcome? Outcome,
    DateTimeOffset OccurredAt,
    DateTimeOffset ReceivedAt,
    [property: Values(typeof(EventStatus))] string Status)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static EventResponse From(TrackedEvent e) => new(e.Id, e.CampaignId, e.Type, e.Source, e.Email, e.Name, e.OrderId,
        e.PurchaseValue, e.Currency, e.Ip, e.UserAgent, e.ReferralCode, e.ClickId, e.IdempotencyKey,
        e.Properties is null ? null : JsonSerializer.Deserialize<JsonElement>(e.Properties, Json),
        e.ParticipantId, e.ReferralId,
        e.Outcome is null ? null : JsonSerializer.Deserialize<EventOutcome>(e.Outcome, Json),
        e.OccurredAt, e.ReceivedAt, EventStatus.Processed);

    /// <summary>
    /// An event accepted with <c>Prefer: respond-async</c>, as reported: one that waits to be processed, without an
    /// outcome; or one that processing answered with another event (<see cref="InboxEvent.Answer"/>), with that answer.
    /// </summary>
    public static EventResponse FromInbox(InboxEvent row)
    {
        var input = JsonSerializer.Deserialize<TrackEvent>(row.Request, Json)!;
        var answer = row.Answer is null ? null : JsonSerializer.Deserialize<InboxAnswer>(row.Answer, Json);
        return new(row.Id, row.CampaignId, input.Type ?? "", row.Source, Participants.Participant.NormaliseEmail(input.Email ?? ""),
            input.Name, answer is null ? row.OrderId : string.IsNullOrWhiteSpace(input.OrderId) ? null : input.OrderId.Trim(),
            input.PurchaseValue, input.Currency?.ToUpperInvariant(), row.Ip, row.UserAgent, input.ReferralCode,
            input.ClickId, answer is null ? row.IdempotencyKey : answer.IdempotencyKey,
            input.Properties is null ? null : JsonSerializer.SerializeToElement(input.Properties, Json),
            answer?.Outcome.Referral?.FriendId, answer?.Outcome.Referral?.Id, answer?.Outcome,
            (input.OccurredAt ?? row.ReceivedAt).ToUniversalTime(), row.ReceivedAt,
            answer is null ? EventStatus.Pending : EventStatus.Processed);
    }
}

public sealed record EventListQuery(string? CampaignId, string? Type, string? ParticipantId, DateTimeOffset? Since, string? Cursor, int? Limit)
    : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        errors.MaxLength("campaignId", CampaignId, 40);
        errors.MaxLength("type", Type, 64);
        errors.MaxLength("participantId", ParticipantId, 40);
        Paging.ValidateQuery(errors, Cursor, Limit);
    }
}

/// <summary><c>GET /api/v1/events</c> and <c>GET /api/v1/events/{id}</c>: what was reported, oldest first, for the admin key.</summary>
internal static class EventsQueries
{
    public static void Map(RouteGroupBuilder group)
    {
        group.MapGet("/", List).WithName("ListEvents")
            .WithSummary("List received events, oldest first, filtered by campaign, type, participant (the friend) or receipt time")
            .WithDescription("since is inclusive and compares with receivedAt. Each event carries its source (browser or server) " +
                "and its outcome: the attribution, referral and rewards it was answered with.");
        group.MapGet("/{id}", Get).WithName("GetEvent").WithSummary("One received event with its attribution outcome")
            .WithDescription("An event accepted with 'Prefer: respond-async' shows status pending and no outcome until it is processed.");
    }

    private static async Task<Ok<Page<EventResponse>>> List([AsParameters] EventListQuery query, ReferloopDb db, CancellationToken ct)
    {
        Paging.TryDecode(query.Cursor, out var after);
        var limit = query.Limit ?? Paging.DefaultLimit;
        var events = db.Events.AsNoTracking();
        if (query.CampaignId is not null)
        {
            events = events.Where(e => e.CampaignId == query.CampaignId);
        }
        if (query.Type is not null)
        {
            events = events.Where(e => e.Type == query.Type);
        }
        if (query.ParticipantId is not null)
        {
            events = events.Where(e => e.ParticipantId == query.ParticipantId);
        }
        if (query.Since is { } since)
        {
            var from = since.ToUniversalTime();
            events = events.Where(e => e.ReceivedAt >= from);
        }
        if (after is not null)
        {
            events = events.Where(e => string.Compare(e.Id, after) > 0);
        }
        var rows = await events.OrderBy(e => e.Id).Take(limit + 1).ToListAsync(ct);
        return TypedResults.Ok(Paging.ToPage(rows, limit, e => e.Id, EventResponse.From));
    }

    private static async Task<Results<Ok<EventResponse>, ProblemHttpResult>> Get(string id, ReferloopDb db, CancellationToken ct)
    {
        // The inbox first: an accepted event leaves it in the transaction that records it, so once it is not there the
        // events table has it, if anyone does. (The other order could miss it in both, read either side of that commit.)
        // One answered with another event stays there, with that answer.
        if (await db.Inbox.AsNoTracking().FirstOrDefaultAsync(e => e.Id == id, ct) is { } waiting)
        {
            return TypedResults.Ok(EventResponse.FromInbox(waiting));
        }
        return await db.Events.AsNoTracking().FirstOrDefaultAsync(e => e.Id == id, ct) is { } tracked
            ? TypedResults.Ok(EventResponse.From(tracked))
            : Problems.NotFound("event", id);
    }
}
