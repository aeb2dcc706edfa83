using System.ComponentModel.DataAnnotations;
using System.Net.Mail;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Http;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Security;
using Referloop.Storage;
using Referloop.Tracking;
using Referloop.Webhooks;

namespace Referloop.Participants;

public sealed record JoinParticipant([Required, EmailAddress, StringLength(254)] string? Email, [StringLength(200)] string? Name,
    [StringLength(500)] string? CustomValue) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        if (string.IsNullOrWhiteSpace(Email))
        {
            errors.Add("email", "is required.");
        }
        else if (!IsEmail(Email))
        {
            errors.Add("email", "must be an email address such as ann@example.com (at most 254 characters).");
        }
        errors.MaxLength("name", Name, 200);
        errors.MaxLength("customValue", CustomValue, 500);
    }

    public static bool IsEmail(string value)
    {
        var email = value.Trim();
        return email.Length <= 254
            && MailAddress.TryCreate(email, out var address)
            && address.Address == email
            && address.Host.Contains('.');
    }
}

public sealed record ParticipantResponse(
    string Id,
    string CampaignId,
    string Email,
    string? Name,
    string? CustomValue,
    string Code,
    string ShareUrl,
    IReadOnlyList<string> Roles,
    string? ReferredBy,
    DateTimeOffset CreatedAt,
    ParticipantRiskResponse Risk)
{
    public static ParticipantResponse From(Participant p, PublicUrls urls) =>
        new(p.Id, p.CampaignId, p.Email, p.Name, p.CustomValue, p.Code, urls.ShareUrl(p.Code), p.Roles, p.ReferredById, p.CreatedAt,
            ParticipantRiskResponse.From(p));
}

public sealed record ParticipantListQuery(string? Search, string? Cursor, int? Limit) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        errors.MaxLength("search", Search, 254);
        Paging.ValidateQuery(errors, Cursor, Limit);
    }
}

/// <summary>A visit to a share link; the address, browser and page it came from are the visitor's, and only shown to them.</summary>
public sealed record ClickRecord(string Id, string? Ip, string? UserAgent, string? Referrer, DateTimeOffset CreatedAt);

/// <summary>Everything Referloop holds about one person, for a data-access request.</summary>
/// <param name="Clicks">Visits to this person's share link: when, not who (<c>ip</c>, <c>userAgent</c> and
/// <c>referrer</c> are null: they are the visitors' data, each in the export of the friend the visit referred).</param>
public sealed record ParticipantExport(ParticipantResponse Participant, IReadOnlyList<ClickRecord> Clicks, DateTimeOffset ExportedAt)
{
    /// <summary>Their own visit to the share link that referred them, with the address, browser and page it came from.</summary>
    public IReadOnlyList<ClickRecord> Visits { get; init; } = [];

    /// <summary>Referrals where this person is the advocate or the friend.</summary>
    public IReadOnlyList<ReferralResponse> Referrals { get; init; } = [];

    public IReadOnlyList<RewardResponse> Rewards { get; init; } = [];

    /// <summary>Events reported about this person (by email within the campaign).</summary>
    public IReadOnlyList<EventRecord> Events { get; init; } = [];

    /// <summary>Every status change of <see cref="Referrals"/>, with its reason.</summary>
    public IReadOnlyList<StatusChangeRecord> ReferralHistory { get; init; } = [];

    /// <summary>Addresses this person acted from, kept for the same-IP fraud check.</summary>
    public IReadOnlyList<IpRecord> Ips { get; init; } = [];

    /// <summary>Their referral and conversion counts, as the reward rules read them.</summary>
    public IReadOnlyList<CounterRecord> Counters { get; init; } = [];

    /// <summary>Coupon codes handed to this person.</summary>
    public IReadOnlyList<CouponRecord> Coupons { get; init; } = [];

    /// <summary>Purchases and sign-ups received for their e-mail by social-proof stream hooks, with everything stored.</summary>
    public IReadOnlyList<SocialProofRecord> SocialProof { get; init; } = [];

    /// <summary>Raw requests to inbound hooks about this person, as received.</summary>
    public IReadOnlyList<InboundRequestRecord> InboundRequests { get; init; } = [];

    /// <summary>Outbound webhook messages that name this person, with every delivery and attempt.</summary>
    public IReadOnlyList<MessageRecord> Messages { get; init; } = [];

    /// <summary>
    /// <c>Idempotency-Key</c>s of requests about this person; their stored answers (encrypted, kept 24 h) repeat what
    /// this export shows.
    /// </summary>
    public IReadOnlyList<IdempotencyKeyRecord> IdempotencyKeys { get; init; } = [];
}

public sealed record StatusChangeRecord(string ReferralId, string? From, string To, string Reason, DateTimeOffset At);

public sealed record IpRecord(string Ip, DateTimeOffset FirstSeenAt, DateTimeOffset LastSeenAt);

public sealed record CounterRecord(string Name, int Count);

public sealed record CouponRecord(string PoolId, string Code, string? RewardId, DateTimeOffset? AllocatedAt);

public sealed record SocialProofRecord(string Id, string HookId, string RequestId, string Email, string? FirstName, string? LastName,
    string? City, string? State, string? Country, string? CountryCode, string? ProductName, string? ProductLink, decimal? Total,
    string? Currency, IReadOnlyList<SocialProof.SocialProofProduct> Products, DateTimeOffset OccurredAt, DateTimeOffset CreatedAt);

public sealed record InboundRequestRecord(string Id, string HookId, DateTimeOffset ReceivedAt, string? ContentType, string? Body,
    string? RemoteIp, string Outcome, string? Reason, string? Result);

public sealed record MessageRecord(string Id, string Type, DateTimeOffset CreatedAt, System.Text.Json.JsonElement Data,
    IReadOnlyList<MessageDeliveryRecord> Deliveries);

public sealed record MessageDeliveryRecord(string Id, string EndpointId, string Status, string? LastError,
    IReadOnlyList<AttemptRecord> Attempts);

public sealed record AttemptRecord(int Number, string Method, string Url, int? StatusCode, string? ResponseExcerpt, string? Error,
    DateTimeOffset AttemptedAt);

public sealed record IdempotencyKeyRecord(string Key, string Method, string Path, int? StatusCode, DateTimeOffset CreatedAt);

public sealed record EventRecord(string Id, string Type, string Email, string? Name, string? OrderId, decimal? PurchaseValue,
    string? Currency, string? Ip, string? UserAgent, string? ReferralCode, string? ClickId, string? Properties,
    DateTimeOffset OccurredAt, DateTimeOffset ReceivedAt);

internal static class ParticipantsApi
{
    public static RouteGroupBuilder MapParticipants(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/campaigns/{campaignId}/participants")
            .WithTags("Participants")
            .RequireAuthorization(AdminAuthentication.Policy)
            .WithValidation();

        group.MapPost("/", Join).WithName("JoinParticipant")
            .WithSummary("Add a participant by email; the same email again returns the same participant and code");
        group.MapGet("/", List).WithName("ListParticipants")
            .WithSummary("List participants; 'search' matches email, name or exact code");
        group.MapGet("/{id}", Get).WithName("GetParticipant").WithSummary("Get one participant");
        group.MapGet("/{id}/export", Export).WithName("ExportParticipant")
            .WithSummary("Export all data held about one participant as JSON (personal-data request)");
        group.MapDelete("/{id}", Delete).WithName("DeleteParticipant")
            .WithSummary("Delete a participant and every record of them (personal-data request)");
        return group;
    }

    private static async Task<Results<Created<ParticipantResponse>, Ok<ParticipantResponse>, ProblemHttpResult>> Join(
        string campaignId, JoinParticipant input, ReferloopDb db, TimeProvider clock, PublicUrls urls, OutboxSignal signal,
        CancellationToken ct)
    {
        var campaign = await db.Campaigns.AsNoTracking().FirstOrDefaultAsync(c => c.Id == campaignId, ct);
        if (campaign is null)
        {
            return Problems.NotFound("campaign", campaignId);
        }
        if (campaign.Status == CampaignStatus.Archived)
        {
            return Problems.Conflict("The campaign is archived; nobody can join it any more.");
        }

        var (participant, created) = await ParticipantDirectory.JoinAsync(db, clock, urls, campaign,
            input.Email!, input.Name, input.CustomValue, ct);
        signal.Poke();
        var response = ParticipantResponse.From(participant, urls);
        return created
            ? TypedResults.Created($"/api/v1/campaigns/{campaignId}/participants/{participant.Id}", response)
            : TypedResults.Ok(response);
    }

    private static async Task<Ok<Page<ParticipantResponse>>> List(string campaignId,
        [AsParameters] ParticipantListQuery query, ReferloopDb db, PublicUrls urls, CancellationToken ct)
    {
        Paging.TryDecode(query.Cursor, out var after);
        var limit = query.Limit ?? Paging.DefaultLimit;
        var participants = db.Participants.AsNoTracking().Where(p => p.CampaignId == campaignId).Matching(query.Search);
        if (after is not null)
        {
            participants = participants.Where(p => string.Compare(p.Id, after) > 0);
        }
        var rows = await participants.OrderBy(p => p.Id).Take(limit + 1).ToListAsync(ct);
        return TypedResults.Ok(Paging.ToPage(rows, limit, p => p.Id, p => ParticipantResponse.From(p, urls)));
    }

    private static async Task<Results<Ok<ParticipantResponse>, ProblemHttpResult>> Get(string campaignId, string id,
        ReferloopDb db, PublicUrls urls, CancellationToken ct)
    {
        var participant = await db.Participants.AsNoTracking()
            .FirstOrDefaultAsync(p => p.Id == id && p.CampaignId == campaignId, ct);
        return participant is null
            ? Problems.NotFound("participant", id)
            : TypedResults.Ok(ParticipantResponse.From(participant, urls));
    }

    internal static async Task<Results<Ok<ParticipantExport>, ProblemHttpResult>> Export(string campaignId, string id,
        HttpContext http, ReferloopDb db, PublicUrls urls, TimeProvider clock, CancellationToken ct)
    {
        var participant = await db.Participants.AsNoTracking()
            .FirstOrDefaultAsync(p => p.Id == id && p.CampaignId == campaignId, ct);
        if (participant is null)
        {
            return Problems.NotFound("participant", id);
        }
        var clicks = await db.Clicks.AsNoTracking()
            .Where(c => c.ParticipantId == id)
            .OrderBy(c => c.Id)
            .Select(c => new ClickRecord(c.Id, null, null, null, c.CreatedAt))
            .ToListAsync(ct);
        // A click belongs to the link's owner: only a referral ties it to the friend who made it.
        var visits = await db.Clicks.AsNoTracking()
            .Where(c => db.Referrals.Any(r => r.FriendId == id && r.ClickId == c.Id))
            .OrderBy(c => c.Id)
            .Select(c => new ClickRecord(c.Id, c.Ip, c.UserAgent, c.Referrer, c.CreatedAt))
            .ToListAsync(ct);
        var referrals = await db.Referrals.AsNoTracking()
            .Where(r => r.AdvocateId == id || r.FriendId == id)
            .OrderBy(r => r.Id)
            .ToListAsync(ct);
        var rewards = await db.Rewards.AsNoTracking().Where(r => r.ParticipantId == id).OrderBy(r => r.Id).ToListAsync(ct);
        var events = await db.Events.AsNoTracking()
            .Where(e => e.CampaignId == campaignId && (e.ParticipantId == id || e.Email == participant.Email))
            .OrderBy(e => e.Id)
            .Select(e => new EventRecord(e.Id, e.Type, e.Email, e.Name, e.OrderId, e.PurchaseValue, e.Currency, e.Ip, e.UserAgent,
                e.ReferralCode, e.ClickId, e.Properties, e.OccurredAt, e.ReceivedAt))
            .ToListAsync(ct);
        var referralIds = referrals.Select(r => r.Id).ToList();
        var history = referrals.SelectMany(r => r.History.Select(h => new StatusChangeRecord(r.Id, h.From, h.To, h.Reason, h.At))).ToList();
        var ips = await db.ParticipantIps.AsNoTracking().Where(i => i.ParticipantId == id).OrderBy(i => i.Ip)
            .Select(i => new IpRecord(i.Ip, i.FirstSeenAt, i.LastSeenAt)).ToListAsync(ct);
        var counters = await db.AdvocateCounters.AsNoTracking().Where(c => c.ParticipantId == id).OrderBy(c => c.Name)
            .Select(c => new CounterRecord(c.Name, c.Count)).ToListAsync(ct);
        var coupons = await db.Coupons.AsNoTracking().Where(c => c.AllocatedToParticipantId == id).OrderBy(c => c.Id)
            .Select(c => new CouponRecord(c.PoolId, c.Code, c.AllocatedToRewardId, c.AllocatedAt)).ToListAsync(ct);
        var socialProof = (await PersonalData.SocialProof(db, campaignId, participant.Email).AsNoTracking().OrderBy(i => i.Id).ToListAsync(ct))
            .Select(i => new SocialProofRecord(i.Id, i.HookId, i.RequestId, i.Email, i.FirstName, i.LastName, i.City, i.State, i.Country,
                i.CountryCode, i.ProductName, i.ProductLink, i.Total, i.Currency, i.Products, i.OccurredAt, i.CreatedAt))
            .ToList();
        var requests = await PersonalData.InboundRequests(db, campaignId, id, participant.Email).AsNoTracking().OrderBy(r => r.Id)
            .Select(r => new InboundRequestRecord(r.Id, r.HookId, r.ReceivedAt, r.ContentType, r.Body, r.RemoteIp, r.Outcome, r.Reason, r.Result))
            .ToListAsync(ct);
        var messages = await PersonalData.Messages(db, campaignId, id, participant.Email).AsNoTracking().OrderBy(m => m.Id).ToListAsync(ct);
        var messageIds = messages.Select(m => m.Id).ToList();
        var deliveries = (await db.WebhookDeliveries.AsNoTracking().Include(d => d.AttemptLog)
                .Where(d => messageIds.Contains(d.MessageId)).OrderBy(d => d.Id).ToListAsync(ct))
            .ToLookup(d => d.MessageId);
        var keys = await PersonalData.IdempotencyRecords(db, campaignId, id).AsNoTracking().OrderBy(k => k.CreatedAt)
            .Select(k => new IdempotencyKeyRecord(k.Key, k.Method, k.Path, k.StatusCode, k.CreatedAt)).ToListAsync(ct);
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"referloop-{id}.json\"";
        return TypedResults.Ok(new ParticipantExport(ParticipantResponse.From(participant, urls), clicks, clock.GetUtcNow())
        {
            Visits = visits,
            Referrals = referrals.Select(ReferralResponse.From).ToList(),
            Rewards = rewards.Select(RewardResponse.From).ToList(),
            Events = events,
            ReferralHistory = history,
            Ips = ips,
            Counters = counters,
            Coupons = coupons,
            SocialProof = socialProof,
            InboundRequests = requests,
            Messages = messages.Select(m => new MessageRecord(m.Id, m.Type, m.CreatedAt, ParseData(m.Data),
                deliveries[m.Id].Select(d => new MessageDeliveryRecord(d.Id, d.EndpointId, d.Status, d.LastError,
                    d.AttemptLog.OrderBy(a => a.Number).Select(a => new AttemptRecord(a.Number, a.Method, a.Url, a.StatusCode,
                        a.ResponseExcerpt, a.Error, a.AttemptedAt)).ToList())).ToList())).ToList(),
            IdempotencyKeys = keys,
        });
    }

    private static System.Text.Json.JsonElement ParseData(string data)
    {
        using var document = System.Text.Json.JsonDocument.Parse(data);
        return document.RootElement.Clone();
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> Delete(string campaignId, string id, ReferloopDb db,
        Webhooks.DeliveryEngine deliveries, TimeProvider clock, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        if (!db.OnSqlite)
        {
            // Locked first, in the event loop's order (referrals, then the advocate): taken as the statements below
            // reach them, a purchase of one of their friends meanwhile could deadlock with this.
            await db.Database.ExecuteSqlAsync($"""
                SELECT 1 FROM referrals WHERE "AdvocateId" = {id} OR "FriendId" = {id} ORDER BY "Id" FOR UPDATE
                """, ct);
            await db.Database.ExecuteSqlAsync($"""SELECT 1 FROM participants WHERE "Id" = {id} FOR UPDATE""", ct);
        }
        var participant = await db.Participants.Where(p => p.Id == id && p.CampaignId == campaignId)
            .Select(p => new { p.Email, p.Name }).FirstOrDefaultAsync(ct);
        if (participant is null)
        {
            return Problems.NotFound("participant", id);
        }
        var email = participant.Email;
        // Every name they were known by: messages sent before a rename carry the old one.
        var names = (await db.Events.Where(e => e.CampaignId == campaignId && (e.ParticipantId == id || e.Email == email) && e.Name != null)
                .Select(e => e.Name!).Distinct().ToListAsync(ct))
            .Append(participant.Name).OfType<string>().Where(n => n.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        await PersonalData.EraseTracesAsync(db, campaignId, id, email, names, clock.GetUtcNow(), ct);

        await PersonalData.IdempotencyRecords(db, campaignId, id).ExecuteDeleteAsync(ct);
        var referralIds = db.Referrals.Where(r => r.AdvocateId == id || r.FriendId == id).Select(r => r.Id);

        // Friends this person referred stay, but no longer point at a deleted person.
        await db.Participants.Where(p => p.ReferredById == id)
            .ExecuteUpdateAsync(s => s.SetProperty(p => p.ReferredById, (string?)null).SetProperty(p => p.ReferredAt, (DateTimeOffset?)null), ct);
        // The clicks on the person's link, and their own visit that a referral of theirs names (a click belongs to the
        // link's owner: only the referral ties it to the friend who made it).
        await db.Clicks.Where(c => c.ParticipantId == id || db.Referrals.Any(r => r.FriendId == id && r.ClickId == c.Id))
            .ExecuteDeleteAsync(ct);
        await db.ParticipantIps.Where(i => i.ParticipantId == id).ExecuteDeleteAsync(ct);
        // The person's own events, rewards and counters go; so do the referrals linking them to someone, with
        // their history. The other side's rewards stay (they may be paid); their ids of the deleted person are opaque and lead nowhere.
        await db.Events.Where(e => e.CampaignId == campaignId && (e.ParticipantId == id || e.Email == email)).ExecuteDeleteAsync(ct);
        await db.Rewards.Where(r => r.ParticipantId == id).ExecuteDeleteAsync(ct);
        await db.AdvocateCounters.Where(c => c.ParticipantId == id).ExecuteDeleteAsync(ct);
        await db.Events.Where(e => e.ReferralId != null && referralIds.Contains(e.ReferralId))
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.ReferralId, (string?)null), ct);
        await db.Referrals.Where(r => r.AdvocateId == id || r.FriendId == id).ExecuteDeleteAsync(ct);
        await db.Participants.Where(p => p.Id == id && p.CampaignId == campaignId).ExecuteDeleteAsync(ct);
        await PersonalData.DropInboxAsync(db, campaignId, id, email, ct);
        await transaction.CommitAsync(ct);
        // The messages about them that this instance or another holds, waiting to be sent, go unsent.
        await deliveries.DropStoppedAsync();
        return TypedResults.NoContent();
    }
}
