using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Referloop.Email;
using Referloop.HostedPages;
using Referloop.Http;
using Referloop.Security;
using Referloop.SocialProof;
using Referloop.Storage;

namespace Referloop.Campaigns;

public sealed record CampaignResponse(
    string Id,
    string Name,
    string LandingUrl,
    int AttributionWindowDays,
    int HoldingPeriodDays,
    [property: Values(typeof(ApprovalPolicy))] string Approval,
    bool AllowRewardsOnAutoApproved,
    int? GoalConversions,
    FraudPolicy Fraud,
    IReadOnlyList<RewardRule> Rewards,
    SocialProofSettings SocialProof,
    string? Slug,
    PageSettings Page,
    string JoinUrl,
    [property: Values(typeof(CampaignStatus))] string Status,
    string PublishableKey,
    string ShareUrlPattern,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    /// <summary>What a refunded purchase does to its referral (<c>keep_if_other_purchases</c> or <c>void</c>).</summary>
    [Values(typeof(RefundPolicy))]
    public string Refunds { get; init; } = RefundPolicy.KeepIfOtherPurchases;

    /// <summary>The e-mail templates; a template or part left out uses the default of the campaign's language.</summary>
    public EmailSettings Email { get; init; } = new();

    public static CampaignResponse From(Campaign c, PublicUrls urls) => new(c.Id, c.Name, c.LandingUrl,
        c.AttributionWindowDays, c.HoldingPeriodDays, c.Approval, c.AllowRewardsOnAutoApproved, c.GoalConversions,
        c.Fraud, c.Rewards, c.SocialProof ?? new SocialProofSettings(), c.Slug, c.Page ?? new PageSettings(),
        urls.JoinUrl(c.Slug ?? c.Id), c.Status, c.PublishableKey, urls.ShareUrl("{code}"), c.CreatedAt, c.UpdatedAt)
    {
        Refunds = c.Refunds,
        Email = c.Email ?? new EmailSettings(),
    };
}

public sealed record CampaignListQuery([property: Values(typeof(CampaignStatus))] string? Status, string? Cursor,
    int? Limit) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        if (Status is not null)
        {
            errors.OneOf("status", Status, CampaignStatus.All);
        }
        Paging.ValidateQuery(errors, Cursor, Limit);
    }
}

internal static class CampaignsApi
{
    public static RouteGroupBuilder MapCampaigns(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/campaigns")
            .WithTags("Campaigns")
            .RequireAuthorization(AdminAuthentication.Policy)
            .WithValidation();

        group.MapPost("/", Create).WithName("CreateCampaign").WithSummary("Create a campaign with its full rule set");
        group.MapGet("/", List).WithName("ListCampaigns").WithSummary("List campaigns, newest last, with cursor pagination");
        group.MapGet("/{id}", Get).WithName("GetCampaign").WithSummary("Get one campaign");
        group.MapPut("/{id}", Update).WithName("UpdateCampaign").WithSummary("Replace a campaign's settings and rules");
        group.MapPost("/{id}/pause", (string id, ReferloopDb db, TimeProvider clock, PublicUrls urls, CancellationToken ct) =>
                ChangeStatus(id, CampaignStatus.Paused, db, clock, urls, ct))
            .WithName("PauseCampaign").WithSummary("Pause: share links still land, but nothing is attributed");
        group.MapPost("/{id}/resume", (string id, ReferloopDb db, TimeProvider clock, PublicUrls urls, CancellationToken ct) =>
                ChangeStatus(id, CampaignStatus.Active, db, clock, urls, ct))
            .WithName("ResumeCampaign").WithSummary("Resume a paused campaign");
        group.MapPost("/{id}/archive", (string id, ReferloopDb db, TimeProvider clock, PublicUrls urls, CancellationToken ct) =>
                ChangeStatus(id, CampaignStatus.Archived, db, clock, urls, ct))
            .WithName("ArchiveCampaign").WithSummary("Archive for good: the campaign stops attributing and cannot be resumed");

        return group;
    }

    private static async Task<Results<Created<CampaignResponse>, ValidationProblem>> Create(CampaignInput input, ReferloopDb db,
        TimeProvider clock, PublicUrls urls, CancellationToken ct)
    {
        if (await SlugTaken(db, input.Slug, null, ct) is { } taken)
        {
            return taken;
        }
        var campaign = input.ToNewCampaign(clock.GetUtcNow());
        db.Campaigns.Add(campaign);
        if (!await TrySaveAsync(db, ct))
        {
            return SlugTakenProblem();
        }
        return TypedResults.Created($"/api/v1/campaigns/{campaign.Id}", CampaignResponse.From(campaign, urls));
    }

    private static async Task<Ok<Page<CampaignResponse>>> List([AsParameters] CampaignListQuery query, ReferloopDb db,
        PublicUrls urls, CancellationToken ct)
    {
        Paging.TryDecode(query.Cursor, out var after);
        var limit = query.Limit ?? Paging.DefaultLimit;
        var campaigns = db.Campaigns.AsNoTracking();
        if (query.Status is not null)
        {
            campaigns = campaigns.Where(c => c.Status == query.Status);
        }
        if (after is not null)
        {
            campaigns = campaigns.Where(c => string.Compare(c.Id, after) > 0);
        }
        var rows = await campaigns.OrderBy(c => c.Id).Take(limit + 1).ToListAsync(ct);
        return TypedResults.Ok(Paging.ToPage(rows, limit, c => c.Id, c => CampaignResponse.From(c, urls)));
    }

    private static async Task<Results<Ok<CampaignResponse>, ProblemHttpResult>> Get(string id, ReferloopDb db,
        PublicUrls urls, CancellationToken ct)
    {
        var campaign = await db.Campaigns.AsNoTracking().FirstOrDefaultAsync(c => c.Id == id, ct);
        return campaign is null ? Problems.NotFound("campaign", id) : TypedResults.Ok(CampaignResponse.From(campaign, urls));
    }

    private static async Task<Results<Ok<CampaignResponse>, ValidationProblem, ProblemHttpResult>> Update(string id, CampaignInput input,
        ReferloopDb db, TimeProvider clock, PublicUrls urls, CancellationToken ct)
    {
        if (await SlugTaken(db, input.Slug, id, ct) is { } taken)
        {
            return taken;
        }
        var campaign = await db.Campaigns.FirstOrDefaultAsync(c => c.Id == id, ct);
        if (campaign is null)
        {
            return Problems.NotFound("campaign", id);
        }
        input.ApplyTo(campaign);
        campaign.UpdatedAt = clock.GetUtcNow();
        if (!await TrySaveAsync(db, ct))
        {
            return SlugTakenProblem();
        }
        return TypedResults.Ok(CampaignResponse.From(campaign, urls));
    }

    /// <summary>The 400 for a slug another campaign has, or null when it is free.</summary>
    internal static async Task<ValidationProblem?> SlugTaken(ReferloopDb db, string? slug, string? campaignId, CancellationToken ct) =>
        slug is not null && await db.Campaigns.AnyAsync(c => c.Slug == slug && c.Id != campaignId, ct) ? SlugTakenProblem() : null;

    /// <summary>
    /// Saves a campaign the caller has added or changed; false when the slug was taken by another request (or
    /// instance) after <see cref="SlugTaken"/> found it free: the slug is the campaign's only key a caller chooses.
    /// </summary>
    internal static async Task<bool> TrySaveAsync(ReferloopDb db, CancellationToken ct)
    {
        try
        {
            await db.SaveChangesAsync(ct);
            return true;
        }
        catch (DbUpdateException error) when (UniqueViolation.Is(error))
        {
            return false;
        }
    }

    private static ValidationProblem SlugTakenProblem() =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["slug"] = [SlugTakenMessage] },
            title: "The request is not valid.", detail: "See 'errors' for each field and the rule it broke.");

    public const string SlugTakenMessage = "is used by another campaign; choose another.";

    private static async Task<Results<Ok<CampaignResponse>, ProblemHttpResult>> ChangeStatus(string id, string status,
        ReferloopDb db, TimeProvider clock, PublicUrls urls, CancellationToken ct)
    {
        var result = await CampaignStatusChange.ApplyAsync(db, clock, id, status, ct);
        if (result.NotFound)
        {
            return Problems.NotFound("campaign", id);
        }
        if (result.Conflict is not null)
        {
            return Problems.Conflict(result.Conflict);
        }
        return TypedResults.Ok(CampaignResponse.From(result.Campaign!, urls));
    }
}
