using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
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
public sealed class ReferralStore(ReferloopDb db, IReferralApprovalListeners listeners, OutboxWriter outbox, DeliveryEngine deliveries)
{
    private static readonly Func<ReferloopDb, string, IAsyncEnumerable<Reward>> RewardsOf =
        EF.CompileAsyncQuery((ReferloopDb db, string referralId) =>
            db.Rewards.AsNoTracking().Where(r => r.ReferralId == referralId).OrderBy(r => r.Id).AsQueryable());

    // ---------------------------------------------------------------- reads

    /// <summary>
    /// For each request, what it repeats, if anything: the campaign's event that already holds its order id or
    /// idempotency key (or its id, when it was accepted before, <see cref="EventInbox"/>), or else an event accepted
    /// with that order id or key and still waiting in the inbox. One query, and one more for each kind found.
    /// </summary>
    public async Task<EarlierEvent?[]> EarlierEventsAsync(IReadOnlyList<TrackRequest> requests, CancellationToken ct)
    {
        var campaignIds = requests.Select(r => r.Campaign.Id).Distinct().ToList();
        var orderIds = requests.Select(r => r.OrderId).OfType<string>().Distinct().ToList();
        var keys = requests.Select(r => r.IdempotencyKey).OfType<string>().Distinct().ToList();
        var ids = requests.Select(r => r.EventId).OfType<string>().ToList();
        var earlier = new EarlierEvent?[requests.Count];
        // A branch per list that has values (SQLite plans a scan for the branch of an empty list, though it never runs it).
        var events = db.Events.AsNoTracking();
        var query = orderIds.Count + keys.Count > 0
            ? events.HoldingAny(campaignIds, orderIds, keys)
                .Select(e => new { e.Id, e.CampaignId, e.OrderId, e.IdempotencyKey, Waiting = false })
                .Concat(db.Inbox.AsNoTracking().HoldingAny(campaignIds, orderIds, keys)
                    .Select(e => new { e.Id, e.CampaignId, e.OrderId, e.IdempotencyKey, Waiting = true }))
            : null;
        if (ids.Count > 0)
        {
            var byId = events.Where(e => ids.Contains(e.Id))
                .Select(e => new { e.Id, e.CampaignId, e.OrderId, e.IdempotencyKey, Waiting = false });
            query = query is null ? byId : query.Concat(byId);
        }
        // An accepted event of the batch finds its own row in the inbox: that one it does not repeat.
        // A recorded event goes before a waiting one: it was processed, the waiting one can only repeat it.
        var found = query is null ? []
            : (await query.ToListAsync(ct)).Where(e => !(e.Waiting && ids.Contains(e.Id))).OrderBy(e => e.Waiting).ToList();
        if (found.Count == 0)
        {
            return earlier;
        }
        var recordedIds = found.Where(e => !e.Waiting).Select(e => e.Id).Distinct().ToList();
        var waitingIds = found.Where(e => e.Waiting).Select(e => e.Id).ToList();
        var recorded = recordedIds.Count == 0 ? []
            : await events.Where(e => recordedIds.Contains(e.Id)).ToDictionaryAsync(e => e.Id, ct);
        var waiting = waitingIds.Count == 0 ? []
            : await db.Inbox.AsNoTracking().Where(e => waitingIds.Contains(e.Id)).ToDictionaryAsync(e => e.Id, ct);
        for (var i = 0; i < requests.Count; i++)
        {
            var r = requests[i];
            var match = found.FirstOrDefault(e => e.CampaignId == r.Campaign.Id
                && ((r.EventId is not null && e.Id == r.EventId)
                    || (r.OrderId is not null && e.OrderId == r.OrderId) || (r.IdempotencyKey is not null && e.IdempotencyKey == r.IdempotencyKey)));
            earlier[i] = match switch
            {
                null => null,
                { Waiting: false } => recorded.TryGetValue(match.Id, out var e) ? new EarlierEvent(e, null) : null,
                _ => waiting.TryGetValue(match.Id, out var w) && w.ToRequest(r.Campaign) is { } accepted ? new EarlierEvent(null, accepted) : null,
            };
        }
        return earlier;
    }

    /// <summary>Takes a browser's event's order id and key away, for the server's report of the order to be recorded under them.</summary>
    public Task TakeOrderFromAsync(string eventId, CancellationToken ct) =>
        db.Events.Where(e => e.Id == eventId).ExecuteUpdateAsync(s => s
            .SetProperty(e => e.OrderId, (string?)null)
            .SetProperty(e => e.IdempotencyKey, (string?)null), ct);

    /// <summary>
    /// Removes the accepted events from the inbox, as they are processed in this transaction, and returns the ids that
    /// were still waiting there. One that is not was erased with its person since it was read, or was processed (and
    /// answered, <see cref="InboxEvent.Answer"/>) by another run: its answer stays as it is. On PostgreSQL the rows are
    /// deleted as they are read, so an erasure deleting them first makes this wait and find them gone, and one deleting
    /// them after waits for this transaction (erasure deletes them before anything else); on SQLite the two take turns.
    /// </summary>
    public async Task<HashSet<string>> ForgetAcceptedAsync(IReadOnlyCollection<string> ids, CancellationToken ct)
    {
        if (ids.Count == 0)
        {
            return [];
        }
        if (!db.OnSqlite)
        {
            return (await db.Database.SqlQuery<string>(
                    $"""DELETE FROM event_inbox WHERE "Id" = ANY({ids.ToArray()}) AND "Answer" IS NULL RETURNING "Id" AS "Value" """).ToListAsync(ct))
                .ToHashSet();
        }
        var waiting = (await db.Inbox.Where(e => ids.Contains(e.Id) && e.Answer == null).Select(e => e.Id).ToListAsync(ct)).ToHashSet();
        if (waiting.Count > 0)
        {
            await db.Inbox.Where(e => waiting.Contains(e.Id)).ExecuteDeleteAsync(ct);
        }
        return waiting;
    }

    /// <summary>
    /// Keeps the inbox rows of the accepted events that were answered with another event (one recorded meanwhile holds
    /// their order id or key), holding that answer, so that their ids still read; <paramref name="deleted"/> are the
    /// accepted events whose rows this transaction removed.
    /// </summary>
    public async Task KeepAnswersAsync(IReadOnlyList<TrackRequest> requests, EventOutcome[] outcomes, HashSet<string> deleted,
        DateTimeOffset now, CancellationToken ct)
    {
        var answered = requests.Select((r, i) => (Request: r, Outcome: outcomes[i]))
            .Where(a => a.Request.EventId is { } id && deleted.Contains(id) && a.Outcome.EventId != id)
            .Select(a => InboxEvent.Answered(a.Request, a.Outcome, now))
            .ToList();
        if (answered.Count > 0)
        {
            await BulkRows.For(db, answered).InsertAsync("event_inbox", ct);
        }
    }

    /// <summary>
    /// What <see cref="ReferralCore.Track"/> needs for a batch of recorded events, read for all of them at once: one
    /// query per kind of row (friends and code owners, their referrals, advocates with their counters, the referrals'
    /// rewards, the campaigns' coupon pools), plus attribution by click and the fraud facts for the events that need
    /// them.
    /// </summary>
    public async Task<EventBatch> LoadForEventsAsync(IReadOnlyList<EventToDecide> items, DateTimeOffset now, CancellationToken ct)
    {
        var batch = new EventBatch { Now = now };
        var emails = items.Select(i => i.Event.Email).Distinct().ToList();
        var codes = items.Select(i => i.Event.ReferralCode).OfType<string>().Distinct().ToList();
        var campaignIds = items.Select(i => i.Campaign.Id).Distinct().ToList();
        // An index search per list (an OR across the two columns would scan the campaign's participants). Codes are
        // unique across campaigns, and the campaign of a code's owner is checked below: a condition on the campaign
        // here would let SQLite choose the campaign's index and read all of its participants.
        var participants = db.Participants.AsNoTracking();
        var people = await participants
            .Where(p => campaignIds.Contains(p.CampaignId) && emails.Contains(p.Email))
            .Concat(participants.Where(p => codes.Contains(p.Code)))
            .ToListAsync(ct);
        people = people.DistinctBy(p => p.Id).Select(batch.One).ToList();
        var byEmail = people.ToDictionary(p => (p.CampaignId, p.Email));
        var byCode = people.ToDictionary(p => p.Code);
        foreach (var (campaign, tracked, _) in items)
        {
            if (byEmail.TryGetValue((campaign.Id, tracked.Email), out var friend))
            {
                batch.Friends[tracked.Id] = friend;
            }
        }

        var friendIds = batch.Friends.Values.Select(f => f.Id).Distinct().ToList();
        if (friendIds.Count > 0)
        {
            // Locked as they are read on PostgreSQL (see LockReferralsAsync), in id order.
            var referrals = db.OnSqlite
                ? db.Referrals.AsNoTracking().Where(r => friendIds.Contains(r.FriendId))
                : db.Referrals.FromSql($"""SELECT * FROM referrals WHERE "FriendId" = ANY({friendIds.ToArray()}) ORDER BY "Id" FOR UPDATE""")
                    .AsNoTracking();
            foreach (var referral in await referrals.ToListAsync(ct))
            {
                batch.ReferralsByFriend[referral.FriendId] = referral;
            }
        }

        // Attribution, for friends without a referral: the code owners read above settle most; the other kinds of
        // evidence are read once for all the events they are left to.
        var unreferred = items
            .Where(i => i.Campaign.IsActive
                && !(batch.Friends.GetValueOrDefault(i.Event.Id) is { } friend && batch.ReferralsByFriend.ContainsKey(friend.Id)))
            .Select(i => new AttributionQuery(i.Campaign, i.Event,
                i.Event.ReferralCode is { } code && byCode.TryGetValue(code, out var owner) && owner.CampaignId == i.Campaign.Id ? owner : null))
            .ToList();
        foreach (var (eventId, match) in await Attribution.FindAllAsync(db, unreferred, ct))
        {
            batch.Matches[eventId] = match with { Advocate = batch.One(match.Advocate) };
        }

        var missing = batch.ReferralsByFriend.Values.Select(r => r.AdvocateId).Where(id => !batch.Participants.ContainsKey(id))
            .Distinct().ToList();
        if (missing.Count > 0)
        {
            foreach (var advocate in await db.Participants.AsNoTracking().Where(p => missing.Contains(p.Id)).ToListAsync(ct))
            {
                batch.One(advocate);
            }
        }
        var advocates = batch.ReferralsByFriend.Values.Select(r => r.AdvocateId)
            .Concat(batch.Matches.Values.Select(m => m.Advocate.Id)).Distinct().ToList();
        foreach (var id in advocates)
        {
            batch.Counters[id] = [];
            batch.Counted[id] = [];
        }
        await LockAndCountAsync(advocates, batch.Counters, ct);
        var risky = advocates.Where(id => batch.Participants[id].RiskLevel != RiskLevel.Low).ToList();
        if (risky.Count > 0)
        {
            foreach (var counted in await CountedReferralsAsync(risky, ct))
            {
                batch.Counted[counted.AdvocateId].Add(counted.Referral);
            }
        }

        var referralIds = batch.ReferralsByFriend.Values.Select(r => r.Id).ToList();
        foreach (var id in referralIds)
        {
            batch.Rewards[id] = [];
        }
        if (referralIds.Count > 0)
        {
            foreach (var reward in await db.Rewards.AsNoTracking().Where(r => referralIds.Contains(r.ReferralId)).OrderBy(r => r.Id).ToListAsync(ct))
            {
                batch.Rewards[reward.ReferralId].Add(reward);
            }
        }

        foreach (var campaign in items.Select(i => i.Campaign).DistinctBy(c => c.Id))
        {
            batch.Listeners[campaign.Id] = await listeners.AnyAsync(db, campaign.Id, ct);
            var waiting = batch.Rewards.Values.SelectMany(r => r).Where(r => r.CampaignId == campaign.Id).ToList();
            batch.Coupons[campaign.Id] = await LoadCouponsAsync(campaign, waiting, items.Count(i => i.Campaign.Id == campaign.Id), ct);
        }

        var fraud = new List<(string EventId, FraudQuery Query)>();
        var rewarding = new List<(Campaign Campaign, TrackedEvent Event, string FriendId)>();
        foreach (var (campaign, tracked, couponCode) in items)
        {
            var friend = batch.Friends.GetValueOrDefault(tracked.Id);
            var referral = friend is null ? null : batch.ReferralsByFriend.GetValueOrDefault(friend.Id);
            var match = batch.Matches.GetValueOrDefault(tracked.Id);
            var advocateId = referral?.AdvocateId ?? match?.Advocate.Id;
            if (advocateId is null)
            {
                continue;
            }
            // Screened when the referral is created, and when a purchase converts it.
            var screened = referral is null
                || (tracked.Type == EventKinds.Purchase
                    && referral is { Status: ReferralStatus.Pending } or { Status: ReferralStatus.Flagged, QualifiedAt: null });
            if (screened)
            {
                fraud.Add((tracked.Id, new FraudQuery(campaign.Fraud, advocateId,
                    new FriendSignals(tracked.Email, tracked.Ip, match?.ClickId ?? tracked.ClickId, tracked.UserAgent, couponCode),
                    [tracked.ClickId ?? referral?.ClickId ?? match?.ClickId])));
            }
            if (friend is not null && tracked.Type is not (EventKinds.Signup or EventKinds.Purchase)
                && campaign.Rewards.Any(r => r.Trigger == RewardTrigger.Event && r.Event == tracked.Type))
            {
                rewarding.Add((campaign, tracked, friend.Id));
            }
        }
        var facts = await FraudFacts.LoadAsync(db, fraud.Select(f => f.Query).ToList(), now, ct);
        for (var i = 0; i < fraud.Count; i++)
        {
            batch.Fraud[fraud[i].EventId] = facts[i];
        }
        await FindCustomEventsSeenAsync(batch, rewarding, ct);
        return batch;
    }

    /// <summary>
    /// Which of the custom events that earn a reward their friend reported before (a browser report counts only where
    /// the campaign accepts browser conversions): one read for the batch.
    /// </summary>
    private async Task FindCustomEventsSeenAsync(EventBatch batch, List<(Campaign Campaign, TrackedEvent Event, string FriendId)> rewarding,
        CancellationToken ct)
    {
        if (rewarding.Count == 0)
        {
            return;
        }
        var friendIds = rewarding.Select(r => r.FriendId).Distinct().ToList();
        var types = rewarding.Select(r => r.Event.Type).Distinct().ToList();
        var eventIds = rewarding.Select(r => r.Event.Id).ToList();
        var seen = await db.Events.AsNoTracking()
            .Where(e => EF.MultipleParameters(friendIds).Contains(e.ParticipantId!) && types.Contains(e.Type) && !eventIds.Contains(e.Id))
            .Select(e => new { e.ParticipantId, e.Type, e.Source })
            .Distinct()
            .ToListAsync(ct);
        foreach (var (campaign, tracked, friendId) in rewarding)
        {
            var browserEarns = campaign.Fraud.BrowserConversions == BrowserConversions.Accept;
            if (seen.Any(e => e.ParticipantId == friendId && e.Type == tracked.Type && (e.Source == EventSource.Server || browserEarns)))
            {
                batch.CustomEventsSeen.Add(tracked.Id);
            }
        }
    }

    /// <summary>What a command about one referral needs (qualify, approve, void, approve when due); null when it does not exist.</summary>
    public async Task<ReferralFacts?> LoadForReferralAsync(string referralId, DateTimeOffset now, CancellationToken ct,
        bool withCountedConversionRewards = false)
    {
        await LockReferralsAsync(db, [referralId], ct);
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
            ? (await FraudFacts.LoadAsync(db, [new FraudQuery(found.Campaign.Fraud, found.Advocate.Id,
                new FriendSignals(found.Friend.Email, null, found.Referral.ClickId, null, null))], now, ct))[0]
            : FraudFacts.None;
        var facts = await LoadAroundAsync(found.Campaign, found.Referral, found.Advocate, found.Friend, now, fraud, ct);
        if (withCountedConversionRewards)
        {
            facts.CountedConversionRewards = await CountedConversionRewardsAsync(found.Advocate.Id, ct);
        }
        return facts;
    }

    /// <summary>
    /// On PostgreSQL, locks the referrals' rows, in id order, until the transaction ends. Whoever changes a referral or
    /// its rewards (the engine's events and commands, the coupon requests, the release of rewards, a payment) holds this
    /// lock from before reading them, so no one writes a decision over what another changed since it read. (On SQLite
    /// one transaction writes at a time: <see cref="SqliteWriteQueue"/>.)
    /// </summary>
    public static async Task LockReferralsAsync(ReferloopDb db, IEnumerable<string> referralIds, CancellationToken ct)
    {
        if (!db.OnSqlite)
        {
            var ids = referralIds.Distinct().ToArray();
            await db.Database.ExecuteSqlAsync($"""SELECT 1 FROM referrals WHERE "Id" = ANY({ids}) ORDER BY "Id" FOR UPDATE""", ct);
        }
    }

    /// <summary>The campaign's refund of <paramref name="orderId"/>, or its event with the idempotency key, if either was recorded.</summary>
    public Task<TrackedEvent?> EarlierRefundAsync(string campaignId, string orderId, string? idempotencyKey, CancellationToken ct) =>
        db.Events.AsNoTracking()
            .Where(e => e.CampaignId == campaignId && (e.RefundOf == orderId || (idempotencyKey != null && e.IdempotencyKey == idempotencyKey)))
            .OrderBy(e => e.Id)
            .FirstOrDefaultAsync(ct);

    /// <summary>
    /// What <see cref="ReferralCore.Refund"/> needs: the purchase with the order id; when it was attributed, its
    /// referral with everything <see cref="LoadForReferralAsync"/> reads, how many of the friend's other purchases still
    /// count, and the advocate's goal and milestone rewards of conversions that still stand.
    /// </summary>
    public async Task<ReferralFacts> LoadForRefundAsync(Campaign campaign, string orderId, DateTimeOffset now, CancellationToken ct)
    {
        var purchase = await db.Events.AsNoTracking()
            .FirstOrDefaultAsync(e => e.CampaignId == campaign.Id && e.OrderId == orderId && e.Type == EventKinds.Purchase, ct);
        var referral = purchase?.ReferralId is { } referralId ? await LoadForReferralAsync(referralId, now, ct) : null;
        if (purchase is null || referral is null)
        {
            return new ReferralFacts { Campaign = campaign, Now = now, RefundedPurchase = purchase };
        }

        var friendId = referral.Referral!.FriendId;
        var confirmOnly = campaign.Fraud.BrowserConversions == BrowserConversions.Confirm;
        var others = await db.Events.AsNoTracking()
            .Where(e => e.ParticipantId == friendId && e.ReferralId == referral.Referral.Id && e.Type == EventKinds.Purchase
                && e.Id != purchase.Id && (!confirmOnly || e.Source == EventSource.Server)
                && (e.OrderId == null || !db.Events.Any(r => r.CampaignId == campaign.Id && r.RefundOf == e.OrderId)))
            .CountAsync(ct);
        var counted = await CountedConversionRewardsAsync(referral.Advocate!.Id, ct);
        return new ReferralFacts
        {
            Campaign = campaign,
            Now = now,
            Referral = referral.Referral,
            Advocate = referral.Advocate,
            Friend = referral.Friend,
            Counters = referral.Counters,
            Rewards = referral.Rewards,
            Fraud = referral.Fraud,
            CountedReferrals = referral.CountedReferrals,
            ApprovalListeners = referral.ApprovalListeners,
            Coupons = referral.Coupons,
            RefundedPurchase = purchase,
            OtherCountedPurchases = others,
            CountedConversionRewards = counted,
        };
    }

    /// <summary>
    /// The advocate's goal and milestone rewards of conversions that still stand, which a refund or a void may take
    /// back: locked on PostgreSQL, as their own referrals are not (see LockReferralsAsync), so a payment or coupon for
    /// them waits for the refund or void.
    /// </summary>
    private async Task<List<Reward>> CountedConversionRewardsAsync(string advocateId, CancellationToken ct)
    {
        var rewards = db.OnSqlite
            ? db.Rewards
            : db.Rewards.FromSql($"""SELECT * FROM rewards WHERE "AdvocateId" = {advocateId} AND "Milestone" IS NOT NULL ORDER BY "Id" FOR UPDATE""");
        return await rewards.AsNoTracking()
            .Where(r => r.AdvocateId == advocateId && r.Trigger == RewardTrigger.Converted && r.Milestone != null
                && (r.Kind == RewardKind.Goal || r.Kind == RewardKind.Milestone)
                && (r.Status == RewardStatus.Pending || r.Status == RewardStatus.Approved || r.Status == RewardStatus.Issued))
            .OrderBy(r => r.Id)
            .ToListAsync(ct);
    }

    /// <summary>Everything about the advocate and the referral, once both are known.</summary>
    private async Task<ReferralFacts> LoadAroundAsync(Campaign campaign, Referral? referral, Participant advocate, Participant? friend,
        DateTimeOffset now, FraudFacts fraud, CancellationToken ct)
    {
        var counters = new Dictionary<string, Dictionary<string, int>> { [advocate.Id] = [] };
        await LockAndCountAsync([advocate.Id], counters, ct);
        var rewards = new List<Reward>();
        if (referral is not null)
        {
            await foreach (var reward in RewardsOf(db, referral.Id).WithCancellation(ct))
            {
                rewards.Add(reward);
            }
        }
        // A low level means that no referral counts against the advocate: nothing to read.
        var counted = advocate.RiskLevel == RiskLevel.Low ? [] : (await CountedReferralsAsync([advocate.Id], ct)).Select(c => c.Referral).ToList();
        var facts = new ReferralFacts
        {
            Campaign = campaign,
            Now = now,
            Referral = referral,
            Advocate = advocate,
            Friend = friend,
            Counters = counters[advocate.Id],
            Rewards = rewards,
            Fraud = fraud,
            CountedReferrals = counted,
            ApprovalListeners = await listeners.AnyAsync(db, campaign.Id, ct),
            Coupons = await LoadCouponsAsync(campaign, rewards, 1, ct),
        };
        return facts;
    }

    /// <summary>
    /// The pools the campaign's rules and the referral's waiting rewards name, with as many free uploaded codes read
    /// ahead as one command could hand out. On PostgreSQL they are locked, skipping codes other instances hold.
    /// </summary>
    private async Task<Dictionary<string, CouponSupply>> LoadCouponsAsync(Campaign campaign, List<Reward> rewards, int commands,
        CancellationToken ct)
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
        var most = 2 * campaign.Rewards.Count * commands + rewards.Count;
        foreach (var pool in pools)
        {
            if (most == 0 || db.OnSqlite)
            {
                var free = most == 0 ? [] : await db.Database.SqlQuery<FreeCoupon>($"""
                    SELECT "Id", "Code" FROM coupons WHERE "PoolId" = {pool.Id} AND "AllocatedToRewardId" IS NULL ORDER BY "Id" LIMIT {most}
                    """).ToListAsync(ct);
                supplies[pool.Name] = new CouponSupply(pool.Id, pool.HasUrl, free);
                continue;
            }
            var unheld = await db.Database.SqlQuery<FreeCoupon>($"""
                SELECT "Id", "Code" FROM coupons WHERE "PoolId" = {pool.Id} AND "AllocatedToRewardId" IS NULL ORDER BY "Id" LIMIT {most}
                FOR UPDATE SKIP LOCKED
                """).ToListAsync(ct);
            // Fewer than asked for: the pool runs out, or other transactions hold free codes they may yet let go of.
            var heldElsewhere = unheld.Count < most && await db.Database.SqlQuery<int>($"""
                SELECT count(*)::int AS "Value" FROM (SELECT 1 FROM coupons WHERE "PoolId" = {pool.Id} AND "AllocatedToRewardId" IS NULL
                LIMIT {most + 1}) AS free
                """).SingleAsync(ct) > unheld.Count;
            supplies[pool.Name] = new CouponSupply(pool.Id, pool.HasUrl, unheld, heldElsewhere);
        }
        return supplies;
    }

    /// <summary>
    /// Reads the advocates' counters into <paramref name="counters"/> (an entry per advocate). On PostgreSQL the
    /// advocates' rows are locked first: one transaction at a time decides for an advocate, across instances, so their
    /// counters and risk level are read and written as one. (On SQLite, <see cref="SqliteWriteQueue"/> runs one write
    /// transaction at a time.)
    /// </summary>
    private async Task LockAndCountAsync(List<string> advocateIds, Dictionary<string, Dictionary<string, int>> counters,
        CancellationToken ct)
    {
        if (advocateIds.Count == 0)
        {
            return;
        }
        if (!db.OnSqlite)
        {
            // The lock and the read in one round trip, as two statements: the read, a statement of its own, sees the
            // counters as the transaction it may have waited for committed them (in one statement with the lock, a
            // join would see them as they were when that statement began, before the wait).
            await using var batch = db.Database.GetDbConnection().CreateBatch();
            batch.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
            foreach (var sql in new[]
            {
                """SELECT 1 FROM participants WHERE "Id" = ANY(@ids) ORDER BY "Id" FOR UPDATE""",
                """SELECT "ParticipantId", "Name", "Count" FROM advocate_counters WHERE "ParticipantId" = ANY(@ids)""",
            })
            {
                var command = batch.CreateBatchCommand();
                command.CommandText = sql;
                var ids = command.CreateParameter();
                ids.ParameterName = "@ids";
                ids.Value = advocateIds.ToArray();
                command.Parameters.Add(ids);
                batch.BatchCommands.Add(command);
            }
            await using var reader = await batch.ExecuteReaderAsync(ct);
            await reader.NextResultAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                counters[reader.GetString(0)][reader.GetString(1)] = reader.GetInt32(2);
            }
            return;
        }
        var rows = db.AdvocateCounters.AsNoTracking().Where(c => advocateIds.Contains(c.ParticipantId))
            .Select(c => new CounterRow(c.ParticipantId, c.Name, c.Count));
        foreach (var row in await rows.ToListAsync(ct))
        {
            counters[row.ParticipantId][row.Name] = row.Count;
        }
    }

    private async Task<List<(string AdvocateId, CountedReferral Referral)>> CountedReferralsAsync(List<string> advocateIds,
        CancellationToken ct)
    {
        var rows = await db.Referrals.AsNoTracking()
            .Where(r => advocateIds.Contains(r.AdvocateId)
                && (r.FraudDecision == FraudDecision.Flagged || r.FraudDecision == FraudDecision.Blocked
                    || r.FraudDecision == FraudDecision.Rejected))
            .OrderByDescending(r => r.Id)
            .Select(r => new { r.AdvocateId, r.Id, r.FraudDecision, r.RiskScore, r.Findings })
            .ToListAsync(ct);
        return rows.Select(r => (r.AdvocateId, new CountedReferral(r.Id, r.FraudDecision!, r.RiskScore, r.Findings))).ToList();
    }

    // ---------------------------------------------------------------- writes

    /// <summary>
    /// Writes what the core decided, in the caller's transaction: first the conditional updates that prove the rows
    /// read are unchanged (and lock them), then the changed rows, then the new rows, the messages and their deliveries,
    /// one statement per table sent together, then the mails. An event whose order id or idempotency key another
    /// transaction recorded meanwhile is not inserted, and the batch runs again, to answer it as a repeat. Without
    /// <paramref name="repeatsRead"/> (the batch did not read what its events repeat) the insert is that look-up: an
    /// event that repeats one recorded or waiting in the inbox is not inserted, and
    /// <see cref="UnreadRepeatException"/> has the batch run again, reading first. The messages
    /// are fanned out here while this instance's delivery engine has room: the caller hands the result over after its
    /// commit (<see cref="DeliveryEngine.HandOver"/>).
    /// </summary>
    public async Task<FannedOut?> WriteAsync(ReferralChanges changes, DateTimeOffset now, CancellationToken ct, bool repeatsRead = true)
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
        foreach (var risk in changes.Risks.Values)
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
        foreach (var (participantId, ip) in changes.SeenIps)
        {
            await FraudSignals.RecordIpAsync(db, participantId, ip, now, ct);
        }
        // A participant changes here only by being invited (ParticipantDirectory.Invite): only those columns are
        // written, over a row still not invited, so a risk level, name or value another transaction set since the read
        // stays; invited meanwhile, the batch runs again.
        foreach (var invited in changes.ChangedParticipants)
        {
            var written = await db.Participants.Where(p => p.Id == invited.Id && !p.IsInvited)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(p => p.IsInvited, true)
                    .SetProperty(p => p.ReferredById, invited.ReferredById)
                    .SetProperty(p => p.ReferredAt, invited.ReferredAt)
                    .SetProperty(p => p.Name, p => p.Name ?? invited.Name)
                    .SetProperty(p => p.UpdatedAt, invited.UpdatedAt), ct);
            if (written == 0)
            {
                throw new ConcurrentChangeException($"participant {invited.Id} was invited while an event about them was decided");
            }
        }
        // Changed rows go through the save.
        db.Referrals.UpdateRange(changes.ChangedReferrals);
        db.Rewards.UpdateRange(changes.ChangedRewards);
        await db.SaveChangesAsync(ct);

        // New rows, counter moves, then the outbox step (the messages, after the rows they report on, and their
        // deliveries): one statement per table, without the change tracker, in one round trip.
        var events = changes.NewEvents;
        var counters = changes.CounterDeltas.Where(c => c.Value != 0)
            .Select(c => new AdvocateCounter { ParticipantId = c.Key.ParticipantId, Name = c.Key.Name, Count = c.Value }).ToList();
        var rows = new StatementBatch(db)
            .Insert(BulkRows.For(db, events), "events", "ON CONFLICT DO NOTHING", inserted =>
            {
                if (inserted != events.Count)
                {
                    throw repeatsRead
                        ? new ConcurrentChangeException(
                            $"{events.Count - inserted} of {events.Count} events repeat an order id or idempotency key recorded meanwhile")
                        : new UnreadRepeatException(
                            $"{events.Count - inserted} of {events.Count} events repeat an event recorded or waiting in the inbox");
                }
            }, repeatsRead ? null : OrderKeyed.NoneIn("event_inbox"))
            .Insert(BulkRows.For(db, counters), "advocate_counters",
                """ON CONFLICT ("ParticipantId", "Name") DO UPDATE SET "Count" = advocate_counters."Count" + excluded."Count" """)
            .Insert(BulkRows.For(db, changes.NewParticipants), "participants")
            .Insert(BulkRows.For(db, changes.NewReferrals), "referrals")
            .Insert(BulkRows.For(db, changes.NewRewards), "rewards");
        var outboxStep = await outbox.AddAsync(db, rows, changes.Messages, now, ct, deliveries);
        await rows.RunAsync(ct);
        // Mails read the participants and rewards they are about, so they follow the rows.
        var fannedOut = await OutboxWriter.FinishAsync(db, outboxStep, now, ct);

        // After the rows: a claimed code names its reward.
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
        return fannedOut;
    }

    private sealed record CounterRow(string ParticipantId, string Name, int Count);
}
