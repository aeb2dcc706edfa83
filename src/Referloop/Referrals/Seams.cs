using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Participants;
using Referloop.Storage;

namespace Referloop.Referrals;

/// <summary>
/// Judges a referral when it is created and when it qualifies, over facts read before: by default the campaign's
/// fraud policy (<see cref="FraudChecks"/>). Pure: the referral core calls it while it decides.
/// </summary>
public interface IReferralScreening
{
    FraudVerdict Evaluate(Campaign campaign, Participant advocate, FriendSignals friend, FraudFacts facts);
}

internal sealed class FraudPolicyScreening : IReferralScreening
{
    public FraudVerdict Evaluate(Campaign campaign, Participant advocate, FriendSignals friend, FraudFacts facts) =>
        FraudChecks.Evaluate(campaign.Fraud, advocate.Email, friend, facts.ForClick(friend.ClickId));
}

/// <summary>
/// Whether some enabled webhook endpoint receives <c>referral.approved</c> for a campaign. When one does, rewards
/// tied to an approval wait (status <c>approved</c>) until that webhook is acknowledged with a 2xx
/// (<see cref="Rewards.RewardRelease.OnReferralApprovedAcknowledgedAsync"/>); when none does, they are issued at
/// approval, because nothing would ever acknowledge them.
/// </summary>
public interface IReferralApprovalListeners
{
    Task<bool> AnyAsync(ReferloopDb db, string campaignId, CancellationToken ct);
}
