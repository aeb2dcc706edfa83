using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Referrals;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Rewards;

/// <summary>
/// Rewards tied to an approved referral become payable only once the <c>referral.approved</c> webhook was
/// acknowledged with a 2xx (seeds/002). Until then they wait in status <c>approved</c>.
/// </summary>
public static class RewardRelease
{
    /// <summary>
    /// Called by webhook delivery when an endpoint answered 2xx to a <c>referral.approved</c> message (also by
    /// <c>POST /api/v1/referrals/{id}/release-rewards</c>). Issues the referral's waiting rewards, each with its
    /// <c>reward.issued</c> event, in one transaction. Idempotent: later acknowledgements (retries, other endpoints)
    /// change nothing. Returns the number of rewards issued.
    /// </summary>
    public static async Task<int> OnReferralApprovedAcknowledgedAsync(ReferloopDb db, string referralId, TimeProvider clock,
        CancellationToken ct)
    {
        var own = db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(ct) : null;
        try
        {
            var now = clock.GetUtcNow();
            // The conditional UPDATE makes exactly one acknowledgement the one that releases.
            var claimed = await db.Referrals
                .Where(r => r.Id == referralId && r.Status == ReferralStatus.Approved && r.RewardsReleasedAt == null)
                .ExecuteUpdateAsync(s => s.SetProperty(r => r.RewardsReleasedAt, now), ct);
            if (claimed == 0)
            {
                return 0;
            }
            var snapshot = await LoadSnapshotAsync(db, referralId, ct);

            var waiting = await db.Rewards.Where(r => r.ReferralId == referralId && r.Status == RewardStatus.Approved)
                .OrderBy(r => r.Id).ToListAsync(ct);
            foreach (var reward in waiting)
            {
                reward.Status = RewardStatus.Issued;
                reward.IssuedAt = now;
                reward.UpdatedAt = now;
                Outbox.Add(db, snapshot.RewardMessage(reward, now));
            }
            await db.SaveChangesAsync(ct);
            if (own is not null)
            {
                await own.CommitAsync(ct);
            }
            return waiting.Count;
        }
        finally
        {
            if (own is not null)
            {
                await own.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// A released reward that has its coupon (or needs none) becomes payable: <c>issued</c> with its
    /// <c>reward.issued</c> event, or <c>approved</c> while its referral's approval webhook is not acknowledged yet
    /// (sign-up rewards never wait for that). The engine calls it as it releases; the coupon requests, once the
    /// create-coupon URL has answered. Returns the message to write, if any.
    /// </summary>
    public static OutboxMessage? MakePayable(ReferralSnapshot snapshot, Reward reward, DateTimeOffset now)
    {
        reward.PendingReason = null;
        reward.CouponDueAt = null;
        reward.UpdatedAt = now;
        if (reward.Trigger != RewardTrigger.Invited && snapshot.Referral.RewardsReleasedAt is null)
        {
            reward.Status = RewardStatus.Approved;
            return null;
        }
        reward.Status = RewardStatus.Issued;
        reward.IssuedAt = now;
        return snapshot.RewardMessage(reward, now);
    }

    /// <summary>What a referral's messages describe, in one read (this runs for every approved referral a receiver acknowledges).</summary>
    public static async Task<ReferralSnapshot> LoadSnapshotAsync(ReferloopDb db, string referralId, CancellationToken ct)
    {
        var found = await (
                from r in db.Referrals
                where r.Id == referralId
                join c in db.Campaigns on r.CampaignId equals c.Id
                join a in db.Participants on r.AdvocateId equals a.Id
                join f in db.Participants on r.FriendId equals f.Id
                select new { Referral = r, Campaign = c, Advocate = a, Friend = f })
            .AsNoTracking().FirstAsync(ct);
        var conversions = await AdvocateCounters.ReadAsync(db, found.Advocate.Id, AdvocateCounters.Conversions, ct);
        return new ReferralSnapshot(found.Campaign, found.Referral, found.Advocate, found.Friend, conversions);
    }
}
