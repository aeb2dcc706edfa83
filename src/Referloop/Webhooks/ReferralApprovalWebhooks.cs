using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Storage;

namespace Referloop.Webhooks;

/// <summary>
/// Ties the referral engine to webhook delivery for seeds/002: rewards of an approved referral wait while some
/// enabled endpoint will receive <c>referral.approved</c>, and are released by the first 2xx it answers.
/// </summary>
internal sealed class ReferralApprovalWebhooks(TimeProvider clock, OutboxWriter outbox) : IReferralApprovalListeners, IAcknowledgementHandler
{
    public async Task<bool> AnyAsync(ReferloopDb db, string campaignId, CancellationToken ct) =>
        // Endpoints are few, and the approval's save reads the same list to fan out its messages.
        (await EnabledEndpoints.ReadAsync(db, ct)).Any(e => e.Subscribes(EventTypes.ReferralApproved, campaignId));

    public Task OnReferralsApprovedAcknowledgedAsync(ReferloopDb db, IReadOnlyList<string> referralIds, CancellationToken ct) =>
        RewardRelease.OnReferralsApprovedAcknowledgedAsync(db, referralIds, clock, outbox, ct);
}
