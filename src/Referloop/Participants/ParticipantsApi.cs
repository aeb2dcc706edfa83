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

namespace Referloop.Participants;

public sealed record JoinParticipant(string? Email, string? Name, string? CustomValue) : IValidatable
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

public sealed record ClickRecord(string Id, string? Ip, string? UserAgent, string? Referrer, DateTimeOffset CreatedAt);

/// <summary>Everything Referloop holds about one person, for a data-access request.</summary>
public sealed record ParticipantExport(ParticipantResponse Participant, IReadOnlyList<ClickRecord> Clicks, DateTimeOffset ExportedAt)
{
    /// <summary>Referrals where this person is the advocate or the friend.</summary>
    public IReadOnlyList<ReferralResponse> Referrals { get; init; } = [];

    public IReadOnlyList<RewardResponse> Rewards { get; init; } = [];

    /// <summary>Events reported about this person (by email within the campaign).</summary>
    public IReadOnlyList<EventRecord> Events { get; init; } = [];
}

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
        string campaignId, JoinParticipant input, ReferloopDb db, TimeProvider clock, PublicUrls urls, CancellationToken ct)
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
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"referloop-{id}.json\"";
        return TypedResults.Ok(new ParticipantExport(ParticipantResponse.From(participant, urls), clicks, clock.GetUtcNow())
        {
            Referrals = referrals.Select(ReferralResponse.From).ToList(),
            Rewards = rewards.Select(RewardResponse.From).ToList(),
            Events = events,
        });
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> Delete(string campaignId, string id, ReferloopDb db,
        TimeProvider clock, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
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

        // Stored answers to requests about them: identified by the participant, referral or reward id in the path or
        // Location; a join answered 200 carries no id, so every such answer of this campaign goes (a retried join just
        // runs again and finds the same participant).
        var referralIds = db.Referrals.Where(r => r.AdvocateId == id || r.FriendId == id).Select(r => r.Id);
        var rewardIds = db.Rewards.Where(r => r.ParticipantId == id).Select(r => r.Id);
        var joins = $"/api/v1/campaigns/{campaignId}/participants";
        await db.IdempotencyKeys.Where(k => k.Path.Contains(id) || k.Location!.Contains(id)
                || ((k.Path == joins || k.Path == joins + "/") && k.Location == null)
                || referralIds.Any(r => k.Path.Contains(r)) || rewardIds.Any(r => k.Path.Contains(r)))
            .ExecuteDeleteAsync(ct);

        // Friends this person referred stay, but no longer point at a deleted person.
        await db.Participants.Where(p => p.ReferredById == id).ExecuteUpdateAsync(s => s.SetProperty(p => p.ReferredById, (string?)null), ct);
        await db.Clicks.Where(c => c.ParticipantId == id).ExecuteDeleteAsync(ct);
        await db.ParticipantIps.Where(i => i.ParticipantId == id).ExecuteDeleteAsync(ct);
        // The person's own events, rewards and counters go; so do the referrals linking them to someone, with
        // their history. The other side's rewards stay (they may be paid); their ids of the deleted person are opaque and lead nowhere.
        await db.Events.Where(e => e.CampaignId == campaignId && (e.ParticipantId == id || e.Email == email)).ExecuteDeleteAsync(ct);
        await db.Rewards.Where(r => r.ParticipantId == id).ExecuteDeleteAsync(ct);
        await db.AdvocateCounters.Where(c => c.ParticipantId == id).ExecuteDeleteAsync(ct);
        await db.Events.Where(e => e.ReferralId != null && referralIds.Contains(e.ReferralId))
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.ReferralId, (string?)null), ct);
        await db.ReferralHistory.Where(h => referralIds.Contains(h.ReferralId)).ExecuteDeleteAsync(ct);
        await db.Referrals.Where(r => r.AdvocateId == id || r.FriendId == id).ExecuteDeleteAsync(ct);
        await db.Participants.Where(p => p.Id == id && p.CampaignId == campaignId).ExecuteDeleteAsync(ct);
        await transaction.CommitAsync(ct);
        return TypedResults.NoContent();
    }
}
