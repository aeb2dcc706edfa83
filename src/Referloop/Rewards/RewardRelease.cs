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
    /// Called when an endpoint answered 2xx to a <c>referral.approved</c> message (also by
    /// <c>POST /api/v1/referrals/{id}/release-rewards</c>). Issues the referral's waiting rewards, each with its
    /// <c>reward.issued</c> event, in one transaction. Idempotent: later acknowledgements (retries, other endpoints)
    /// change nothing. Returns the number of rewards issued.
    /// </summary>
    public static Task<int> OnReferralApprovedAcknowledgedAsync(ReferloopDb db, string referralId, TimeProvider clock,
        OutboxWriter outbox, CancellationToken ct) => OnReferralsApprovedAcknowledgedAsync(db, [referralId], clock, outbox, ct);

    /// <summary>
    /// The same for every referral whose approval a batch of recorded attempts acknowledged, with one statement per
    /// step whatever their number: webhook delivery records its attempts in batches.
    /// </summary>
    public static async Task<int> OnReferralsApprovedAcknowledgedAsync(ReferloopDb db, IReadOnlyCollection<string> referralIds,
        TimeProvider clock, OutboxWriter outbox, CancellationToken ct)
    {
        if (referralIds.Count == 0)
        {
            return 0;
        }
        var own = db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(ct) : null;
        try
        {
            var now = clock.GetUtcNow();
            var ids = referralIds.Distinct().ToArray();
            // Exactly one acknowledgement releases a referral: another instance's waits here until it has committed,
            // and then reads the referral as released.
            await ReferralStore.LockReferralsAsync(db, ids, ct);
            // By id alone, the status checked here: given the status in the query as well, SQLite (without statistics)
            // searched the index that starts with the status rather than the primary key, and read every approved
            // referral of the program for each batch of acknowledgements.
            var released = (await db.Referrals.AsNoTracking()
                    .Where(r => ids.Contains(r.Id))
                    .Select(r => new { r.Id, r.Status, r.RewardsReleasedAt })
                    .ToListAsync(ct))
                .Where(r => r.Status == ReferralStatus.Approved && r.RewardsReleasedAt == null)
                .Select(r => r.Id).ToList();
            if (released.Count == 0)
            {
                return 0;
            }
            await db.Referrals.Where(r => released.Contains(r.Id))
                .ExecuteUpdateAsync(s => s.SetProperty(r => r.RewardsReleasedAt, now), ct);
            var snapshots = await LoadSnapshotsAsync(db, released, ct);

            // Read, changed and written as a set, without the change tracker: they all change alike. Locked on
            // PostgreSQL as they are read: a refund of another referral of the advocate may be taking one back.
            var rewards = db.OnSqlite
                ? db.Rewards
                : db.Rewards.FromSql($"""SELECT * FROM rewards WHERE "ReferralId" = ANY({released.ToArray()}) ORDER BY "Id" FOR UPDATE""");
            var waiting = await rewards.AsNoTracking()
                .Where(r => released.Contains(r.ReferralId) && r.Status == RewardStatus.Approved)
                .OrderBy(r => r.Id).ToListAsync(ct);
            var rewardIds = waiting.Select(r => r.Id).ToList();
            if (rewardIds.Count > 0)
            {
                await db.Rewards.Where(r => rewardIds.Contains(r.Id) && r.Status == RewardStatus.Approved)
                    .ExecuteUpdateAsync(s => s
                        .SetProperty(r => r.Status, RewardStatus.Issued)
                        .SetProperty(r => r.IssuedAt, now)
                        .SetProperty(r => r.UpdatedAt, now), ct);
            }
            var messages = new List<OutboxMessage>(waiting.Count);
            foreach (var reward in waiting)
            {
                reward.Status = RewardStatus.Issued;
                reward.IssuedAt = now;
                reward.UpdatedAt = now;
                messages.Add(snapshots[reward.ReferralId].RewardMessage(reward, now));
            }
            await outbox.InsertAsync(db, messages, now, ct);
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

    /// <summary>What a referral's messages describe, in one read.</summary>
    public static async Task<ReferralSnapshot> LoadSnapshotAsync(ReferloopDb db, string referralId, CancellationToken ct) =>
        (await LoadSnapshotsAsync(db, [referralId], ct))[referralId];

    /// <summary>What the referrals' messages describe: referral, campaign and both people in one read, the advocates' conversions in another.</summary>
    public static async Task<Dictionary<string, ReferralSnapshot>> LoadSnapshotsAsync(ReferloopDb db, IReadOnlyCollection<string> referralIds,
        CancellationToken ct)
    {
        var ids = referralIds.ToList();
        var found = await (
                from r in db.Referrals
                where ids.Contains(r.Id)
                join c in db.Campaigns on r.CampaignId equals c.Id
                join a in db.Participants on r.AdvocateId equals a.Id
                join f in db.Participants on r.FriendId equals f.Id
                select new { Referral = r, Campaign = c, Advocate = a, Friend = f })
            .AsNoTracking().ToListAsync(ct);
        var advocateIds = found.Select(x => x.Advocate.Id).Distinct().ToList();
        var conversions = await db.AdvocateCounters.AsNoTracking()
            .Where(c => advocateIds.Contains(c.ParticipantId) && c.Name == AdvocateCounters.Conversions)
            .ToDictionaryAsync(c => c.ParticipantId, c => c.Count, ct);
        return found.ToDictionary(x => x.Referral.Id, x => new ReferralSnapshot(x.Campaign, x.Referral, x.Advocate, x.Friend,
            conversions.GetValueOrDefault(x.Advocate.Id)));
    }
}
