using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Referloop.Http;
using Referloop.Rewards;
using Referloop.Security;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Referrals;

public sealed record StatusChangeResponse(string? From, string To, string Reason, DateTimeOffset At);

public sealed record ReferralResponse(
    string Id,
    string CampaignId,
    string AdvocateId,
    string FriendId,
    string Status,
    string? Reason,
    string AttributedBy,
    string? ClickId,
    bool AutoApproved,
    int? ConversionNumber,
    IReadOnlyList<ScreeningFinding> Findings,
    int RiskScore,
    string? FraudDecision,
    DateTimeOffset? FlaggedAt,
    DateTimeOffset CreatedAt,
    DateTimeOffset? QualifiedAt,
    DateTimeOffset? ApprovedAt,
    DateTimeOffset? VoidedAt,
    DateTimeOffset? ApproveAfter,
    DateTimeOffset? RewardsReleasedAt,
    IReadOnlyList<StatusChangeResponse>? History = null,
    IReadOnlyList<RewardResponse>? Rewards = null)
{
    public static ReferralResponse From(Referral r) => new(r.Id, r.CampaignId, r.AdvocateId, r.FriendId, r.Status, r.Reason,
        r.AttributedBy, r.ClickId, r.AutoApproved, r.ConversionNumber, r.Findings, r.RiskScore, r.FraudDecision, r.FlaggedAt, r.CreatedAt, r.QualifiedAt, r.ApprovedAt,
        r.VoidedAt, r.ApproveAfter, r.RewardsReleasedAt);
}

public sealed record ReferralListQuery(string? CampaignId, [property: Values(typeof(ReferralStatus))] string? Status,
    string? AdvocateId, string? Cursor, int? Limit) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        if (Status is not null)
        {
            errors.OneOf("status", Status, ReferralStatus.All);
        }
        errors.MaxLength("campaignId", CampaignId, 40);
        errors.MaxLength("advocateId", AdvocateId, 40);
        Paging.ValidateQuery(errors, Cursor, Limit);
    }
}

public sealed record ReferralReason([StringLength(500)] string? Reason) : IValidatable
{
    public void Validate(ValidationErrors errors) => errors.MaxLength("reason", Reason, 500);
}

public sealed record VoidReferral([Required, StringLength(500)] string? Reason) : IValidatable
{
    public void Validate(ValidationErrors errors) => errors.Required("reason", Reason, 500);
}

public sealed record QualifyByCode([Required, StringLength(32)] string? Code, [StringLength(500)] string? Reason) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        errors.Required("code", Code, 32);
        errors.MaxLength("reason", Reason, 500);
    }
}

public sealed record ReleasedRewards(string ReferralId, int Issued);

internal static class ReferralsApi
{
    public const string ApprovedByAdmin = "approved by an admin";
    public const string QualifiedByAdmin = "qualified by an admin";

    public static RouteGroupBuilder MapReferrals(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/referrals")
            .WithTags("Referrals")
            .RequireAuthorization(AdminAuthentication.Policy)
            .WithValidation();

        group.MapGet("/", List).WithName("ListReferrals")
            .WithSummary("List referrals, filtered by campaign, status or advocate; status=flagged is the review queue, oldest first")
            .WithDescription("Each referral carries its fraud findings (the reasons), risk score (0-100) and fraud decision. "
                + "Without status=flagged the list is in creation order; with it, in the order referrals entered the queue.");
        group.MapGet("/{id}", Get).WithName("GetReferral").WithSummary("One referral with its status history, fraud findings and rewards");
        group.MapPost("/{id}/approve", Approve).WithName("ApproveReferral")
            .WithSummary("Approve a referral (a pending one is qualified first); its rewards become payable");
        group.MapPost("/{id}/void", Void).WithName("VoidReferral")
            .WithSummary("Void a referral with a reason; its rewards not yet issued are blocked");
        group.MapPost("/{id}/qualify", Qualify).WithName("QualifyReferral").WithSummary("Qualify a pending referral (the friend converted)");
        group.MapPost("/qualify", QualifyCode).WithName("QualifyReferralByCode").ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("Qualify the referral of the friend with this unique code");
        group.MapPost("/{id}/release-rewards", Release).WithName("ReleaseReferralRewards")
            .WithSummary("Issue the rewards of an approved referral that wait for the referral.approved webhook's acknowledgement");
        return group;
    }

    private static async Task<Ok<Page<ReferralResponse>>> List([AsParameters] ReferralListQuery query, ReferloopDb db, CancellationToken ct)
    {
        Paging.TryDecode(query.Cursor, out var after);
        var limit = query.Limit ?? Paging.DefaultLimit;
        var referrals = db.Referrals.AsNoTracking();
        if (query.CampaignId is not null)
        {
            referrals = referrals.Where(r => r.CampaignId == query.CampaignId);
        }
        if (query.Status is not null)
        {
            referrals = referrals.Where(r => r.Status == query.Status);
        }
        if (query.AdvocateId is not null)
        {
            referrals = referrals.Where(r => r.AdvocateId == query.AdvocateId);
        }
        if (query.Status == ReferralStatus.Flagged)
        {
            return TypedResults.Ok(await ReviewQueue.PageAsync(referrals, after, limit, ct));
        }
        if (after is not null)
        {
            referrals = referrals.Where(r => string.Compare(r.Id, after) > 0);
        }
        var rows = await referrals.OrderBy(r => r.Id).Take(limit + 1).ToListAsync(ct);
        return TypedResults.Ok(Paging.ToPage(rows, limit, r => r.Id, ReferralResponse.From));
    }

    private static async Task<Results<Ok<ReferralResponse>, ProblemHttpResult>> Get(string id, ReferloopDb db, CancellationToken ct)
    {
        var referral = await db.Referrals.AsNoTracking().FirstOrDefaultAsync(r => r.Id == id, ct);
        if (referral is null)
        {
            return Problems.NotFound("referral", id);
        }
        return TypedResults.Ok(await DetailAsync(db, referral, ct));
    }

    private static async Task<ReferralResponse> DetailAsync(ReferloopDb db, Referral referral, CancellationToken ct)
    {
        var history = referral.History.Select(h => new StatusChangeResponse(h.From, h.To, h.Reason, h.At)).ToList();
        var rewards = await db.Rewards.AsNoTracking().Where(r => r.ReferralId == referral.Id).OrderBy(r => r.Id).ToListAsync(ct);
        return ReferralResponse.From(referral) with { History = history, Rewards = rewards.Select(RewardResponse.From).ToList() };
    }

    private static Task<Results<Ok<ReferralResponse>, ProblemHttpResult>> Approve(string id, ReferralReason? input,
        ReferralEngine engine, ReferloopDb db, CancellationToken ct) =>
        Answer(id, engine.ApproveAsync(id, Reason(input?.Reason, ApprovedByAdmin), ct), db, ct);

    private static Task<Results<Ok<ReferralResponse>, ProblemHttpResult>> Void(string id, VoidReferral input,
        ReferralEngine engine, ReferloopDb db, CancellationToken ct) =>
        Answer(id, engine.VoidAsync(id, input.Reason!.Trim(), ct), db, ct);

    private static Task<Results<Ok<ReferralResponse>, ProblemHttpResult>> Qualify(string id, ReferralReason? input,
        ReferralEngine engine, ReferloopDb db, CancellationToken ct) =>
        Answer(id, engine.QualifyAsync(id, Reason(input?.Reason, QualifiedByAdmin), ct), db, ct);

    private static async Task<Results<Ok<ReferralResponse>, ProblemHttpResult>> QualifyCode(QualifyByCode input,
        ReferralEngine engine, ReferloopDb db, CancellationToken ct)
    {
        var code = input.Code!.Trim();
        var referralId = await db.Referrals.AsNoTracking().Where(r => r.Friend!.Code == code).Select(r => r.Id).FirstOrDefaultAsync(ct);
        if (referralId is null)
        {
            return TypedResults.Problem(title: "No such referred friend.", detail: $"No referred friend has the code '{code}'.",
                statusCode: StatusCodes.Status404NotFound);
        }
        return await Answer(referralId, engine.QualifyAsync(referralId, Reason(input.Reason, "qualified by the friend's code"), ct), db, ct);
    }

    private static async Task<Results<Ok<ReleasedRewards>, ProblemHttpResult>> Release(string id, ReferloopDb db, TimeProvider clock,
        OutboxWriter outbox, OutboxSignal signal, CancellationToken ct)
    {
        var status = await db.Referrals.AsNoTracking().Where(r => r.Id == id).Select(r => r.Status).FirstOrDefaultAsync(ct);
        if (status is null)
        {
            return Problems.NotFound("referral", id);
        }
        if (status != ReferralStatus.Approved)
        {
            return Problems.Conflict($"The referral is {status}; only an approved referral's rewards can be released.");
        }
        var released = await RewardRelease.OnReferralApprovedAcknowledgedAsync(db, id, clock, outbox, ct);
        signal.Poke();
        return TypedResults.Ok(new ReleasedRewards(id, released));
    }

    private static async Task<Results<Ok<ReferralResponse>, ProblemHttpResult>> Answer(string id, Task<ReferralCommandResult> command,
        ReferloopDb db, CancellationToken ct)
    {
        var result = await command;
        if (result.NotFound)
        {
            return Problems.NotFound("referral", id);
        }
        if (result.Conflict is not null)
        {
            return Problems.Conflict(result.Conflict);
        }
        db.ChangeTracker.Clear();
        var referral = await db.Referrals.AsNoTracking().FirstAsync(r => r.Id == id, ct);
        return TypedResults.Ok(await DetailAsync(db, referral, ct));
    }

    /// <summary>The reason given, else the standard wording of who did it; the dashboard words its actions the same way.</summary>
    internal static string Reason(string? given, string fallback) => string.IsNullOrWhiteSpace(given) ? fallback : given.Trim();
}
