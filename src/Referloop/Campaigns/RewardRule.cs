using System.ComponentModel.DataAnnotations;
using Referloop.Http;

namespace Referloop.Campaigns;

public static class RewardRecipient
{
    public const string Advocate = "advocate";
    public const string Friend = "friend";
    public const string Both = "both";
    public static readonly string[] All = [Advocate, Friend, Both];
}

public static class RewardTrigger
{
    /// <summary>The friend signed up.</summary>
    public const string Invited = "invited";

    /// <summary>The friend was qualified or bought.</summary>
    public const string Converted = "converted";

    /// <summary>The friend did the custom event named by <see cref="RewardRule.Event"/>.</summary>
    public const string Event = "event";

    public static readonly string[] All = [Invited, Converted, Event];
}

public static class RewardKind
{
    /// <summary>Every qualifying referral earns the incentive.</summary>
    public const string Standard = "standard";

    /// <summary>Tiers: the advocate's Nth referral earns the tier's incentive.</summary>
    public const string Milestone = "milestone";

    /// <summary>Only the Nth conversion earns the incentive (N = <see cref="RewardRule.Goal"/> or the campaign's goal).</summary>
    public const string Goal = "goal";

    public static readonly string[] All = [Standard, Milestone, Goal];
}

public static class IncentiveType
{
    public const string Rebate = "rebate";
    public const string DiscountCoupon = "discount_coupon";
    public const string Other = "other";
    public static readonly string[] All = [Rebate, DiscountCoupon, Other];
}

public sealed record RewardRule
{
    [RegularExpression(CampaignInput.NameRule)]
    public string? Id { get; init; }

    [Required, Values(typeof(RewardRecipient))]
    public string? Recipient { get; init; }

    [Required, Values(typeof(RewardTrigger))]
    public string? Trigger { get; init; }

    /// <summary>The custom event name when <see cref="Trigger"/> is <c>event</c>.</summary>
    [StringLength(64)]
    public string? Event { get; init; }

    [Required, Values(typeof(RewardKind))]
    public string? Kind { get; init; }

    public Incentive? Incentive { get; init; }

    [MaxLength(50)]
    public List<MilestoneTier>? Tiers { get; init; }

    [Range(1, 100_000)]
    public int? Goal { get; init; }
    public RewardLimits? Limits { get; init; }

    /// <summary>Incentive criteria: the triggering purchase must be worth at least this much, else "criteria mismatch".</summary>
    [Range(0, 1_000_000_000_000d)]
    public decimal? MinPurchaseValue { get; init; }
}

public sealed record Incentive
{
    [Required, Values(typeof(IncentiveType))]
    public string? Type { get; init; }

    [Range(0, 1_000_000_000d)]
    public decimal? Amount { get; init; }

    [RegularExpression(CampaignInput.Currency)]
    public string? Currency { get; init; }

    /// <summary>The coupon pool a <c>discount_coupon</c> is drawn from.</summary>
    [RegularExpression(CampaignInput.NameRule)]
    public string? Pool { get; init; }

    /// <summary>What an <c>other</c> incentive is ("Free T-shirt"); sent as <c>incentive_description</c>.</summary>
    [StringLength(500)]
    public string? Description { get; init; }
}

public sealed record MilestoneTier
{
    [Required, Range(1, 100_000)]
    public int? Referrals { get; init; }

    [Required]
    public Incentive? Incentive { get; init; }
}

public sealed record RewardLimits
{
    /// <summary>Rewards one advocate may earn from this rule in a calendar month (UTC).</summary>
    [Range(1, 1_000_000)]
    public int? PerMonth { get; init; }

    /// <summary>Rewards one advocate may earn from this rule in total.</summary>
    [Range(1, 1_000_000)]
    public int? Total { get; init; }
}
