using Referloop.Referrals;

namespace Referloop.Rewards;

public sealed record RewardResponse(
    string Id,
    string CampaignId,
    string ReferralId,
    string ParticipantId,
    string Recipient,
    string RuleId,
    string Trigger,
    string Kind,
    int? Milestone,
    string Status,
    string? Reason,
    string? PendingReason,
    IncentiveData Incentive,
    string? EventId,
    DateTimeOffset CreatedAt,
    DateTimeOffset? IssuedAt,
    DateTimeOffset? PaidAt)
{
    public static RewardResponse From(Reward r) => new(r.Id, r.CampaignId, r.ReferralId, r.ParticipantId, r.Recipient, r.RuleId,
        r.Trigger, r.Kind, r.Milestone, r.Status, r.Reason,
        r.Status == RewardStatus.Pending ? r.PendingReason : null, IncentiveData.From(r), r.EventId, r.CreatedAt, r.IssuedAt, r.PaidAt);
}
