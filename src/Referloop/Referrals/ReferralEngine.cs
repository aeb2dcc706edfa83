using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Rewards;
using Referloop.Storage;
using Referloop.Tracking;
using Referloop.Webhooks;

namespace Referloop.Referrals;

/// <summary>A referral changed concurrently; the unit of work is retried from a fresh read.</summary>
internal sealed class ConcurrentChangeException(string message) : Exception(message);

/// <summary>The answer of a referral command (approve, void, qualify): the referral after it, or why not.</summary>
public sealed record ReferralCommandResult(Referral? Referral, string? Conflict, bool NotFound = false);

/// <summary>
/// The referral engine: attributes events, moves referrals through <c>pending → qualified → approved | voided</c>,
/// applies reward rules and writes every outbound event in the same transaction as the change it reports.
/// </summary>
public sealed class ReferralEngine(
    ReferloopDb db,
    TimeProvider clock,
    PublicUrls urls,
    CouponAllocator coupons,
    IReferralScreening screening,
    IReferralApprovalListeners listeners,
    UnitOfWork unitOfWork,
    CouponRequests couponRequests)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    // Set when a reward of the unit of work awaits a coupon: the coupon requests are woken once it has committed.
    private bool _couponsAwaited;

    // The queries every event runs, compiled once instead of translated from their expression trees each time.
    private static readonly Func<ReferloopDb, string, string?, string?, CancellationToken, Task<TrackedEvent?>> EarlierEvent =
        EF.CompileAsyncQuery((ReferloopDb db, string campaignId, string? orderId, string? idempotencyKey, CancellationToken ct) =>
            db.Events.AsNoTracking().FirstOrDefault(e => e.CampaignId == campaignId
                && ((orderId != null && e.OrderId == orderId) || (idempotencyKey != null && e.IdempotencyKey == idempotencyKey))));

    private static readonly Func<ReferloopDb, string, string, CancellationToken, Task<Participant?>> ParticipantByEmail =
        EF.CompileAsyncQuery((ReferloopDb db, string campaignId, string email, CancellationToken ct) =>
            db.Participants.FirstOrDefault(p => p.CampaignId == campaignId && p.Email == email));

    private static readonly Func<ReferloopDb, string, string, string, IAsyncEnumerable<Participant>> ParticipantsByEmailOrCode =
        EF.CompileAsyncQuery((ReferloopDb db, string campaignId, string email, string code) =>
            db.Participants.Where(p => p.CampaignId == campaignId && (p.Email == email || p.Code == code)));

    private static readonly Func<ReferloopDb, string, CancellationToken, Task<Participant>> ParticipantById =
        EF.CompileAsyncQuery((ReferloopDb db, string id, CancellationToken ct) => db.Participants.First(p => p.Id == id));

    private static readonly Func<ReferloopDb, string, CancellationToken, Task<Referral?>> ReferralOfFriend =
        EF.CompileAsyncQuery((ReferloopDb db, string friendId, CancellationToken ct) => db.Referrals.FirstOrDefault(r => r.FriendId == friendId));

    /// <summary>One unit of work over one referral.</summary>
    private sealed class Work(ReferralSnapshot snapshot, TrackedEvent? trackedEvent)
    {
        public ReferralSnapshot Snapshot { get; set; } = snapshot;
        public Campaign Campaign => Snapshot.Campaign;
        public Referral Referral => Snapshot.Referral;
        public Participant Advocate => Snapshot.Advocate;
        public Participant Friend => Snapshot.Friend;
        public TrackedEvent? Event { get; } = trackedEvent;
        public List<Reward> Rewards { get; } = [];

        public void Touch(Reward reward)
        {
            if (!Rewards.Contains(reward))
            {
                Rewards.Add(reward);
            }
        }
        public EventConversion? Conversion { get; set; }

        /// <summary>Set when the fraud checks blocked the referral as it was created: the reward reason they give.</summary>
        public string? BlockedAtCreation { get; set; }

        public int Conversions
        {
            get => Snapshot.Conversions;
            set => Snapshot = Snapshot with { Conversions = value };
        }
    }

    // ---------------------------------------------------------------- events

    /// <param name="source">An <see cref="EventSource"/>: what a browser reports earns what the campaign's policy allows.</param>
    public async Task<EventOutcome> TrackAsync(Campaign campaign, TrackEvent input, string? idempotencyKey, string? ip,
        string? userAgent, string source, CancellationToken ct)
    {
        return await InTransactionAsync(async () =>
            {
                var orderId = string.IsNullOrWhiteSpace(input.OrderId) ? null : input.OrderId.Trim();
                var now = clock.GetUtcNow();
                var tracked = new TrackedEvent
                {
                    Id = Ids.New("evt"),
                    CampaignId = campaign.Id,
                    Type = KnownType(input.Type!),
                    Email = Participant.NormaliseEmail(input.Email!),
                    Name = string.IsNullOrWhiteSpace(input.Name) ? null : input.Name.Trim(),
                    OrderId = orderId,
                    PurchaseValue = input.PurchaseValue,
                    Currency = input.Currency?.ToUpperInvariant(),
                    Ip = ip,
                    UserAgent = userAgent,
                    ReferralCode = string.IsNullOrWhiteSpace(input.ReferralCode) ? null : input.ReferralCode.Trim(),
                    ClickId = string.IsNullOrWhiteSpace(input.ClickId) ? null : input.ClickId.Trim(),
                    IdempotencyKey = idempotencyKey,
                    Source = source,
                    Properties = input.Properties is null ? null : JsonSerializer.Serialize(input.Properties, Json),
                    OccurredAt = (input.OccurredAt ?? now).ToUniversalTime(),
                    ReceivedAt = now,
                };
                if (!await ClaimAsync(tracked, ct))
                {
                    // Only an event holding the same order id or idempotency key stops the insert.
                    var earlier = await EarlierEvent(db, campaign.Id, orderId, idempotencyKey, ct)
                        ?? throw new ConcurrentChangeException($"the order id or idempotency key of event {tracked.Id} is taken by an event not yet visible");
                    if (!await ConfirmsAsync(campaign, earlier, tracked, ct))
                    {
                        return Replay(earlier);
                    }
                    // The server reports what a browser reported first: the browser's event is processed again as the server's.
                    tracked = earlier;
                }

                var outcome = await ProcessAsync(campaign, tracked, input.CouponCode, ct);
                tracked.Outcome = JsonSerializer.Serialize(outcome, Json);
                await db.SaveChangesAsync(ct);
                return outcome;
            }, ct);
    }

    /// <summary>
    /// Inserts the event unless another event of the campaign already holds its order id or idempotency key, and
    /// tells which happened, in one statement and before any processing. A concurrent retry waits on the unique index
    /// until the first commits, then inserts nothing and is answered as a duplicate. The row is then tracked as
    /// saved, so the last save writes what processing adds to it.
    /// </summary>
    private async Task<bool> ClaimAsync(TrackedEvent tracked, CancellationToken ct)
    {
        var occurredAt = UtcTicksConverter.SqlValue(db, tracked.OccurredAt);
        var receivedAt = UtcTicksConverter.SqlValue(db, tracked.ReceivedAt);
        var inserted = await db.Database.ExecuteSqlAsync($"""
            INSERT INTO events ("Id", "CampaignId", "Type", "Email", "Name", "OrderId", "PurchaseValue", "Currency", "Ip",
                "UserAgent", "ReferralCode", "ClickId", "IdempotencyKey", "Source", "Properties", "ParticipantId", "ReferralId",
                "Outcome", "OccurredAt", "ReceivedAt")
            VALUES ({tracked.Id}, {tracked.CampaignId}, {tracked.Type}, {tracked.Email}, {tracked.Name}, {tracked.OrderId},
                {tracked.PurchaseValue}, {tracked.Currency}, {tracked.Ip}, {tracked.UserAgent}, {tracked.ReferralCode},
                {tracked.ClickId}, {tracked.IdempotencyKey}, {tracked.Source}, {tracked.Properties}, NULL, NULL, NULL,
                {occurredAt}, {receivedAt})
            ON CONFLICT DO NOTHING
            """, ct);
        if (inserted == 0)
        {
            return false;
        }
        db.Events.Attach(tracked);
        return true;
    }

    /// <summary>
    /// Whether a server event with the order id or idempotency key of an earlier browser event is the confirmation
    /// that a campaign with <c>fraud.browserConversions = confirm</c> waits for. The conditional update lets exactly one
    /// of two concurrent confirmations through; the earlier event is then tracked, to be processed and saved again.
    /// </summary>
    private async Task<bool> ConfirmsAsync(Campaign campaign, TrackedEvent earlier, TrackedEvent confirmation, CancellationToken ct)
    {
        if (campaign.Fraud.BrowserConversions != BrowserConversions.Confirm || confirmation.Source != EventSource.Server
            || earlier.Source != EventSource.Browser || earlier.Type != confirmation.Type)
        {
            return false;
        }
        var claimed = await db.Events.Where(e => e.Id == earlier.Id && e.Source == EventSource.Browser)
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.Source, EventSource.Server), ct);
        if (claimed == 0)
        {
            return false;
        }
        earlier.Source = EventSource.Server;
        db.Events.Attach(earlier);
        return true;
    }

    /// <summary>A browser-reported conversion that earns nothing until the server reports it (or a person approves it).</summary>
    private static bool AwaitsServer(Campaign campaign, TrackedEvent tracked) =>
        tracked.Source == EventSource.Browser && campaign.Fraud.BrowserConversions == BrowserConversions.Confirm;

    private static string KnownType(string type) =>
        type.Equals(EventKinds.Signup, StringComparison.OrdinalIgnoreCase) ? EventKinds.Signup
        : type.Equals(EventKinds.Purchase, StringComparison.OrdinalIgnoreCase) ? EventKinds.Purchase
        : type;

    private static string Clip(string reason) => reason.Length <= 1000 ? reason : reason[..997] + "...";

    private static EventOutcome Replay(TrackedEvent earlier) =>
        (earlier.Outcome is null ? null : JsonSerializer.Deserialize<EventOutcome>(earlier.Outcome, Json)) is { } outcome
            ? outcome with { Duplicate = true }
            : new EventOutcome(earlier.Id, true, earlier.ReferralId is not null, null, null, null, [], null);

    private async Task<EventOutcome> ProcessAsync(Campaign campaign, TrackedEvent tracked, string? couponCode, CancellationToken ct)
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
        if (friend is not null)
        {
            // An advocate's own events are where the same-IP check learns their addresses.
            await FraudSignals.RecordIpAsync(db, friend.Id, tracked.Ip, clock.GetUtcNow(), ct);
        }
        var referral = friend is null ? null : await ReferralOfFriend(db, friend.Id, ct);
        Work work;
        if (referral is null)
        {
            if (!campaign.IsActive)
            {
                return NotAttributed(tracked, $"the campaign is {campaign.Status}; new friends are not attributed");
            }
            var match = await Attribution.FindAsync(db, campaign, tracked, codeOwnerRead: tracked.ReferralCode is not null, codeOwner, ct);
            if (match is null)
            {
                return NotAttributed(tracked, "no referral code, click id, or earlier click from this email or IP inside the attribution window");
            }
            if (friend is not null && match.Advocate.Id == friend.Id)
            {
                return NotAttributed(tracked, "the event is the advocate's own");
            }
            friend = ParticipantDirectory.JoinInvited(db, clock, urls, campaign, friend, tracked.Email, tracked.Name, match.Advocate);
            work = await CreateReferralAsync(campaign, match, friend, tracked, couponCode, ct);
        }
        else
        {
            var advocate = await ParticipantById(db, referral.AdvocateId, ct);
            var conversions = await AdvocateCounters.ReadAsync(db, advocate.Id, AdvocateCounters.Conversions, ct);
            work = new Work(new ReferralSnapshot(campaign, referral, advocate, friend!, conversions), tracked);
        }

        tracked.ParticipantId = work.Friend.Id;
        tracked.ReferralId = work.Referral.Id;
        if (tracked.Type == EventKinds.Purchase)
        {
            if (work.Referral.Status == ReferralStatus.Pending || AwaitsConversionInReview(work.Referral))
            {
                if (AwaitsServer(campaign, tracked))
                {
                    // Recorded and attributed; the server's report of the same order converts it.
                    work.Conversion = new EventConversion(ConversionStatus.Pending, work.Conversions, false);
                }
                else
                {
                    await QualifyCoreAsync(work, $"purchase{(tracked.OrderId is null ? "" : " " + tracked.OrderId)}", couponCode, null, ct);
                }
            }
            else if (work.BlockedAtCreation is { } blocked)
            {
                // The purchase that the fraud checks stopped still shows what it would have earned, and why not.
                await ApplyRulesAsync(work, RewardTrigger.Converted, null, null, blocked, ct);
                work.Snapshot.EmitConversion(db, ConversionStatus.Fail, clock.GetUtcNow());
                work.Conversion = new EventConversion(ConversionStatus.Fail, work.Conversions, false);
            }
        }
        else if (tracked.Type != EventKinds.Signup && work.Referral.Status != ReferralStatus.Voided
            && (tracked.Source == EventSource.Server || campaign.Fraud.BrowserConversions == BrowserConversions.Accept))
        {
            // Only a trusted report of a custom event earns: it cannot be held in review the way a purchase is.
            await CustomEventAsync(work, tracked, ct);
        }

        return new EventOutcome(tracked.Id, false, true, work.Referral.AttributedBy, null,
            new EventReferral(work.Referral.Id, work.Referral.Status, work.Referral.Reason, work.Advocate.Id, work.Friend.Id,
                work.Referral.RiskScore),
            work.Rewards.Select(RewardResponse.From).ToList(), work.Conversion);
    }

    private static EventOutcome NotAttributed(TrackedEvent tracked, string reason) =>
        new(tracked.Id, false, false, null, reason, null, [], null);

    private async Task<Work> CreateReferralAsync(Campaign campaign, AttributionMatch match, Participant friend,
        TrackedEvent tracked, string? couponCode, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var verdict = await screening.EvaluateAsync(db, campaign, match.Advocate,
            new FriendSignals(friend.Email, tracked.Ip, match.ClickId ?? tracked.ClickId, tracked.UserAgent, couponCode), ct);
        var referral = new Referral
        {
            Id = Ids.New("ref"),
            CampaignId = campaign.Id,
            AdvocateId = match.Advocate.Id,
            FriendId = friend.Id,
            Status = ReferralStatus.Pending,
            Reason = $"attributed by {match.By.Replace('_', ' ')}",
            AttributedBy = match.By,
            ClickId = match.ClickId,
            Findings = Findings(verdict),
            RiskScore = RiskScore.Of(verdict.Findings.Select(f => f.Check)),
            FraudDecision = FraudDecision.Passed,
            EventType = tracked.Type,
            OrderId = tracked.OrderId,
            PurchaseValue = tracked.PurchaseValue,
            Currency = tracked.Currency,
            CreatedAt = now,
            UpdatedAt = now,
        };
        db.Referrals.Add(referral);
        db.ReferralHistory.Add(new ReferralStatusChange
        {
            Id = Ids.New("rsc"),
            ReferralId = referral.Id,
            From = null,
            To = ReferralStatus.Pending,
            Reason = referral.Reason,
            At = now,
        });
        // A blocked referral does not count; any other counts at once, with the read of the conversions in the same statement.
        int conversions;
        var referrals = 0;
        if (verdict.Blocked)
        {
            conversions = await AdvocateCounters.ReadAsync(db, match.Advocate.Id, AdvocateCounters.Conversions, ct);
        }
        else
        {
            (referrals, conversions) = await AdvocateCounters.IncrementAsync(db, match.Advocate.Id, AdvocateCounters.Referrals,
                AdvocateCounters.Conversions, ct);
        }
        var work = new Work(new ReferralSnapshot(campaign, referral, match.Advocate, friend, conversions), tracked);
        work.Snapshot.Emit(db, EventTypes.ReferralCreated, now);
        // Not saved yet: the referral is new to this unit of work (see MoveAsync), and its rows go out with the rest.

        if (verdict.Blocked)
        {
            work.BlockedAtCreation = RewardReasonFor(verdict);
            await VoidCoreAsync(work, FraudReason(verdict), work.BlockedAtCreation, ct);
            await ApplyRulesAsync(work, RewardTrigger.Invited, null, null, work.BlockedAtCreation, ct);
            await DecideAsync(work, FraudDecision.Blocked, ct);
            return work;
        }
        if (verdict.Flagged)
        {
            await FlagAsync(work, verdict, ct);
        }
        // A flagged referral still counts towards milestones: its rewards are held, and released if it is approved.
        await ApplyRulesAsync(work, RewardTrigger.Invited, null, referrals, null, ct);
        if (verdict.Flagged)
        {
            await DecideAsync(work, FraudDecision.Flagged, ct);
        }
        return work;
    }

    private async Task CustomEventAsync(Work work, TrackedEvent tracked, CancellationToken ct)
    {
        // A custom event rewards once per friend: repeating it (a renewal, a second visit) earns nothing more.
        var browserEarns = work.Campaign.Fraud.BrowserConversions == BrowserConversions.Accept;
        var seenBefore = await db.Events.AnyAsync(e => e.ParticipantId == work.Friend.Id && e.Type == tracked.Type && e.Id != tracked.Id
            && (e.Source == EventSource.Server || browserEarns), ct);
        if (seenBefore || !work.Campaign.Rewards.Any(r => r.Trigger == RewardTrigger.Event && r.Event == tracked.Type))
        {
            return;
        }
        var count = await AdvocateCounters.IncrementAsync(db, work.Advocate.Id, AdvocateCounters.CustomEvent(tracked.Type), ct);
        await ApplyRulesAsync(work, RewardTrigger.Event, tracked.Type, count, null, ct);
    }

    // ---------------------------------------------------------------- commands

    /// <summary>Qualifies a pending referral (the friend converted); approves it too when the campaign says so.</summary>
    public Task<ReferralCommandResult> QualifyAsync(string referralId, string reason, CancellationToken ct) =>
        CommandAsync(referralId, async work =>
        {
            switch (work.Referral.Status)
            {
                case ReferralStatus.Voided:
                    return "The referral is voided; a voided referral cannot qualify.";
                case ReferralStatus.Pending:
                    await QualifyCoreAsync(work, reason, null, null, ct);
                    break;
                case ReferralStatus.Flagged when work.Referral.QualifiedAt is null:
                    // Records the conversion; the referral stays in the review queue.
                    await QualifyCoreAsync(work, reason, null, null, ct);
                    break;
            }
            return null;
        }, ct);

    /// <summary>Approves a referral by hand: a pending one is qualified first.</summary>
    public Task<ReferralCommandResult> ApproveAsync(string referralId, string reason, CancellationToken ct) =>
        CommandAsync(referralId, async work =>
        {
            switch (work.Referral.Status)
            {
                case ReferralStatus.Voided:
                    return "The referral is voided; a voided referral cannot be approved.";
                case ReferralStatus.Pending:
                case ReferralStatus.Flagged when work.Referral.QualifiedAt is null:
                    await QualifyCoreAsync(work, "qualified on approval", null, reason, ct);
                    break;
                case ReferralStatus.Qualified:
                    await ApproveCoreAsync(work, auto: false, reason, reportConversion: true, ct);
                    break;
                case ReferralStatus.Flagged:
                    await ApproveCoreAsync(work, auto: false, reason, reportConversion: true, ct);
                    await DecideAsync(work, FraudDecision.Cleared, ct);
                    break;
            }
            return null;
        }, ct);

    public Task<ReferralCommandResult> VoidAsync(string referralId, string reason, CancellationToken ct) =>
        CommandAsync(referralId, async work =>
        {
            if (work.Referral.Status != ReferralStatus.Voided)
            {
                var reviewed = work.Referral.Status == ReferralStatus.Flagged;
                await VoidCoreAsync(work, reason, $"{BlockReason.ReferralVoided}: {reason}", ct);
                if (reviewed)
                {
                    await DecideAsync(work, FraudDecision.Rejected, ct);
                }
            }
            return null;
        }, ct);

    /// <summary>Approves a qualified referral whose holding period has ended; false when it is no longer due.</summary>
    public async Task<bool> ApproveDueAsync(string referralId, CancellationToken ct)
    {
        var result = await CommandAsync(referralId, async work =>
        {
            if (work.Referral is not { Status: ReferralStatus.Qualified, ApproveAfter: { } due } || due > clock.GetUtcNow())
            {
                return "not due";
            }
            await ApproveCoreAsync(work, auto: true, $"holding period of {work.Campaign.HoldingPeriodDays} days ended", reportConversion: true, ct);
            return null;
        }, ct);
        return result.Conflict is null && !result.NotFound;
    }

    private async Task<ReferralCommandResult> CommandAsync(string referralId, Func<Work, Task<string?>> command, CancellationToken ct) =>
        await InTransactionAsync(async () =>
        {
            var referral = await db.Referrals.FirstOrDefaultAsync(r => r.Id == referralId, ct);
            if (referral is null)
            {
                return new ReferralCommandResult(null, null, NotFound: true);
            }
            var campaign = await db.Campaigns.AsNoTracking().FirstAsync(c => c.Id == referral.CampaignId, ct);
            var advocate = await db.Participants.FirstAsync(p => p.Id == referral.AdvocateId, ct);
            var friend = await db.Participants.FirstAsync(p => p.Id == referral.FriendId, ct);
            var conversions = await AdvocateCounters.ReadAsync(db, advocate.Id, AdvocateCounters.Conversions, ct);
            var work = new Work(new ReferralSnapshot(campaign, referral, advocate, friend, conversions), null);
            var conflict = await command(work);
            if (conflict is null)
            {
                await db.SaveChangesAsync(ct);
            }
            return new ReferralCommandResult(referral, conflict);
        }, ct);

    // ---------------------------------------------------------------- lifecycle

    private async Task QualifyCoreAsync(Work work, string reason, string? couponCode, string? manualApproval, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var verdict = await screening.EvaluateAsync(db, work.Campaign, work.Advocate,
            new FriendSignals(work.Friend.Email, work.Event?.Ip, work.Event?.ClickId ?? work.Referral.ClickId, work.Event?.UserAgent,
                couponCode, BrowserConversion: work.Event?.Source == EventSource.Browser), ct);
        work.Referral.Findings = [.. work.Referral.Findings, .. Findings(verdict).Where(f => !work.Referral.Findings.Contains(f))];
        work.Referral.RiskScore = RiskScore.Of(work.Referral.Findings.Select(f => f.Check));
        if (work.Event is { } tracked)
        {
            work.Referral.EventType = tracked.Type;
            work.Referral.OrderId = tracked.OrderId;
            work.Referral.PurchaseValue = tracked.PurchaseValue;
            work.Referral.Currency = tracked.Currency;
        }
        if (verdict.Blocked)
        {
            await VoidCoreAsync(work, FraudReason(verdict), RewardReasonFor(verdict), ct);
            await ApplyRulesAsync(work, RewardTrigger.Converted, null, null, RewardReasonFor(verdict), ct);
            work.Snapshot.EmitConversion(db, ConversionStatus.Fail, now);
            work.Conversion = new EventConversion(ConversionStatus.Fail, work.Conversions, false);
            await DecideAsync(work, FraudDecision.Blocked, ct);
            return;
        }

        // A flag holds the referral for review, unless a person is approving it right now: that is the review.
        var wasFlagged = work.Referral.Status == ReferralStatus.Flagged;
        var held = manualApproval is null && (verdict.Flagged || wasFlagged);
        if (!held)
        {
            await MoveAsync(work, ReferralStatus.Qualified, reason, now, ct);
        }
        else if (!wasFlagged)
        {
            await FlagAsync(work, verdict, ct);
        }
        else
        {
            db.ReferralHistory.Add(new ReferralStatusChange
            {
                Id = Ids.New("rsc"),
                ReferralId = work.Referral.Id,
                From = ReferralStatus.Flagged,
                To = ReferralStatus.Flagged,
                Reason = Clip($"{reason}; the conversion is held for review"),
                At = now,
            });
        }
        work.Referral.QualifiedAt = now;
        work.Conversions = await AdvocateCounters.IncrementAsync(db, work.Advocate.Id, AdvocateCounters.Conversions, ct);
        work.Referral.ConversionNumber = work.Conversions;
        if (!held)
        {
            work.Snapshot.Emit(db, EventTypes.ReferralQualified, now);
        }
        await ApplyRulesAsync(work, RewardTrigger.Converted, null, work.Conversions, null, ct);

        if (manualApproval is not null)
        {
            await ApproveCoreAsync(work, auto: false, manualApproval, reportConversion: false, ct);
        }
        else if (held)
        {
            // Never auto-approved: no ApproveAfter, so the auto-approval service does not see it.
        }
        else if (work.Campaign.Approval == ApprovalPolicy.Auto)
        {
            if (work.Campaign.HoldingPeriodDays == 0)
            {
                await ApproveCoreAsync(work, auto: true, "approved automatically on qualification", reportConversion: false, ct);
            }
            else
            {
                work.Referral.ApproveAfter = now.AddDays(work.Campaign.HoldingPeriodDays);
            }
        }

        var status = work.Referral.Status == ReferralStatus.Approved ? ConversionStatus.Success : ConversionStatus.Pending;
        work.Snapshot.EmitConversion(db, status, now);
        work.Conversion = new EventConversion(status, work.Conversions, work.Conversions == work.Snapshot.Goal);

        if (held)
        {
            var onlyBrowserHold = !wasFlagged && verdict.Findings.All(f => f.Check == FraudCheck.BrowserReported);
            await DecideAsync(work, onlyBrowserHold ? FraudDecision.Held : FraudDecision.Flagged, ct);
        }
        else if (manualApproval is not null && (wasFlagged || verdict.Flagged))
        {
            await DecideAsync(work, FraudDecision.Cleared, ct);
        }
    }

    /// <summary>Flagged when it was created, before the friend converted: a purchase still records the conversion.</summary>
    private static bool AwaitsConversionInReview(Referral referral) =>
        referral is { Status: ReferralStatus.Flagged, QualifiedAt: null };

    /// <summary>Puts the referral in the review queue: never auto-approved, its rewards held until a person decides.</summary>
    private async Task FlagAsync(Work work, FraudVerdict verdict, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var reason = "flagged for review: "
            + string.Join("; ", verdict.Findings.Where(f => f.Action == FraudAction.Flag).Select(f => $"{f.Check}: {f.Reason}"));
        await MoveAsync(work, ReferralStatus.Flagged, reason, now, ct);
        work.Referral.FlaggedAt = now;
        work.Referral.ApproveAfter = null;
        work.Snapshot.EmitFlagged(db, now);
    }

    /// <summary>
    /// Records a fraud decision about the referral; when it counts for or against the advocate, their risk level is
    /// recomputed in the same transaction (a clean referral on the hot path costs nothing more).
    /// </summary>
    private async Task DecideAsync(Work work, string decision, CancellationToken ct)
    {
        var before = work.Referral.FraudDecision;
        if (before == decision)
        {
            return;
        }
        work.Referral.FraudDecision = decision;
        if (!ParticipantRisk.Counts(before) && !ParticipantRisk.Counts(decision))
        {
            return;
        }
        await db.SaveChangesAsync(ct);
        await ParticipantRisk.RecomputeAsync(db, work.Campaign, work.Advocate.Id, work.Referral, clock.GetUtcNow(), ct);
    }

    private async Task ApproveCoreAsync(Work work, bool auto, string reason, bool reportConversion, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        await MoveAsync(work, ReferralStatus.Approved, reason, now, ct);
        work.Referral.ApprovedAt = now;
        work.Referral.AutoApproved = auto;
        work.Referral.ApproveAfter = null;
        if (!await listeners.AnyAsync(db, work.Campaign.Id, ct))
        {
            work.Referral.RewardsReleasedAt = now;
        }
        work.Snapshot.Emit(db, EventTypes.ReferralApproved, now);
        if (reportConversion)
        {
            work.Snapshot.EmitConversion(db, ConversionStatus.Success, now);
        }

        List<Reward> waiting;
        if (IsNew(work.Referral))
        {
            // Nothing of a referral created in this unit of work is in the database yet: its rewards are the ones
            // this unit of work earned.
            waiting = work.Rewards
                .Where(r => r.ReferralId == work.Referral.Id && r.Status == RewardStatus.Pending
                    && r.PendingReason != PendingReasons.AwaitingCoupon)
                .OrderBy(r => r.Id, StringComparer.Ordinal)
                .ToList();
        }
        else
        {
            await db.SaveChangesAsync(ct); // rewards earned in this unit of work are read back with the older ones
            // A reward awaiting its coupon is released already: its coupon request completes it.
            waiting = await db.Rewards.Where(r => r.ReferralId == work.Referral.Id && r.Status == RewardStatus.Pending
                    && r.PendingReason != PendingReasons.AwaitingCoupon)
                .OrderBy(r => r.Id).ToListAsync(ct);
        }
        foreach (var reward in waiting)
        {
            work.Touch(reward);
            if (auto && !work.Campaign.AllowRewardsOnAutoApproved)
            {
                await BlockAsync(work, reward, BlockReason.AutoApprovedNotAllowed, ct);
            }
            else
            {
                await ReleaseAsync(work, reward, ct);
            }
        }
    }

    private async Task VoidCoreAsync(Work work, string reason, string rewardReason, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var wasConverted = work.Referral.Status == ReferralStatus.Qualified
            || work.Referral is { Status: ReferralStatus.Flagged, QualifiedAt: not null };
        await MoveAsync(work, ReferralStatus.Voided, reason, now, ct);
        work.Referral.VoidedAt = now;
        work.Referral.ApproveAfter = null;
        work.Snapshot.Emit(db, EventTypes.ReferralVoided, now);
        if (wasConverted)
        {
            work.Snapshot.EmitConversion(db, ConversionStatus.Fail, now);
        }
        // Issued rewards may already be paid out; only those not yet payable are withdrawn.
        await db.SaveChangesAsync(ct);
        var open = await db.Rewards
            .Where(r => r.ReferralId == work.Referral.Id && (r.Status == RewardStatus.Pending || r.Status == RewardStatus.Approved))
            .OrderBy(r => r.Id).ToListAsync(ct);
        foreach (var reward in open)
        {
            work.Touch(reward);
            await BlockAsync(work, reward, rewardReason, ct);
        }
    }

    /// <summary>
    /// Changes the status only if nobody else changed it since it was read: the conditional UPDATE also takes the
    /// row lock on PostgreSQL, so two instances never approve or void the same referral twice.
    /// </summary>
    private async Task MoveAsync(Work work, string to, string reason, DateTimeOffset now, CancellationToken ct)
    {
        var referral = work.Referral;
        var from = referral.Status;
        // A referral created in this unit of work is not visible to anyone else until it commits: nothing to race.
        if (!IsNew(referral))
        {
            var moved = await db.Referrals.Where(r => r.Id == referral.Id && r.Status == from)
                .ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, to), ct);
            if (moved == 0)
            {
                throw new ConcurrentChangeException($"referral {referral.Id} changed while it was being moved to {to}");
            }
        }
        reason = Clip(reason);
        referral.Status = to;
        referral.Reason = reason;
        referral.UpdatedAt = now;
        db.ReferralHistory.Add(new ReferralStatusChange
        {
            Id = Ids.New("rsc"),
            ReferralId = referral.Id,
            From = from,
            To = to,
            Reason = reason,
            At = now,
        });
    }

    // ---------------------------------------------------------------- rewards

    private async Task ApplyRulesAsync(Work work, string trigger, string? eventName, int? count, string? blockReason, CancellationToken ct)
    {
        var campaign = work.Campaign;
        foreach (var rule in campaign.Rewards.Where(r => r.Trigger == trigger && (trigger != RewardTrigger.Event || r.Event == eventName)))
        {
            Incentive? incentive;
            int? milestone = null;
            switch (rule.Kind)
            {
                case RewardKind.Milestone:
                    incentive = count is null ? null : rule.Tiers?.FirstOrDefault(t => t.Referrals == count)?.Incentive;
                    milestone = count;
                    break;
                case RewardKind.Goal:
                    incentive = count is not null && count == (rule.Goal ?? campaign.GoalConversions) ? rule.Incentive : null;
                    milestone = count;
                    break;
                default:
                    incentive = rule.Incentive;
                    break;
            }
            if (incentive is null)
            {
                continue;
            }

            var recipients = rule.Recipient switch
            {
                RewardRecipient.Friend => new[] { (RewardRecipient.Friend, work.Friend) },
                RewardRecipient.Both => [(RewardRecipient.Advocate, work.Advocate), (RewardRecipient.Friend, work.Friend)],
                _ => [(RewardRecipient.Advocate, work.Advocate)],
            };
            foreach (var (role, participant) in recipients)
            {
                var now = clock.GetUtcNow();
                var reward = new Reward
                {
                    Id = Ids.New("rwd"),
                    CampaignId = campaign.Id,
                    ReferralId = work.Referral.Id,
                    AdvocateId = work.Advocate.Id,
                    ParticipantId = participant.Id,
                    Recipient = role,
                    RuleId = rule.Id!,
                    Trigger = trigger,
                    Kind = rule.Kind!,
                    Milestone = milestone,
                    Incentive = incentive,
                    Status = RewardStatus.Pending,
                    EventId = work.Event?.Id,
                    CreatedAt = now,
                    UpdatedAt = now,
                };
                db.Rewards.Add(reward);
                work.Rewards.Add(reward);

                var reason = blockReason
                    ?? (!campaign.IsActive ? BlockReason.ShareInactive : null)
                    ?? (rule.MinPurchaseValue is { } min && !(work.Event?.PurchaseValue >= min) ? BlockReason.CriteriaMismatch : null)
                    ?? (trigger != RewardTrigger.Invited && work.Referral is { Status: ReferralStatus.Approved, AutoApproved: true }
                        && !campaign.AllowRewardsOnAutoApproved ? BlockReason.AutoApprovedNotAllowed : null)
                    ?? (await TakeLimitsAsync(work, rule, reward, ct) ? null : BlockReason.LimitReached);
                if (reason is not null)
                {
                    await BlockAsync(work, reward, reason, ct);
                }
                else if (work.Referral.Status != ReferralStatus.Flagged
                    && (trigger == RewardTrigger.Invited || work.Referral.Status == ReferralStatus.Approved))
                {
                    // Sign-up rewards (a friend's welcome coupon) are needed before the first purchase, so they do not
                    // wait for an approval; the others follow their referral's approval. A flagged referral holds
                    // both kinds (pending) until a reviewer approves it.
                    await ReleaseAsync(work, reward, ct);
                }
            }
        }
    }

    private async Task<bool> TakeLimitsAsync(Work work, RewardRule rule, Reward reward, CancellationToken ct)
    {
        if (rule.Limits is not { } limits)
        {
            return true;
        }
        var month = clock.GetUtcNow().ToString("yyyy-MM", CultureInfo.InvariantCulture);
        if (limits.PerMonth is { } perMonth)
        {
            if (!await AdvocateCounters.TryTakeAsync(db, work.Advocate.Id, AdvocateCounters.Limit(reward, month), perMonth, ct))
            {
                return false;
            }
            reward.CountedMonth = month;
        }
        if (limits.Total is { } total)
        {
            if (!await AdvocateCounters.TryTakeAsync(db, work.Advocate.Id, AdvocateCounters.Limit(reward, "total"), total, ct))
            {
                await AdvocateCounters.GiveBackLimitsAsync(db, reward, ct);
                return false;
            }
            reward.CountedTotal = true;
        }
        return true;
    }

    private async Task BlockAsync(Work work, Reward reward, string reason, CancellationToken ct)
    {
        await AdvocateCounters.GiveBackLimitsAsync(db, reward, ct);
        reward.Status = RewardStatus.Blocked;
        reward.Reason = Clip(reason);
        reward.PendingReason = null;
        reward.CouponDueAt = null;
        reward.UpdatedAt = clock.GetUtcNow();
        work.Snapshot.EmitReward(db, reward, reward.UpdatedAt);
    }

    /// <summary>
    /// Makes a reward payable: an uploaded coupon code is claimed now; it is issued at once unless an approval webhook
    /// must answer first. When only the pool's create-coupon URL can supply the code, the reward stays pending
    /// (<see cref="PendingReasons.AwaitingCoupon"/>): that call is made after the commit, by <see cref="CouponRequests"/>.
    /// </summary>
    private async Task ReleaseAsync(Work work, Reward reward, CancellationToken ct)
    {
        if (reward.Incentive.Type == IncentiveType.DiscountCoupon && reward.CouponCode is null)
        {
            await db.SaveChangesAsync(ct);
            var allocation = await coupons.ClaimAsync(work.Campaign.Id, reward.Incentive.Pool!, reward.Id, reward.ParticipantId, ct);
            if (allocation.AwaitsCreateCouponUrl)
            {
                reward.Status = RewardStatus.Pending;
                reward.PendingReason = PendingReasons.AwaitingCoupon;
                reward.CouponDueAt = clock.GetUtcNow();
                reward.CouponAttempts = 0;
                reward.UpdatedAt = reward.CouponDueAt.Value;
                _couponsAwaited = true;
                return;
            }
            if (!allocation.Succeeded)
            {
                await BlockAsync(work, reward, allocation.FailureReason ?? "no coupon available", ct);
                return;
            }
            reward.CouponCode = allocation.Code;
        }
        RewardRelease.MakePayable(db, work.Snapshot, reward, clock.GetUtcNow());
    }

    // ---------------------------------------------------------------- helpers

    private bool IsNew(Referral referral) => db.Entry(referral).State == EntityState.Added;

    private static List<ScreeningFinding> Findings(FraudVerdict verdict) =>
        verdict.Findings.Select(f => new ScreeningFinding(f.Check, f.Action.ToString().ToLowerInvariant(), f.Reason)).ToList();

    private static string FraudReason(FraudVerdict verdict) =>
        "fraud: " + string.Join("; ", verdict.Findings.Where(f => f.Action == FraudAction.Block).Select(f => $"{f.Check}: {f.Reason}"));

    private static string RewardReasonFor(FraudVerdict verdict) =>
        verdict.Findings.Any(f => f.Action == FraudAction.Block && f.Check.Equals("couponCycling", StringComparison.OrdinalIgnoreCase))
            ? BlockReason.CouponCycling
            : BlockReason.FraudCheckFailed;

    /// <summary>
    /// Runs <paramref name="work"/> in one transaction and retries it from a fresh read when it lost a race: a unique
    /// index (the same order id, friend or code arriving twice), a concurrent status change, or a deadlock.
    /// </summary>
    private async Task<T> InTransactionAsync<T>(Func<Task<T>> work, CancellationToken ct)
    {
        // A failed save fails the whole unit of work, which is retried from the start: a savepoint around every save
        // (two more statements each) would buy nothing. Statements that may fail and go on take their own savepoint.
        var savepoints = db.Database.AutoSavepointsEnabled;
        db.Database.AutoSavepointsEnabled = false;
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                db.ChangeTracker.Clear();
                _couponsAwaited = false;
                try
                {
                    // On SQLite committed together with the units that arrived meanwhile, once for all of them.
                    var result = await unitOfWork.RunAsync(db, work, ct);
                    if (_couponsAwaited)
                    {
                        couponRequests.Wake();
                    }
                    return result;
                }
                catch (Exception exception) when (attempt < 6 && IsRetryable(exception))
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 25) * attempt), ct);
                }
            }
        }
        finally
        {
            db.Database.AutoSavepointsEnabled = savepoints;
        }
    }

    private static bool IsRetryable(Exception exception) => exception switch
    {
        ConcurrentChangeException => true,
        DbUpdateException => true,
        SqliteException { SqliteErrorCode: 5 or 6 } => true, // busy, locked
        DbException { SqlState: "40001" or "40P01" or "23505" } => true, // serialization, deadlock, unique
        _ => exception.InnerException is { } inner && IsRetryable(inner),
    };
}

/// <summary>Bounds how many events are ingested at once per instance: a group commit's worth on SQLite, a share of the pool on PostgreSQL.</summary>
public sealed class IngestionGate(IConfiguration configuration)
{
    public SemaphoreSlim Events { get; } = new(Limit(configuration));

    private static int Limit(IConfiguration configuration)
    {
        var configured = configuration.GetValue<int?>("Tracking:MaxConcurrentEvents");
        if (configured is > 0)
        {
            return configured.Value;
        }
        var provider = StorageSetup.ProviderName(configuration);
        // SQLite: enough events at once to fill a group commit (one writer runs them in turn); PostgreSQL: a share of the pool.
        return provider == "sqlite" ? StorageSetup.GroupCommitMaxUnits(configuration) : 16;
    }
}
