using Microsoft.EntityFrameworkCore;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Storage;

namespace Referloop.Webhooks;

/// <summary>
/// Ties the referral engine to webhook delivery for seeds/002: rewards of an approved referral wait while some
/// enabled endpoint will receive <c>referral.approved</c>, and are released by the first 2xx it answers.
/// </summary>
internal sealed class ReferralApprovalWebhooks(TimeProvider clock) : IReferralApprovalListeners, IAcknowledgementHandler
{
    public async Task<bool> AnyAsync(ReferloopDb db, string campaignId, CancellationToken ct)
    {
        // Endpoints are few; their event filters are a JSON column, so the filter is applied here.
        var endpoints = await db.WebhookEndpoints.AsNoTracking()
            .Where(e => e.Enabled && (e.CampaignId == null || e.CampaignId == campaignId))
            .Select(e => e.EventTypes)
            .ToListAsync(ct);
        return endpoints.Any(types => types.Count == 0 || types.Contains(EventTypes.ReferralApproved));
    }

    public Task OnReferralApprovedAcknowledgedAsync(ReferloopDb db, string referralId, CancellationToken ct) =>
        RewardRelease.OnReferralApprovedAcknowledgedAsync(db, referralId, clock, ct);
}
