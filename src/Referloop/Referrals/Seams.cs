using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Participants;
using Referloop.Storage;

namespace Referloop.Referrals;

/// <summary>Judges a referral when it is created and when it qualifies; by default the campaign's fraud policy.</summary>
public interface IReferralScreening
{
    Task<FraudVerdict> EvaluateAsync(ReferloopDb db, Campaign campaign, Participant advocate, FriendSignals friend, CancellationToken ct);
}

/// <summary>Loads the facts the campaign's fraud policy needs, then runs its checks over them.</summary>
internal sealed class FraudPolicyScreening(TimeProvider clock) : IReferralScreening
{
    public async Task<FraudVerdict> EvaluateAsync(ReferloopDb db, Campaign campaign, Participant advocate, FriendSignals friend,
        CancellationToken ct)
    {
        var facts = await FraudFacts.LoadAsync(db, campaign.Fraud, advocate.Id, friend, clock.GetUtcNow(), ct);
        return FraudChecks.Evaluate(campaign.Fraud, advocate.Email, friend, facts);
    }
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
