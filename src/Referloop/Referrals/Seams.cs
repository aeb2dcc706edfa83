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

internal sealed class FraudPolicyScreening(TimeProvider clock) : IReferralScreening
{
    public Task<FraudVerdict> EvaluateAsync(ReferloopDb db, Campaign campaign, Participant advocate, FriendSignals friend,
        CancellationToken ct) => FraudChecks.EvaluateAsync(db, campaign, advocate, friend, clock, ct);
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
