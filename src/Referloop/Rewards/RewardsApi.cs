using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Referloop.Http;
using Referloop.Referrals;
using Referloop.Security;
using Referloop.Storage;

namespace Referloop.Rewards;

public sealed record RewardListQuery(string? CampaignId, string? ParticipantId, string? ReferralId, [property: Values(typeof(RewardStatus))] string? Status, bool? Paid,
    string? Cursor, int? Limit) : IValidatable
{
    public void Validate(ValidationErrors errors)
    {
        if (Status is not null)
        {
            errors.OneOf("status", Status, RewardStatus.All);
        }
        errors.MaxLength("campaignId", CampaignId, 40);
        errors.MaxLength("participantId", ParticipantId, 40);
        errors.MaxLength("referralId", ReferralId, 40);
        Paging.ValidateQuery(errors, Cursor, Limit);
    }
}

internal static class RewardsApi
{
    public static RouteGroupBuilder MapRewards(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/rewards")
            .WithTags("Rewards")
            .RequireAuthorization(AdminAuthentication.Policy)
            .WithValidation();

        group.MapGet("/", List).WithName("ListRewards")
            .WithSummary("List rewards, filtered by campaign, participant, referral, status or paid");
        group.MapGet("/{id}", Get).WithName("GetReward").WithSummary("Get one reward");
        group.MapPost("/{id}/paid", MarkPaid).WithName("MarkRewardPaid")
            .WithSummary("Record that an issued reward was paid out (idempotent)");
        return group;
    }

    private static async Task<Ok<Page<RewardResponse>>> List([AsParameters] RewardListQuery query, ReferloopDb db, CancellationToken ct)
    {
        Paging.TryDecode(query.Cursor, out var after);
        var limit = query.Limit ?? Paging.DefaultLimit;
        var rewards = db.Rewards.AsNoTracking();
        if (query.CampaignId is not null)
        {
            rewards = rewards.Where(r => r.CampaignId == query.CampaignId);
        }
        if (query.ParticipantId is not null)
        {
            rewards = rewards.Where(r => r.ParticipantId == query.ParticipantId);
        }
        if (query.ReferralId is not null)
        {
            rewards = rewards.Where(r => r.ReferralId == query.ReferralId);
        }
        if (query.Status is not null)
        {
            rewards = rewards.Where(r => r.Status == query.Status);
        }
        if (query.Paid is { } paid)
        {
            rewards = paid ? rewards.Where(r => r.PaidAt != null) : rewards.Where(r => r.PaidAt == null);
        }
        if (after is not null)
        {
            rewards = rewards.Where(r => string.Compare(r.Id, after) > 0);
        }
        var rows = await rewards.OrderBy(r => r.Id).Take(limit + 1).ToListAsync(ct);
        return TypedResults.Ok(Paging.ToPage(rows, limit, r => r.Id, RewardResponse.From));
    }

    private static async Task<Results<Ok<RewardResponse>, ProblemHttpResult>> Get(string id, ReferloopDb db, CancellationToken ct)
    {
        var reward = await db.Rewards.AsNoTracking().FirstOrDefaultAsync(r => r.Id == id, ct);
        return reward is null ? Problems.NotFound("reward", id) : TypedResults.Ok(RewardResponse.From(reward));
    }

    private static async Task<Results<Ok<RewardResponse>, ProblemHttpResult>> MarkPaid(string id, ReferloopDb db, TimeProvider clock,
        CancellationToken ct)
    {
        var (reward, conflict) = await MarkPaidAsync(db, id, clock.GetUtcNow(), ct);
        if (reward is null)
        {
            return Problems.NotFound("reward", id);
        }
        return conflict is null ? TypedResults.Ok(RewardResponse.From(reward)) : Problems.Conflict(conflict);
    }

    /// <summary>
    /// Records the payment of an issued reward, once: the reward (null when there is none) and, when it cannot be
    /// paid, why. The API and the dashboard both pay through here.
    /// </summary>
    public static async Task<(Reward? Reward, string? Conflict)> MarkPaidAsync(ReferloopDb db, string id, DateTimeOffset now,
        CancellationToken ct)
    {
        await using var transaction = db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(ct) : null;
        // After a refund or void of its referral being decided, which would otherwise write the reward over the payment.
        if (await db.Rewards.Where(r => r.Id == id).Select(r => r.ReferralId).FirstOrDefaultAsync(ct) is { } referralId)
        {
            await ReferralStore.LockReferralsAsync(db, [referralId], ct);
        }
        // Conditional, so two concurrent calls record one payment time.
        await db.Rewards.Where(r => r.Id == id && r.Status == RewardStatus.Issued && r.PaidAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.PaidAt, now).SetProperty(r => r.UpdatedAt, now), ct);
        var reward = await db.Rewards.AsNoTracking().FirstOrDefaultAsync(r => r.Id == id, ct);
        if (transaction is not null)
        {
            await transaction.CommitAsync(ct);
        }
        if (reward is null)
        {
            return (null, null);
        }
        return reward.Status == RewardStatus.Issued ? (reward, null)
            : (reward, $"The reward is {reward.Status}; only an issued reward can be paid.");
    }
}
