using System.Globalization;
using Referloop.Campaigns;
using Referloop.Rewards;

namespace Referloop.Dashboard.Shared;

/// <summary>How a reward reads in the dashboard.</summary>
public static class RewardText
{
    public static string Incentive(Reward reward) => reward.Incentive.Type switch
    {
        IncentiveType.Rebate => $"{reward.Incentive.Amount?.ToString("0.##", CultureInfo.InvariantCulture)} {reward.Incentive.Currency} rebate",
        IncentiveType.DiscountCoupon => reward.CouponCode is { } code ? $"coupon {code}" : $"coupon from “{reward.Incentive.Pool}”",
        _ => reward.Incentive.Description ?? "other",
    };
}
