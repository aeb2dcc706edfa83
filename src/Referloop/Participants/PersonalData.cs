using System.Linq.Expressions;
using System.Net;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Referloop.InboundHooks;
using Referloop.SocialProof;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Participants;

/// <summary>
/// Where one participant's e-mail and name end up besides their own rows, and how they are erased. The export
/// (<see cref="ParticipantsApi"/>) and the erasure read the same places through these queries, so what is exported is
/// what is erased.
/// </summary>
/// <remarks>
/// Everything is scoped to the participant's campaign: the same e-mail in another campaign is another participant.
/// </remarks>
public static class PersonalData
{
    /// <summary>What an erased e-mail, name or free text becomes; strings stay strings, so payloads keep their shape.</summary>
    public const string Erased = "[erased]";

    public const string CancelledReason = "Cancelled: the participant this message is about was erased.";

    /// <summary>
    /// The spellings under which a value can be stored: as sent, inside a JSON string (<c>+</c> → <c>\u002B</c>),
    /// and URL-encoded in a query string or form body (<c>@</c> → <c>%40</c>, space → <c>%20</c> or <c>+</c>).
    /// </summary>
    public static IReadOnlyList<string> Spellings(string value) =>
        new[]
        {
            value,
            JsonEncodedText.Encode(value).ToString(),
            Uri.EscapeDataString(value),
            WebUtility.UrlEncode(value),
            WebUtility.UrlEncode(value).ToLowerInvariant(),
        }.Where(s => s.Length > 0).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>
    /// Outbox messages that name the participant, by id or by e-mail (a <c>conversion</c> carries only e-mails).
    /// </summary>
    public static IQueryable<OutboxMessage> Messages(ReferloopDb db, string campaignId, string participantId, string email)
    {
        var inJson = JsonEncodedText.Encode(email).ToString();
        return db.Outbox.Where(m => m.CampaignId == campaignId
            && (m.Data.Contains(participantId) || m.Data.Contains(email) || m.Data.Contains(inJson)));
    }

    /// <summary>Social-proof items received for the participant's e-mail, in any letter case.</summary>
    public static IQueryable<SocialProofItem> SocialProof(ReferloopDb db, string campaignId, string email) =>
        db.SocialProofItems.Where(i => i.CampaignId == campaignId && i.Email.ToLower() == email);

    /// <summary>
    /// Raw inbound requests about the participant: those that made one of their social-proof items, those whose
    /// result names them, and those whose body carries their e-mail in any spelling and letter case.
    /// </summary>
    public static IQueryable<InboundRequest> InboundRequests(ReferloopDb db, string campaignId, string participantId, string email)
    {
        var items = SocialProof(db, campaignId, email).Select(i => i.RequestId);
        var requests = db.InboundRequests.Where(r => r.CampaignId == campaignId);
        Expression<Func<InboundRequest, bool>> about = r => items.Contains(r.Id) || r.Result!.Contains(participantId);
        var body = about.Parameters[0];
        var test = about.Body;
        // Body.ToLower().Contains(spelling) for each spelling, OR-ed into one statement.
        var lowered = Expression.Call(Expression.Property(body, nameof(InboundRequest.Body)),
            typeof(string).GetMethod(nameof(string.ToLower), Type.EmptyTypes)!);
        foreach (var spelling in Spellings(email).Select(s => s.ToLowerInvariant()).Distinct())
        {
            test = Expression.OrElse(test, Expression.Call(lowered,
                typeof(string).GetMethod(nameof(string.Contains), [typeof(string)])!, Expression.Constant(spelling)));
        }
        return requests.Where(Expression.Lambda<Func<InboundRequest, bool>>(test, body));
    }

    /// <summary>
    /// Stored answers of <c>Idempotency-Key</c> requests about the participant, identified by their id, or one of
    /// their referrals' or rewards' ids, in the path or <c>Location</c>. A join answered 200 carries no id, so every
    /// such answer of the campaign counts (a retried join just runs again and finds the same participant).
    /// </summary>
    public static IQueryable<Idempotency.IdempotencyRecord> IdempotencyRecords(ReferloopDb db, string campaignId, string participantId)
    {
        var referralIds = db.Referrals.Where(r => r.AdvocateId == participantId || r.FriendId == participantId).Select(r => r.Id);
        var rewardIds = db.Rewards.Where(r => r.ParticipantId == participantId).Select(r => r.Id);
        var joins = $"/api/v1/campaigns/{campaignId}/participants";
        return db.IdempotencyKeys.Where(k => k.Path.Contains(participantId) || k.Location!.Contains(participantId)
            || ((k.Path == joins || k.Path == joins + "/") && k.Location == null)
            || referralIds.Any(r => k.Path.Contains(r)) || rewardIds.Any(r => k.Path.Contains(r)));
    }

    /// <summary>
    /// Deletes the accepted events about the person: those waiting (their body holds the address, in any case, as sent
    /// or JSON-escaped: '+' is \u002B), and those answered with another event, by their body or by an answer that
    /// names the person (as the friend or the advocate of the event answering them). Run first and once more last in
    /// the erasure's transaction: on PostgreSQL, processing that answers a waiting event writes its row again in its
    /// own transaction, which the first run waits for and does not see.
    /// </summary>
    public static Task<int> DropInboxAsync(ReferloopDb db, string campaignId, string participantId, string email, CancellationToken ct)
    {
        var inRequest = JsonEncodedText.Encode(email).ToString().ToLowerInvariant();
        return db.Inbox.Where(e => e.CampaignId == campaignId
                && (e.Request.ToLower().Contains(email) || e.Request.ToLower().Contains(inRequest) || e.Answer!.Contains(participantId)))
            .ExecuteDeleteAsync(ct);
    }

    /// <summary>
    /// Erases every trace of the participant that is not one of their own rows, in the caller's transaction, with
    /// one statement per table: pending deliveries of messages about them are cancelled; those messages keep their
    /// shape with the e-mail and name replaced by <see cref="Erased"/>, and so do their attempts' URLs, response
    /// excerpts and errors; the messages are marked purged, so they are not replayed; raw inbound requests about them lose their body and result; their social-proof items
    /// go; other rows of the campaign that quote their e-mail in free text have it replaced.
    /// </summary>
    /// <param name="names">Every name the participant was known by: their own and those their events reported.</param>
    public static async Task EraseTracesAsync(ReferloopDb db, string campaignId, string participantId, string email,
        IReadOnlyCollection<string> names, DateTimeOffset now, CancellationToken ct)
    {
        var everything = Spellings(email).Concat(names.SelectMany(Spellings)).Distinct(StringComparer.Ordinal).ToList();

        // Events accepted about the person and not processed yet would bring them back: they are dropped, first, so
        // that on PostgreSQL a batch processing one of them now is waited for and its rows are erased below (the
        // engine deletes an event's inbox row as it reads it, and drops the event if it is gone).
        await DropInboxAsync(db, campaignId, participantId, email, ct);

        var messages = Messages(db, campaignId, participantId, email).Select(m => m.Id);
        // Not fanned out yet: marked as dispatched, they never get a delivery.
        await db.Outbox.Where(m => messages.Contains(m.Id) && m.DispatchedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(m => m.DispatchedAt, now), ct);
        var deliveries = db.WebhookDeliveries.Where(d => messages.Contains(d.MessageId));
        // Their claims stay with their holders, which let go of them (see WebhooksApi.Cancel).
        await deliveries.Where(d => d.Status == DeliveryStatus.Pending).ExecuteUpdateAsync(s => s
            .SetProperty(d => d.Status, DeliveryStatus.Cancelled)
            .SetProperty(d => d.LastError, CancelledReason)
            .SetProperty(d => d.CompletedAt, now)
            .SetProperty(d => d.UpdatedAt, now), ct);
        await deliveries.ExecuteUpdateAsync(s => s.SetProperty(d => d.LastError, Replaced<Webhooks.WebhookDelivery>(d => d.LastError, everything)), ct);
        var deliveryIds = deliveries.Select(d => d.Id);
        await db.WebhookAttempts.Where(a => deliveryIds.Contains(a.DeliveryId)).ExecuteUpdateAsync(s => s
            .SetProperty(a => a.Url, Replaced<WebhookAttempt>(a => a.Url, everything)!)
            .SetProperty(a => a.ResponseExcerpt, Replaced<WebhookAttempt>(a => a.ResponseExcerpt, everything))
            .SetProperty(a => a.Error, Replaced<WebhookAttempt>(a => a.Error, everything)), ct);

        // The data last: the messages are found by the e-mail it still holds. A name is replaced only as a whole
        // JSON value (":"Ann Lee"), never as a key or inside other text; the e-mail wherever it occurs.
        var nameValues = names.Select(n => ":" + JsonSerializer.Serialize(n)).Distinct().ToList();
        var emailTexts = new[] { email, JsonEncodedText.Encode(email).ToString() }.Distinct().ToList();
        // Marked purged: a replay or recover would send [erased] where the receiver once got the person.
        await db.Outbox.Where(m => messages.Contains(m.Id)).ExecuteUpdateAsync(s => s
            .SetProperty(m => m.Data, Replaced<OutboxMessage>(m => m.Data, nameValues, ":\"" + Erased + "\"", emailTexts)!)
            .SetProperty(m => m.DataPurgedAt, now), ct);

        var requests = InboundRequests(db, campaignId, participantId, email);
        await requests.ExecuteUpdateAsync(s => s
            .SetProperty(r => r.Body, Erased)
            .SetProperty(r => r.Result, (string?)null)
            .SetProperty(r => r.Reason, Replaced<InboundRequest>(r => r.Reason, everything)), ct);
        await SocialProof(db, campaignId, email).ExecuteDeleteAsync(ct);
        // The record of mails sent stays, without the address; what was still to be sent is not.
        await db.Set<Email.EmailSend>().Where(s => s.ParticipantId == participantId).ExecuteUpdateAsync(s => s
            .SetProperty(e => e.To, Erased)
            .SetProperty(e => e.Subject, (string?)null)
            .SetProperty(e => e.Status, e => e.Status == Email.EmailStatus.Pending ? Email.EmailStatus.Skipped : e.Status)
            .SetProperty(e => e.UpdatedAt, now), ct);

        // Free text elsewhere in the campaign that quotes the e-mail: a fraud finding on someone else's referral, the
        // advocate's risk reasons, a reward's reason, another event's properties.
        await db.Events.Where(e => e.CampaignId == campaignId && (e.Properties!.Contains(email) || e.Outcome!.Contains(email)))
            .ExecuteUpdateAsync(s => s
                .SetProperty(e => e.Properties, Replaced<Tracking.TrackedEvent>(e => e.Properties, emailTexts))
                .SetProperty(e => e.Outcome, Replaced<Tracking.TrackedEvent>(e => e.Outcome, emailTexts)), ct);
        await db.Rewards.Where(r => r.CampaignId == campaignId && r.Reason!.Contains(email))
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.Reason, Replaced<Rewards.Reward>(r => r.Reason, emailTexts)), ct);
        await db.Referrals.Where(r => r.CampaignId == campaignId && r.Reason!.Contains(email))
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.Reason, Replaced<Referrals.Referral>(r => r.Reason, emailTexts)), ct);
        // JSON columns behind a value converter: LINQ cannot call string functions on them.
        foreach (var text in emailTexts)
        {
            await db.Database.ExecuteSqlAsync($"""
                UPDATE referrals SET "Findings" = replace("Findings", {text}, {Erased}), "History" = replace("History", {text}, {Erased})
                WHERE "CampaignId" = {campaignId}
                    AND ("Findings" <> replace("Findings", {text}, {Erased}) OR "History" <> replace("History", {text}, {Erased}))
                """, ct);
            await db.Database.ExecuteSqlAsync($"""
                UPDATE participants SET "RiskReasons" = replace("RiskReasons", {text}, {Erased})
                WHERE "CampaignId" = {campaignId} AND "RiskReasons" <> replace("RiskReasons", {text}, {Erased})
                """, ct);
        }
    }

    /// <summary><c>column.Replace(s1, Erased).Replace(s2, Erased)…</c>, for one <c>SET</c> of an <c>UPDATE</c>.</summary>
    private static Expression<Func<T, string?>> Replaced<T>(Expression<Func<T, string?>> column, IEnumerable<string> spellings) =>
        Replaced(column, [], Erased, spellings);

    private static Expression<Func<T, string?>> Replaced<T>(Expression<Func<T, string?>> column, IEnumerable<string> first,
        string firstBy, IEnumerable<string> then)
    {
        var replace = typeof(string).GetMethod(nameof(string.Replace), [typeof(string), typeof(string)])!;
        var value = column.Body;
        foreach (var text in first)
        {
            value = Expression.Call(value, replace, Expression.Constant(text), Expression.Constant(firstBy));
        }
        foreach (var text in then)
        {
            value = Expression.Call(value, replace, Expression.Constant(text), Expression.Constant(Erased));
        }
        return Expression.Lambda<Func<T, string?>>(value, column.Parameters);
    }
}
