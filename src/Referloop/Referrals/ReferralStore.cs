using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Participants;
using Referloop.Rewards;
using Referloop.Storage;
using Referloop.Tracking;
using Referloop.Webhooks;

namespace Referloop.Referrals;

/// <summary>
/// The referral core's edges: reads the <see cref="ReferralFacts"/> a command needs, and writes the
/// <see cref="ReferralChanges"/> it decided, both inside the caller's transaction. A stored row that changed since it
/// was read fails the write with <see cref="ConcurrentChangeException"/>, and the caller runs the command again.
/// </summary>
public sealed class ReferralStore(ReferloopDb db, IReferralApprovalListeners listeners)
{
    private static readonly Func<ReferloopDb, string, string, CancellationToken, Task<Participant?>> ParticipantByEmail =
        EF.CompileAsyncQuery((ReferloopDb db, string campaignId, string email, CancellationToken ct) =>
            db.Participants.AsNoTracking().FirstOrDefault(p => p.CampaignId == campaignId && p.Email == email));

    private static readonly Func<ReferloopDb, string, string, string, IAsyncEnumerable<Participant>> ParticipantsByEmailOrCode =
        EF.CompileAsyncQuery((ReferloopDb db, string campaignId, string email, string code) =>
            db.Participants.AsNoTracking().Where(p => p.CampaignId == campaignId && (p.Email == email || p.Code == code)));

    private static readonly Func<ReferloopDb, string, CancellationToken, Task<Participant>> ParticipantById =
        EF.CompileAsyncQuery((ReferloopDb db, string id, CancellationToken ct) => db.Participants.AsNoTracking().First(p => p.Id == id));

    private static readonly Func<ReferloopDb, string, CancellationToken, Task<Referral?>> ReferralOfFriend =
        EF.CompileAsyncQuery((ReferloopDb db, string friendId, CancellationToken ct) =>
            db.Referrals.AsNoTracking().FirstOrDefault(r => r.FriendId == friendId));

    private static readonly Func<ReferloopDb, string, IAsyncEnumerable<Reward>> RewardsOf =
        EF.CompileAsyncQuery((ReferloopDb db, string referralId) =>
            db.Rewards.AsNoTracking().Where(r => r.ReferralId == referralId).OrderBy(r => r.Id).AsQueryable());

    // ---------------------------------------------------------------- reads

    /// <summary>What <see cref="ReferralCore.Track"/> needs for <paramref name="tracked"/>, already recorded.</summary>
    public async Task<ReferralFacts> LoadForEventAsync(Campaign campaign, TrackedEvent tracked, string? couponCode, DateTimeOffset now,
        CancellationToken ct)
    {
        Participant? friend = null;
        Participant? codeOwner = null;
        if (tracked.ReferralCode is { } code)
        {
            // One read finds both the friend and the advocate whose referral code the event carries.
            await foreach (var participant in ParticipantsByEmailOrCode(db, campaign.Id, tracked.Email, code).WithCancellation(ct))
            {
                if (participant.Email == tracked.Email)
                {
                    friend = participant;
                }
                if (participant.Code == code)
                {
                    codeOwner = participant;
                }
            }
        }
        else
        {
            friend = await ParticipantByEmail(db, campaign.Id, tracked.Email, ct);
        }

        var referral = friend is null ? null : await ReferralOfFriend(db, friend.Id, ct);
        AttributionMatch? match = null;
        Participant? advocate;
        if (referral is null)
        {
            match = campaign.IsActive
                ? await Attribution.FindAsync(db, campaign, tracked, codeOwnerRead: tracked.ReferralCode is not null, codeOwner, ct)
                : null;
            if (match is null || match.Advocate.Id == friend?.Id)
            {
                db.ChangeTracker.Clear();
                return new ReferralFacts { Campaign = campaign, Now = now, Friend = friend, Match = match };
            }
            advocate = match.Advocate;
        }
        else
        {
            advocate = await ParticipantById(db, referral.AdvocateId, ct);
        }

        // Screened when the referral is created, and when a purchase converts it.
        var screened = referral is null
            || (tracked.Type == EventKinds.Purchase && referral is { Status: ReferralStatus.Pending } or { Status: ReferralStatus.Flagged, QualifiedAt: null });
        var fraud = screened
            ? await FraudFacts.LoadAsync(db, campaign.Fraud, advocate.Id,
                new FriendSignals(tracked.Email, tracked.Ip, match?.ClickId ?? tracked.ClickId, tracked.UserAgent, couponCode), now, ct,
                [tracked.ClickId ?? referral?.ClickId ?? match?.ClickId])
            : FraudFacts.None;
        var browserEarns = campaign.Fraud.BrowserConversions == BrowserConversions.Accept;
        var customEventSeen = friend is not null && tracked.Type is not (EventKinds.Signup or EventKinds.Purchase)
            && campaign.Rewards.Any(r => r.Trigger == RewardTrigger.Event && r.Event == tracked.Type)
            && await db.Events.AnyAsync(e => e.ParticipantId == friend.Id && e.Type == tracked.Type && e.Id != tracked.Id
                && (e.Source == EventSource.Server || browserEarns), ct);

        return await LoadAroundAsync(campaign, referral, advocate, friend, now, ct, match, fraud, customEventSeen);
    }

    /// <summary>What a command about one referral needs (qualify, approve, void, approve when due); null when it does not exist.</summary>
    public async Task<ReferralFacts?> LoadForReferralAsync(string referralId, DateTimeOffset now, CancellationToken ct)
    {
        var found = await (
                from r in db.Referrals
                where r.Id == referralId
                join c in db.Campaigns on r.CampaignId equals c.Id
                join a in db.Participants on r.AdvocateId equals a.Id
                join f in db.Participants on r.FriendId equals f.Id
                select new { Referral = r, Campaign = c, Advocate = a, Friend = f })
            .AsNoTracking().FirstOrDefaultAsync(ct);
        if (found is null)
        {
            return null;
        }
        var fraud = found.Referral.Status is ReferralStatus.Pending or ReferralStatus.Flagged
            ? await FraudFacts.LoadAsync(db, found.Campaign.Fraud, found.Advocate.Id,
                new FriendSignals(found.Friend.Email, null, found.Referral.ClickId, null, null), now, ct)
            : FraudFacts.None;
        return await LoadAroundAsync(found.Campaign, found.Referral, found.Advocate, found.Friend, now, ct, fraud: fraud);
    }

    /// <summary>Everything about the advocate and the referral, once both are known.</summary>
    private async Task<ReferralFacts> LoadAroundAsync(Campaign campaign, Referral? referral, Participant advocate, Participant? friend,
        DateTimeOffset now, CancellationToken ct, AttributionMatch? match = null, FraudFacts? fraud = null, bool customEventSeen = false)
    {
        // On PostgreSQL the read locks the advocate's row: one command of an advocate at a time, across instances, so
        // their counters and risk level are read and written as one. (SQLite runs one write transaction at a time.)
        var counterRows = db.OnSqlite
            ? db.Database.SqlQuery<CounterRow>($"""
                SELECT c."Name", c."Count" FROM participants AS p
                JOIN advocate_counters AS c ON c."ParticipantId" = p."Id" WHERE p."Id" = {advocate.Id}
                """)
            : db.Database.SqlQuery<CounterRow>($"""
                SELECT c."Name", c."Count" FROM participants AS p
                LEFT JOIN advocate_counters AS c ON c."ParticipantId" = p."Id" WHERE p."Id" = {advocate.Id} FOR UPDATE OF p
                """);
        var counters = new Dictionary<string, int>();
        foreach (var row in await counterRows.ToListAsync(ct))
        {
            if (row.Name is not null)
            {
                counters[row.Name] = row.Count ?? 0;
            }
        }
        var rewards = new List<Reward>();
        if (referral is not null)
        {
            await foreach (var reward in RewardsOf(db, referral.Id).WithCancellation(ct))
            {
                rewards.Add(reward);
            }
        }
        // A low level means that no referral counts against the advocate: nothing to read.
        var counted = advocate.RiskLevel == RiskLevel.Low ? [] : await db.Referrals.AsNoTracking()
            .Where(r => r.AdvocateId == advocate.Id
                && (r.FraudDecision == FraudDecision.Flagged || r.FraudDecision == FraudDecision.Blocked
                    || r.FraudDecision == FraudDecision.Rejected))
            .OrderByDescending(r => r.Id)
            .Select(r => new CountedReferral(r.Id, r.FraudDecision!, r.RiskScore, r.Findings))
            .ToListAsync(ct);
        var facts = new ReferralFacts
        {
            Campaign = campaign,
            Now = now,
            Referral = referral,
            Advocate = advocate,
            Friend = friend,
            Match = match,
            Counters = counters,
            Rewards = rewards,
            Fraud = fraud ?? FraudFacts.None,
            CountedReferrals = counted,
            ApprovalListeners = await listeners.AnyAsync(db, campaign.Id, ct),
            CustomEventSeen = customEventSeen,
            Coupons = await LoadCouponsAsync(campaign, rewards, ct),
        };
        // Attribution reads its advocate through a tracking query; everything the core changes is written explicitly.
        db.ChangeTracker.Clear();
        return facts;
    }

    /// <summary>
    /// The pools the campaign's rules and the referral's waiting rewards name, with as many free uploaded codes read
    /// ahead as one command could hand out. On PostgreSQL they are locked, skipping codes other instances hold.
    /// </summary>
    private async Task<Dictionary<string, CouponSupply>> LoadCouponsAsync(Campaign campaign, List<Reward> rewards, CancellationToken ct)
    {
        var incentives = campaign.Rewards.SelectMany(r => (r.Tiers ?? []).Select(t => t.Incentive).Append(r.Incentive))
            .Concat(rewards.Where(r => r.Status == RewardStatus.Pending && r.CouponCode is null).Select(r => r.Incentive));
        var names = incentives.Where(i => i is { Type: IncentiveType.DiscountCoupon, Pool: not null }).Select(i => i!.Pool!).Distinct().ToList();
        var supplies = new Dictionary<string, CouponSupply>();
        if (names.Count == 0)
        {
            return supplies;
        }
        var pools = await db.CouponPools.AsNoTracking()
            .Where(p => p.CampaignId == campaign.Id && names.Contains(p.Name))
            .Select(p => new { p.Id, p.Name, HasUrl = p.CreateCouponUrl != null })
            .ToListAsync(ct);
        var most = 2 * campaign.Rewards.Count + rewards.Count;
        foreach (var pool in pools)
        {
            var free = db.OnSqlite
                ? await db.Database.SqlQuery<FreeCoupon>($"""
                    SELECT "Id", "Code" FROM coupons WHERE "PoolId" = {pool.Id} AND "AllocatedToRewardId" IS NULL ORDER BY "Id" LIMIT {most}
                    """).ToListAsync(ct)
                : await db.Database.SqlQuery<FreeCoupon>($"""
                    SELECT "Id", "Code" FROM coupons WHERE "PoolId" = {pool.Id} AND "AllocatedToRewardId" IS NULL ORDER BY "Id" LIMIT {most}
                    FOR UPDATE SKIP LOCKED
                    """).ToListAsync(ct);
            supplies[pool.Name] = new CouponSupply(pool.Id, pool.HasUrl, free);
        }
        return supplies;
    }

    // ---------------------------------------------------------------- writes

    /// <summary>
    /// Writes what the core decided, in the caller's transaction: first the conditional updates that prove the rows
    /// read are unchanged (and lock them), then every new and changed row and message in one save.
    /// </summary>
    public async Task WriteAsync(ReferralChanges changes, DateTimeOffset now, CancellationToken ct)
    {
        foreach (var referral in changes.ChangedReferrals)
        {
            var expected = changes.ExpectedStatus[referral.Id];
            var moved = await db.Referrals.Where(r => r.Id == referral.Id && r.Status == expected)
                .ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, referral.Status), ct);
            if (moved == 0)
            {
                throw new ConcurrentChangeException($"referral {referral.Id} changed while a command about it was decided");
            }
        }
        if (changes.Risk is { } risk)
        {
            var updated = await db.Participants.Where(p => p.Id == risk.ParticipantId && p.RiskLevel == risk.OldLevel)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(p => p.RiskLevel, risk.NewLevel)
                    .SetProperty(p => p.RiskReasons, risk.Reasons)
                    .SetProperty(p => p.RiskChangedAt, risk.ChangedAt), ct);
            if (updated == 0)
            {
                throw new ConcurrentChangeException($"the risk level of {risk.ParticipantId} changed while it was recomputed");
            }
        }
        if (changes.SeenIp is var (participantId, ip))
        {
            await FraudSignals.RecordIpAsync(db, participantId, ip, now, ct);
        }
        var deltas = changes.CounterDeltas.Where(c => c.Value != 0).ToList();
        if (changes.CounterOwner is { } owner && deltas.Count > 0)
        {
            // Every counter that moved, in one statement.
            var rows = string.Join(", ", deltas.Select((_, i) => $"({{0}}, {{{2 * i + 1}}}, {{{2 * i + 2}}})"));
            object[] values = [owner, .. deltas.SelectMany(d => new object[] { d.Key, d.Value })];
            var sql = """INSERT INTO advocate_counters ("ParticipantId", "Name", "Count") VALUES """ + rows + """
                 ON CONFLICT ("ParticipantId", "Name") DO UPDATE SET "Count" = advocate_counters."Count" + excluded."Count"
                """;
            // Only placeholders are put into the text; the names and amounts go as parameters.
            await db.Database.ExecuteSqlRawAsync(sql, values, ct);
        }

        db.Participants.AddRange(changes.NewParticipants);
        db.Participants.UpdateRange(changes.ChangedParticipants);
        db.Referrals.AddRange(changes.NewReferrals);
        db.Referrals.UpdateRange(changes.ChangedReferrals);
        db.ReferralHistory.AddRange(changes.History);
        db.Rewards.AddRange(changes.NewRewards);
        db.Rewards.UpdateRange(changes.ChangedRewards);
        foreach (var message in changes.Messages)
        {
            Outbox.Add(db, message);
        }
        await db.SaveChangesAsync(ct);

        // After the save: a claimed code names its reward.
        var allocatedAt = UtcTicksConverter.SqlValue(db, now);
        foreach (var claim in changes.CouponClaims)
        {
            var claimed = await db.Database.ExecuteSqlAsync($"""
                UPDATE coupons SET "AllocatedToRewardId" = {claim.RewardId}, "AllocatedToParticipantId" = {claim.ParticipantId},
                    "AllocatedAt" = {allocatedAt}
                WHERE "Id" = {claim.CouponId} AND "AllocatedToRewardId" IS NULL
                """, ct);
            if (claimed == 0)
            {
                throw new ConcurrentChangeException($"coupon {claim.CouponId} was handed out while a command decided to hand it out");
            }
        }
    }

    private sealed record CounterRow(string? Name, int? Count);
}
