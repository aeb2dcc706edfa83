using System.Text.Json.Serialization;
using Referloop.Campaigns;
using Referloop.Participants;
using Referloop.Rewards;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Referrals;

/// <summary>The <c>data</c> of every <c>referral.*</c> and <c>reward.*</c> event (DESIGN §7).</summary>
public sealed record ReferralEventData(
    CampaignRef Campaign,
    ReferralRef Referral,
    AdvocateRef Advocate,
    FriendRef Friend,
    EventRef? Event,
    RewardRef? Reward = null)
{
    /// <summary>Only on <c>referral.flagged</c>: the risk score and the checks that sent the referral to review.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ReviewRef? Review { get; init; }
}

public sealed record ReviewRef(int RiskScore, IReadOnlyList<ScreeningFinding> Reasons, DateTimeOffset FlaggedAt);

public sealed record ReferralRef(string Id, string Status, string? Reason, DateTimeOffset CreatedAt, DateTimeOffset? QualifiedAt,
    DateTimeOffset? ApprovedAt, DateTimeOffset? VoidedAt, bool AutoApproved);

public sealed record AdvocateRef(string Id, string Email, string? Name, string Code, string? CustomValue, int Conversions);

public sealed record FriendRef(string Id, string Email, string? Name, string Code);

public sealed record EventRef(string Type, string? OrderId, decimal? PurchaseValue, string? Currency);

public sealed record RewardRef(string Id, string Recipient, string ParticipantId, string RuleId, string Status, string? Reason,
    IncentiveData Incentive);

public sealed record IncentiveData(string Type, decimal? Amount, string? Currency, string? CouponCode, string? Description)
{
    public static IncentiveData From(Reward reward) => new(reward.Incentive.Type ?? IncentiveType.Other, reward.Incentive.Amount,
        reward.Incentive.Currency, reward.CouponCode, reward.Incentive.Description);
}

/// <summary>
/// The <c>data</c> of <c>conversion</c>: exactly the GET parameters of the conversion callback (seeds/000),
/// so the query format can send it as is.
/// </summary>
public sealed record ConversionData(
    [property: JsonPropertyName("conversion")] string Conversion,
    [property: JsonPropertyName("referrer_name")] string? ReferrerName,
    [property: JsonPropertyName("referrer_email")] string ReferrerEmail,
    [property: JsonPropertyName("referee_name")] string? RefereeName,
    [property: JsonPropertyName("referee_email")] string RefereeEmail,
    [property: JsonPropertyName("orderID")] string? OrderId,
    [property: JsonPropertyName("purchaseValue")] decimal? PurchaseValue,
    [property: JsonPropertyName("referrer_converts")] int ReferrerConverts,
    [property: JsonPropertyName("referrer_customValue")] string? ReferrerCustomValue,
    [property: JsonPropertyName("goal_complete")] int GoalComplete);

public static class ConversionStatus
{
    public const string Success = "success";
    public const string Fail = "fail";
    public const string Pending = "pending";
}

/// <summary>Everything an outbound referral event is built from.</summary>
public sealed record ReferralSnapshot(Campaign Campaign, Referral Referral, Participant Advocate, Participant Friend, int Conversions)
{
    public ReferralEventData Data(RewardRef? reward = null) => new(
        new CampaignRef(Campaign.Id, Campaign.Name),
        new ReferralRef(Referral.Id, Referral.Status, Referral.Reason, Referral.CreatedAt, Referral.QualifiedAt,
            Referral.ApprovedAt, Referral.VoidedAt, Referral.AutoApproved),
        new AdvocateRef(Advocate.Id, Advocate.Email, Advocate.Name, Advocate.Code, Advocate.CustomValue, Conversions),
        new FriendRef(Friend.Id, Friend.Email, Friend.Name, Friend.Code),
        Referral.EventType is null ? null : new EventRef(Referral.EventType, Referral.OrderId, Referral.PurchaseValue, Referral.Currency),
        reward);

    public OutboxMessage Message(string type, DateTimeOffset now) => Outbox.Create(type, Campaign.Id, Data(), now);

    public OutboxMessage FlaggedMessage(DateTimeOffset now) => Outbox.Create(EventTypes.ReferralFlagged, Campaign.Id,
        Data() with { Review = new ReviewRef(Referral.RiskScore, Referral.Findings, Referral.FlaggedAt ?? now) }, now);

    /// <summary><c>reward.issued</c>, <c>reward.blocked</c> for a blocked reward, <c>reward.revoked</c> for one a refund took back.</summary>
    public OutboxMessage RewardMessage(Reward reward, DateTimeOffset now) =>
        Outbox.Create(reward.Status switch
        {
            RewardStatus.Blocked => EventTypes.RewardBlocked,
            RewardStatus.Revoked or RewardStatus.ClawbackRequired => EventTypes.RewardRevoked,
            _ => EventTypes.RewardIssued,
        }, Campaign.Id,
            Data(new RewardRef(reward.Id, reward.Recipient, reward.ParticipantId, reward.RuleId, reward.Status, reward.Reason,
                IncentiveData.From(reward))), now);

    /// <summary>The goal N of the campaign, else of its first goal rule: the Nth conversion reports goal_complete=1.</summary>
    public int? Goal => Campaign.GoalConversions ?? Campaign.Rewards.FirstOrDefault(r => r.Kind == RewardKind.Goal)?.Goal;

    public OutboxMessage ConversionMessage(string status, DateTimeOffset now) =>
        Outbox.Create(EventTypes.Conversion, Campaign.Id, new ConversionData(status, Advocate.Name, Advocate.Email, Friend.Name,
            Friend.Email, Referral.OrderId, Referral.PurchaseValue, Conversions, Advocate.CustomValue,
            status != ConversionStatus.Fail && Referral.ConversionNumber is { } n && n == Goal ? 1 : 0), now);
}
