using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Referloop.Campaigns;
using Referloop.Storage;

namespace Referloop.Rewards;

public static class RewardStatus
{
    /// <summary>Earned, but its referral is not approved yet, or its coupon is still being asked for (<see cref="Reward.PendingReason"/>).</summary>
    public const string Pending = "pending";

    /// <summary>The referral is approved; waiting for the <c>referral.approved</c> webhook to be acknowledged.</summary>
    public const string Approved = "approved";

    /// <summary>Payable: hand it out (and mark it paid).</summary>
    public const string Issued = "issued";

    public const string Blocked = "blocked";

    /// <summary>Taken back before it was paid: the purchase that earned it was refunded.</summary>
    public const string Revoked = "revoked";

    /// <summary>Already paid when the purchase that earned it was refunded: the merchant should recover it.</summary>
    public const string ClawbackRequired = "clawback_required";

    public static readonly string[] All = [Pending, Approved, Issued, Blocked, Revoked, ClawbackRequired];
}

/// <summary>Why a pending reward is not released yet, when the reason is not simply its referral's approval.</summary>
public static class PendingReasons
{
    /// <summary>
    /// Released, but its coupon pool had no uploaded code left: the pool's create-coupon URL is asked outside the
    /// event's transaction (<see cref="CouponRequests"/>), and the reward is issued, approved or blocked once it answers.
    /// </summary>
    public const string AwaitingCoupon = "awaiting_coupon";
}

/// <summary>The reasons a reward is blocked, worded as the merchant's dashboard shows them.</summary>
public static class BlockReason
{
    public const string LimitReached = "limit reached";
    public const string CouponCycling = "coupon cycling";
    public const string CriteriaMismatch = "criteria mismatch";
    public const string AutoApprovedNotAllowed = "auto-approved not allowed";
    public const string ShareInactive = "share inactive";
    public const string FraudCheckFailed = "fraud check failed";
    public const string ReferralVoided = "referral voided";
}

/// <summary>One incentive for one participant, earned through one referral by one rule.</summary>
public sealed class Reward
{
    public required string Id { get; init; }
    public required string CampaignId { get; init; }
    public required string ReferralId { get; init; }
    public required string AdvocateId { get; init; }

    /// <summary>Who receives it: the advocate or the friend.</summary>
    public required string ParticipantId { get; init; }

    /// <summary><c>advocate</c> or <c>friend</c>.</summary>
    public required string Recipient { get; init; }

    public required string RuleId { get; init; }
    public required string Trigger { get; init; }
    public required string Kind { get; init; }

    /// <summary>The milestone tier or goal reached (the Nth referral or conversion), when the rule counts.</summary>
    public int? Milestone { get; init; }

    /// <summary>A copy of the rule's incentive at the time it was earned; later rule edits do not change it.</summary>
    public required Incentive Incentive { get; init; }

    public required string Status { get; set; }
    public string? Reason { get; set; }

    /// <summary>A <see cref="PendingReasons"/> value while the reward is pending for that reason, else null.</summary>
    public string? PendingReason { get; set; }

    /// <summary>
    /// While awaiting a coupon: when the create-coupon URL may be asked (again). Taking the request moves it past the
    /// call's timeout, so another instance leaves the reward alone while it is being asked, and takes over if the
    /// instance that asked died.
    /// </summary>
    public DateTimeOffset? CouponDueAt { get; set; }

    /// <summary>How many times the create-coupon URL was asked for this reward.</summary>
    public int CouponAttempts { get; set; }
    public string? CouponCode { get; set; }
    public string? EventId { get; init; }

    // The limit counters this reward took, given back if it is blocked later.
    public string? CountedMonth { get; set; }
    public bool CountedTotal { get; set; }

    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? IssuedAt { get; set; }
    public DateTimeOffset? PaidAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>
/// Per-advocate counters (conversions, referrals, rewards per rule and period), changed only by conditional
/// UPDATEs so that limits hold under concurrency on every provider and across server instances.
/// </summary>
public sealed class AdvocateCounter
{
    public required string ParticipantId { get; init; }
    public required string Name { get; init; }
    public int Count { get; set; }
}

internal sealed class RewardConfiguration : IEntityTypeConfiguration<Reward>
{
    public void Configure(EntityTypeBuilder<Reward> reward)
    {
        reward.ToTable("rewards");
        reward.HasKey(r => r.Id);
        reward.Property(r => r.Id).HasMaxLength(40);
        reward.Property(r => r.CampaignId).HasMaxLength(40);
        reward.Property(r => r.ReferralId).HasMaxLength(40);
        reward.Property(r => r.AdvocateId).HasMaxLength(40);
        reward.Property(r => r.ParticipantId).HasMaxLength(40);
        reward.Property(r => r.Recipient).HasMaxLength(16);
        reward.Property(r => r.RuleId).HasMaxLength(64);
        reward.Property(r => r.Trigger).HasMaxLength(16);
        reward.Property(r => r.Kind).HasMaxLength(16);
        // clawback_required is the longest.
        reward.Property(r => r.Status).HasMaxLength(24);
        reward.Property(r => r.Reason).HasMaxLength(1000);
        reward.Property(r => r.PendingReason).HasMaxLength(32);
        reward.Property(r => r.CouponCode).HasMaxLength(200);
        reward.Property(r => r.EventId).HasMaxLength(40);
        reward.Property(r => r.CountedMonth).HasMaxLength(7);
        reward.Property(r => r.Incentive).HasConversion(JsonColumn.Converter<Incentive>(), JsonColumn.Comparer<Incentive>());
        reward.HasIndex(r => new { r.ReferralId, r.Status });
        reward.HasIndex(r => new { r.ParticipantId, r.Id });
        reward.HasIndex(r => new { r.CampaignId, r.Status, r.Id });
        // Only rewards waiting for a minted coupon hold a due time.
        reward.HasIndex(r => r.CouponDueAt).HasFilter("\"CouponDueAt\" IS NOT NULL");
    }
}

internal sealed class AdvocateCounterConfiguration : IEntityTypeConfiguration<AdvocateCounter>
{
    public void Configure(EntityTypeBuilder<AdvocateCounter> counter)
    {
        counter.ToTable("advocate_counters");
        counter.HasKey(c => new { c.ParticipantId, c.Name });
        counter.Property(c => c.ParticipantId).HasMaxLength(40);
        counter.Property(c => c.Name).HasMaxLength(200);
    }
}
