using System.Globalization;
using System.Text.Json;
using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Rewards;
using Referloop.Storage;
using Referloop.Tracking;
using Referloop.Webhooks;

namespace Referloop.Referrals;

/// <summary>
/// The referral rules as functions over data: attribution's outcome, fraud checks and their actions, limits,
/// goal and milestone counting, approval, reward issuance and the messages each step sends. Every command takes
/// the <see cref="ReferralFacts"/> read for it and returns its answer with the <see cref="ReferralChanges"/> to write;
/// nothing here reads or writes a database, waits, or looks at a clock.
/// </summary>
public sealed partial class ReferralCore(IReferralScreening screening, PublicUrls urls)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>One command's state while it is decided.</summary>
    private sealed class Work(ReferralFacts facts, ReferralChanges changes, ReferralSnapshot snapshot, TrackedEvent? trackedEvent)
    {
        public ReferralFacts Facts { get; } = facts;
        public ReferralChanges Changes { get; } = changes;
        public ReferralSnapshot Snapshot { get; set; } = snapshot;
        public Campaign Campaign => Snapshot.Campaign;
        public Referral Referral => Snapshot.Referral;
        public Participant Advocate => Snapshot.Advocate;
        public Participant Friend => Snapshot.Friend;
        public TrackedEvent? Event { get; } = trackedEvent;
        public DateTimeOffset Now => Facts.Now;

        /// <summary>The rewards this command created or changed, in that order: the event's answer lists them.</summary>
        public List<Reward> Touched { get; } = [];

        public EventConversion? Conversion { get; set; }

        /// <summary>Set when the fraud checks blocked the referral as it was created: the reward reason they give.</summary>
        public string? BlockedAtCreation { get; set; }

        public int Conversions
        {
            get => Snapshot.Conversions;
            set => Snapshot = Snapshot with { Conversions = value };
        }

        public bool IsNew(Referral referral) => Changes.NewReferrals.Contains(referral);

        public void Touch(Reward reward)
        {
            if (!Touched.Contains(reward))
            {
                Touched.Add(reward);
            }
        }

        public void Send(OutboxMessage message) => Changes.Messages.Add(message);

        public int Counter(string name) =>
            Facts.Counters.GetValueOrDefault(name) + Changes.CounterDeltas.GetValueOrDefault((Advocate.Id, name));

        public int Add(string name, int delta)
        {
            Changes.CounterDeltas[(Advocate.Id, name)] = Changes.CounterDeltas.GetValueOrDefault((Advocate.Id, name)) + delta;
            return Counter(name);
        }

        /// <summary>The referral's rewards: the stored ones as this command left them, then the ones it created.</summary>
        public IEnumerable<Reward> RewardsOfReferral => Facts.Rewards.Where(r => r.ReferralId == Referral.Id)
            .Concat(Changes.NewRewards.Where(r => r.ReferralId == Referral.Id));
    }

    // ---------------------------------------------------------------- events

    /// <summary>
    /// What an event recorded in <paramref name="tracked"/> does: attributes its friend (a new referral) or applies it
    /// to the friend's referral. The event's own row is the caller's; the core sets its participant and referral.
    /// </summary>
    public (EventOutcome Outcome, ReferralChanges Changes) Track(ReferralFacts facts, TrackedEvent tracked, string? couponCode)
    {
        var campaign = facts.Campaign;
        var friend = facts.Friend;
        var changes = new ReferralChanges();
        if (friend is not null && BlockLists.CanonicalIp(tracked.Ip) is { } seenIp)
        {
            // An advocate's own events are where the same-IP check learns their addresses.
            changes.SeenIps.Add((friend.Id, seenIp));
        }

        Work work;
        if (facts.Referral is null)
        {
            if (!campaign.IsActive)
            {
                return Answer(tracked, NotAttributed(tracked, $"the campaign is {campaign.Status}; new friends are not attributed"), changes);
            }
            if (facts.Match is not { } match)
            {
                return Answer(tracked,
                    NotAttributed(tracked, "no referral code, click id, or earlier click from this email or IP inside the attribution window"),
                    changes);
            }
            if (friend is not null && match.Advocate.Id == friend.Id)
            {
                return Answer(tracked, NotAttributed(tracked, "the event is the advocate's own"), changes);
            }
            var (invited, joined) = ParticipantDirectory.Invite(urls, campaign, friend, tracked.Email, tracked.Name, match.Advocate, facts.Now);
            if (joined is not null)
            {
                if (friend is null)
                {
                    changes.NewParticipants.Add(invited);
                }
                else
                {
                    changes.Changed(invited);
                }
                changes.Messages.Add(joined);
            }
            work = CreateReferral(facts, changes, match, invited, tracked, couponCode);
        }
        else
        {
            work = new Work(facts, changes, new ReferralSnapshot(campaign, facts.Referral, facts.Advocate!, friend!,
                facts.Counters.GetValueOrDefault(AdvocateCounters.Conversions)), tracked);
        }

        tracked.ParticipantId = work.Friend.Id;
        tracked.ReferralId = work.Referral.Id;
        if (tracked.Type == EventKinds.Purchase)
        {
            if (work.Referral.Status == ReferralStatus.Pending || AwaitsConversionInReview(work.Referral))
            {
                if (AwaitsServer(campaign, tracked))
                {
                    // Recorded and attributed; the server's report of the same order converts it. The referral keeps
                    // the purchase, which a person approving it instead is judged by (a rule's minPurchaseValue).
                    if (!work.IsNew(work.Referral))
                    {
                        Changed(work, work.Referral);
                        work.Referral.EventType = tracked.Type;
                        work.Referral.OrderId = tracked.OrderId;
                        work.Referral.PurchaseValue = tracked.PurchaseValue;
                        work.Referral.Currency = tracked.Currency;
                        work.Referral.UpdatedAt = work.Now;
                    }
                    work.Conversion = new EventConversion(ConversionStatus.Pending, work.Conversions, false);
                }
                else
                {
                    Qualify(work, $"purchase{(tracked.OrderId is null ? "" : " " + tracked.OrderId)}", couponCode, null);
                }
            }
            else if (work.BlockedAtCreation is { } blocked)
            {
                // The purchase that the fraud checks stopped still shows what it would have earned, and why not.
                ApplyRules(work, RewardTrigger.Converted, null, null, blocked);
                work.Send(work.Snapshot.ConversionMessage(ConversionStatus.Fail, work.Now));
                work.Conversion = new EventConversion(ConversionStatus.Fail, work.Conversions, false);
            }
        }
        else if (tracked.Type != EventKinds.Signup && work.Referral.Status != ReferralStatus.Voided
            && (tracked.Source == EventSource.Server || campaign.Fraud.BrowserConversions == BrowserConversions.Accept))
        {
            // Only a trusted report of a custom event earns: it cannot be held in review the way a purchase is.
            CustomEvent(work, tracked);
        }

        var outcome = new EventOutcome(tracked.Id, false, true, work.Referral.AttributedBy, null,
            new EventReferral(work.Referral.Id, work.Referral.Status, work.Referral.Reason, work.Advocate.Id, work.Friend.Id,
                work.Referral.RiskScore),
            work.Touched.Select(RewardResponse.From).ToList(), work.Conversion);
        return Answer(tracked, outcome, changes);
    }

    /// <summary>The answer is kept on the event: a retry of it is answered the same.</summary>
    private static (EventOutcome, ReferralChanges) Answer(TrackedEvent tracked, EventOutcome outcome, ReferralChanges changes)
    {
        tracked.Outcome = JsonSerializer.Serialize(outcome, Json);
        return (outcome, changes);
    }

    private static EventOutcome NotAttributed(TrackedEvent tracked, string reason) =>
        new(tracked.Id, false, false, null, reason, null, [], null);

    /// <summary>A browser-reported conversion that earns nothing until the server reports it (or a person approves it).</summary>
    private static bool AwaitsServer(Campaign campaign, TrackedEvent tracked) =>
        tracked.Source == EventSource.Browser && campaign.Fraud.BrowserConversions == BrowserConversions.Confirm;

    private Work CreateReferral(ReferralFacts facts, ReferralChanges changes, AttributionMatch match, Participant friend,
        TrackedEvent tracked, string? couponCode)
    {
        var campaign = facts.Campaign;
        var now = facts.Now;
        var verdict = screening.Evaluate(campaign, match.Advocate,
            new FriendSignals(friend.Email, tracked.Ip, match.ClickId ?? tracked.ClickId, tracked.UserAgent, couponCode), facts.Fraud);
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
        referral.History.Add(new ReferralStatusChange(null, ReferralStatus.Pending, referral.Reason, now));
        changes.NewReferrals.Add(referral);
        var work = new Work(facts, changes,
            new ReferralSnapshot(campaign, referral, match.Advocate, friend, facts.Counters.GetValueOrDefault(AdvocateCounters.Conversions)),
            tracked);
        // A blocked referral does not count; any other counts at once.
        var referrals = verdict.Blocked ? 0 : work.Add(AdvocateCounters.Referrals, 1);
        work.Send(work.Snapshot.Message(EventTypes.ReferralCreated, now));

        if (verdict.Blocked)
        {
            work.BlockedAtCreation = RewardReasonFor(verdict);
            Void(work, FraudReason(verdict), work.BlockedAtCreation);
            ApplyRules(work, RewardTrigger.Invited, null, null, work.BlockedAtCreation);
            Decide(work, FraudDecision.Blocked);
            return work;
        }
        if (verdict.Flagged)
        {
            Flag(work, verdict);
        }
        // A flagged referral still counts towards milestones: its rewards are held, and released if it is approved.
        // Rejected (voided from the review queue), it stops counting.
        ApplyRules(work, RewardTrigger.Invited, null, referrals, null);
        if (verdict.Flagged)
        {
            Decide(work, FraudDecision.Flagged);
        }
        return work;
    }

    private void CustomEvent(Work work, TrackedEvent tracked)
    {
        // A custom event rewards once per friend: repeating it (a renewal, a second visit) earns nothing more.
        if (work.Facts.CustomEventSeen || !work.Campaign.Rewards.Any(r => r.Trigger == RewardTrigger.Event && r.Event == tracked.Type))
        {
            return;
        }
        var count = work.Add(AdvocateCounters.CustomEvent(tracked.Type), 1);
        ApplyRules(work, RewardTrigger.Event, tracked.Type, count, null);
    }

    // ---------------------------------------------------------------- commands

    /// <summary>A referral command's outcome: null when it was carried out, else why not (the referral is left as it was).</summary>
    public sealed record CommandOutcome(string? Conflict, ReferralChanges Changes);

    private Work CommandWork(ReferralFacts facts) => new(facts, new ReferralChanges(),
        new ReferralSnapshot(facts.Campaign, facts.Referral!, facts.Advocate!, facts.Friend!,
            facts.Counters.GetValueOrDefault(AdvocateCounters.Conversions)), null);

    /// <summary>Qualifies a pending referral (the friend converted); approves it too when the campaign says so.</summary>
    public CommandOutcome Qualify(ReferralFacts facts, string reason)
    {
        var work = CommandWork(facts);
        switch (work.Referral.Status)
        {
            case ReferralStatus.Voided:
                return new("The referral is voided; a voided referral cannot qualify.", work.Changes);
            case ReferralStatus.Pending:
            case ReferralStatus.Flagged when work.Referral.QualifiedAt is null:
                // A flagged one records the conversion and stays in the review queue.
                Qualify(work, reason, null, null);
                break;
        }
        return new(null, work.Changes);
    }

    /// <summary>Approves a referral by hand: a pending one is qualified first.</summary>
    public CommandOutcome Approve(ReferralFacts facts, string reason)
    {
        var work = CommandWork(facts);
        switch (work.Referral.Status)
        {
            case ReferralStatus.Voided:
                return new("The referral is voided; a voided referral cannot be approved.", work.Changes);
            case ReferralStatus.Pending:
            case ReferralStatus.Flagged when work.Referral.QualifiedAt is null:
                Qualify(work, "qualified on approval", null, reason);
                break;
            case ReferralStatus.Qualified:
                Approve(work, auto: false, reason, reportConversion: true);
                break;
            case ReferralStatus.Flagged:
                Approve(work, auto: false, reason, reportConversion: true);
                Decide(work, FraudDecision.Cleared);
                break;
        }
        return new(null, work.Changes);
    }

    public CommandOutcome Void(ReferralFacts facts, string reason)
    {
        var work = CommandWork(facts);
        if (work.Referral.Status != ReferralStatus.Voided)
        {
            var reviewed = work.Referral.Status == ReferralStatus.Flagged;
            Void(work, reason, $"{BlockReason.ReferralVoided}: {reason}");
            if (reviewed)
            {
                // A flagged referral counted while it was held; rejected, it no longer does, like one blocked at once.
                if (work.Counter(AdvocateCounters.Referrals) > 0)
                {
                    work.Add(AdvocateCounters.Referrals, -1);
                }
                Decide(work, FraudDecision.Rejected);
            }
        }
        return new(null, work.Changes);
    }

    /// <summary>Approves a qualified referral whose holding period has ended; a conflict when it is no longer due.</summary>
    public CommandOutcome ApproveDue(ReferralFacts facts)
    {
        var work = CommandWork(facts);
        // A campaign switched to manual approval since leaves the referral to a person; switched back, the job finds it again.
        if (work.Referral is not { Status: ReferralStatus.Qualified, ApproveAfter: { } due } || due > facts.Now
            || work.Campaign.Approval != ApprovalPolicy.Auto)
        {
            return new("not due", work.Changes);
        }
        Approve(work, auto: true, $"holding period of {work.Campaign.HoldingPeriodDays} days ended", reportConversion: true);
        return new(null, work.Changes);
    }

    // ---------------------------------------------------------------- lifecycle

    private void Qualify(Work work, string reason, string? couponCode, string? manualApproval)
    {
        var now = work.Now;
        var verdict = screening.Evaluate(work.Campaign, work.Advocate,
            new FriendSignals(work.Friend.Email, work.Event?.Ip, work.Event?.ClickId ?? work.Referral.ClickId, work.Event?.UserAgent,
                couponCode, BrowserConversion: work.Event?.Source == EventSource.Browser), work.Facts.Fraud);
        work.Referral.Findings = [.. work.Referral.Findings, .. Findings(verdict).Where(f => !work.Referral.Findings.Contains(f))];
        work.Referral.RiskScore = RiskScore.Of(work.Referral.Findings.Select(f => f.Check));
        if (work.Event is { } tracked)
        {
            work.Referral.EventType = tracked.Type;
            work.Referral.OrderId = tracked.OrderId;
            work.Referral.PurchaseValue = tracked.PurchaseValue;
            work.Referral.Currency = tracked.Currency;
        }
        Changed(work, work.Referral);
        if (verdict.Blocked)
        {
            Void(work, FraudReason(verdict), RewardReasonFor(verdict));
            ApplyRules(work, RewardTrigger.Converted, null, null, RewardReasonFor(verdict));
            work.Send(work.Snapshot.ConversionMessage(ConversionStatus.Fail, now));
            work.Conversion = new EventConversion(ConversionStatus.Fail, work.Conversions, false);
            Decide(work, FraudDecision.Blocked);
            return;
        }

        // A flag holds the referral for review, unless a person is approving it right now: that is the review.
        var wasFlagged = work.Referral.Status == ReferralStatus.Flagged;
        var held = manualApproval is null && (verdict.Flagged || wasFlagged);
        if (!held)
        {
            Move(work, ReferralStatus.Qualified, reason);
        }
        else if (!wasFlagged)
        {
            Flag(work, verdict);
        }
        else
        {
            Record(work, work.Referral, ReferralStatus.Flagged, ReferralStatus.Flagged, Clip($"{reason}; the conversion is held for review"));
        }
        work.Referral.QualifiedAt = now;
        work.Conversions = work.Add(AdvocateCounters.Conversions, 1);
        work.Referral.ConversionNumber = work.Conversions;
        if (!held)
        {
            work.Send(work.Snapshot.Message(EventTypes.ReferralQualified, now));
        }
        ApplyRules(work, RewardTrigger.Converted, null, work.Conversions, null);

        if (manualApproval is not null)
        {
            Approve(work, auto: false, manualApproval, reportConversion: false);
        }
        else if (held)
        {
            // Never auto-approved: no ApproveAfter, so the auto-approval service does not see it.
        }
        else if (work.Campaign.Approval == ApprovalPolicy.Auto)
        {
            if (work.Campaign.HoldingPeriodDays == 0)
            {
                Approve(work, auto: true, "approved automatically on qualification", reportConversion: false);
            }
            else
            {
                work.Referral.ApproveAfter = now.AddDays(work.Campaign.HoldingPeriodDays);
            }
        }

        var status = work.Referral.Status == ReferralStatus.Approved ? ConversionStatus.Success : ConversionStatus.Pending;
        work.Send(work.Snapshot.ConversionMessage(status, now));
        work.Conversion = new EventConversion(status, work.Conversions, work.Conversions == work.Snapshot.Goal);

        if (held)
        {
            var onlyBrowserHold = !wasFlagged && verdict.Findings.All(f => f.Check == FraudCheck.BrowserReported);
            Decide(work, onlyBrowserHold ? FraudDecision.Held : FraudDecision.Flagged);
        }
        else if (manualApproval is not null && (wasFlagged || verdict.Flagged))
        {
            Decide(work, FraudDecision.Cleared);
        }
    }

    /// <summary>Flagged when it was created, before the friend converted: a purchase still records the conversion.</summary>
    private static bool AwaitsConversionInReview(Referral referral) =>
        referral is { Status: ReferralStatus.Flagged, QualifiedAt: null };

    /// <summary>Puts the referral in the review queue: never auto-approved, its rewards held until a person decides.</summary>
    private static void Flag(Work work, FraudVerdict verdict)
    {
        var reason = "flagged for review: "
            + string.Join("; ", verdict.Findings.Where(f => f.Action == FraudAction.Flag).Select(f => $"{f.Check}: {f.Reason}"));
        Move(work, ReferralStatus.Flagged, reason);
        work.Referral.FlaggedAt = work.Now;
        work.Referral.ApproveAfter = null;
        work.Send(work.Snapshot.FlaggedMessage(work.Now));
    }

    /// <summary>
    /// Records a fraud decision about the referral; when it counts for or against the advocate, their risk level is
    /// recomputed from their counted referrals (a clean referral costs nothing more), and a changed level is reported.
    /// </summary>
    private static void Decide(Work work, string decision)
    {
        var before = work.Referral.FraudDecision;
        if (before == decision)
        {
            return;
        }
        work.Referral.FraudDecision = decision;
        Changed(work, work.Referral);
        if (!ParticipantRisk.Counts(before) && !ParticipantRisk.Counts(decision))
        {
            return;
        }
        var counted = work.Facts.CountedReferrals.Where(r => r.Id != work.Referral.Id).ToList();
        if (ParticipantRisk.Counts(decision))
        {
            counted.Add(new CountedReferral(work.Referral.Id, decision, work.Referral.RiskScore, work.Referral.Findings));
        }
        counted = [.. counted.OrderByDescending(r => r.Id, StringComparer.Ordinal)];
        var flagged = counted.Count(r => r.FraudDecision == FraudDecision.Flagged);
        var level = ParticipantRisk.LevelFor(counted.Count - flagged, flagged);
        List<string>? reasons = counted.Count == 0 ? null : counted.Take(ParticipantRisk.MaxReasons)
            .Select(r => ParticipantRisk.Reason(r.Id, r.FraudDecision, r.RiskScore, r.Findings))
            .ToList();

        var advocate = work.Advocate;
        var old = advocate.RiskLevel;
        var changed = old != level;
        var risk = new RiskChange(advocate.Id, work.Changes.Risks.GetValueOrDefault(advocate.Id)?.OldLevel ?? old, level, reasons,
            changed ? work.Now : advocate.RiskChangedAt);
        work.Changes.Risks[advocate.Id] = risk;
        advocate.RiskLevel = level;
        advocate.RiskReasons = reasons;
        advocate.RiskChangedAt = risk.ChangedAt;
        if (changed)
        {
            work.Send(ParticipantRisk.ChangedMessage(work.Campaign, advocate, old, level, reasons, work.Referral, work.Now));
        }
    }

    private void Approve(Work work, bool auto, string reason, bool reportConversion)
    {
        var now = work.Now;
        Move(work, ReferralStatus.Approved, reason);
        work.Referral.ApprovedAt = now;
        work.Referral.AutoApproved = auto;
        work.Referral.ApproveAfter = null;
        if (!work.Facts.ApprovalListeners)
        {
            work.Referral.RewardsReleasedAt = now;
        }
        work.Send(work.Snapshot.Message(EventTypes.ReferralApproved, now));
        if (reportConversion)
        {
            work.Send(work.Snapshot.ConversionMessage(ConversionStatus.Success, now));
        }

        // A reward awaiting its coupon is released already: its coupon request completes it.
        var waiting = work.RewardsOfReferral
            .Where(r => r.Status == RewardStatus.Pending && r.PendingReason != PendingReasons.AwaitingCoupon)
            .OrderBy(r => r.Id, StringComparer.Ordinal)
            .ToList();
        foreach (var reward in waiting)
        {
            work.Touch(reward);
            if (auto && !work.Campaign.AllowRewardsOnAutoApproved)
            {
                Block(work, reward, BlockReason.AutoApprovedNotAllowed);
            }
            else
            {
                Release(work, reward);
            }
        }
    }

    private static void Void(Work work, string reason, string rewardReason)
    {
        var now = work.Now;
        var wasConverted = work.Referral.QualifiedAt is not null
            && work.Referral.Status is ReferralStatus.Qualified or ReferralStatus.Approved or ReferralStatus.Flagged;
        Move(work, ReferralStatus.Voided, reason);
        work.Referral.VoidedAt = now;
        work.Referral.ApproveAfter = null;
        if (wasConverted && work.Counter(AdvocateCounters.Conversions) > 0)
        {
            // As with a refund: goals and milestones are reached by the conversions that still stand.
            work.Conversions = work.Add(AdvocateCounters.Conversions, -1);
        }
        work.Send(work.Snapshot.Message(EventTypes.ReferralVoided, now));
        if (wasConverted)
        {
            work.Send(work.Snapshot.ConversionMessage(ConversionStatus.Fail, now));
        }
        // Rewards not yet payable are withdrawn (blocked).
        var open = work.RewardsOfReferral
            .Where(r => r.Status is RewardStatus.Pending or RewardStatus.Approved)
            .OrderBy(r => r.Id, StringComparer.Ordinal)
            .ToList();
        foreach (var reward in open)
        {
            work.Touch(reward);
            Block(work, reward, rewardReason);
        }
        if (!wasConverted)
        {
            return;
        }
        // What the conversion earned and was issued is taken back as a refund takes it back (revoked, or
        // clawback_required once paid); the friend's sign-up rewards and custom-event rewards were earned otherwise.
        var issued = work.RewardsOfReferral
            .Where(r => r.Trigger == RewardTrigger.Converted && r.Status == RewardStatus.Issued)
            .OrderBy(r => r.Id, StringComparer.Ordinal)
            .ToList();
        foreach (var reward in issued)
        {
            Revoke(work, reward, rewardReason);
        }
        RevokeUnreached(work, (reward, count) => $"{rewardReason}: the advocate's conversions went from {reward.Milestone} to {count}");
    }

    /// <summary>
    /// Moves the referral to <paramref name="to"/>. A stored referral is written only if it still has the status it
    /// was read with (on PostgreSQL the conditional UPDATE also takes its row lock), so two instances never approve or
    /// void the same referral twice.
    /// </summary>
    private static void Move(Work work, string to, string reason)
    {
        var referral = work.Referral;
        var from = referral.Status;
        Changed(work, referral);
        reason = Clip(reason);
        referral.Status = to;
        referral.Reason = reason;
        referral.UpdatedAt = work.Now;
        Record(work, referral, from, to, reason);
    }

    /// <summary>Adds a status change to the referral's history, which is written with the referral.</summary>
    private static void Record(Work work, Referral referral, string? from, string to, string reason)
    {
        Changed(work, referral);
        referral.History.Add(new ReferralStatusChange(from, to, reason, work.Now));
    }

    /// <summary>Lists a stored referral as changed, remembering the status it was read with.</summary>
    private static void Changed(Work work, Referral referral)
    {
        if (work.IsNew(referral) || work.Changes.ChangedReferrals.Contains(referral))
        {
            return;
        }
        work.Changes.ChangedReferrals.Add(referral);
        work.Changes.ExpectedStatus[referral.Id] = referral.Status;
    }

    // ---------------------------------------------------------------- rewards

    private void ApplyRules(Work work, string trigger, string? eventName, int? count, string? blockReason)
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
                    CreatedAt = work.Now,
                    UpdatedAt = work.Now,
                };
                work.Changes.NewRewards.Add(reward);
                work.Touch(reward);

                var reason = blockReason
                    ?? (!campaign.IsActive ? BlockReason.ShareInactive : null)
                    ?? (rule.MinPurchaseValue is { } min && !(PurchaseValue(work) >= min) ? BlockReason.CriteriaMismatch : null)
                    ?? (trigger != RewardTrigger.Invited && work.Referral is { Status: ReferralStatus.Approved, AutoApproved: true }
                        && !campaign.AllowRewardsOnAutoApproved ? BlockReason.AutoApprovedNotAllowed : null)
                    ?? (TakeLimits(work, rule, reward) ? null : BlockReason.LimitReached);
                if (reason is not null)
                {
                    Block(work, reward, reason);
                }
                else if (work.Referral.Status != ReferralStatus.Flagged
                    && (trigger == RewardTrigger.Invited || work.Referral.Status == ReferralStatus.Approved))
                {
                    // Sign-up rewards (a friend's welcome coupon) are needed before the first purchase, so they do not
                    // wait for an approval; the others follow their referral's approval. A flagged referral holds
                    // both kinds (pending) until a reviewer approves it.
                    Release(work, reward);
                }
            }
        }
    }

    /// <summary>
    /// The value a rule's criteria compare: the event's, or, for a command (an approval by hand of a purchase held for
    /// the server's confirmation), the purchase value the referral recorded.
    /// </summary>
    private static decimal? PurchaseValue(Work work) => work.Event?.PurchaseValue ?? work.Referral.PurchaseValue;

    /// <summary>Takes a place under each of the rule's limits for the advocate, or none when one is full.</summary>
    private static bool TakeLimits(Work work, RewardRule rule, Reward reward)
    {
        if (rule.Limits is not { } limits)
        {
            return true;
        }
        var month = work.Now.ToString("yyyy-MM", CultureInfo.InvariantCulture);
        var monthly = AdvocateCounters.Limit(reward, month);
        var total = AdvocateCounters.Limit(reward, "total");
        if ((limits.PerMonth is { } perMonth && work.Counter(monthly) >= perMonth)
            || (limits.Total is { } most && work.Counter(total) >= most))
        {
            return false;
        }
        if (limits.PerMonth is not null)
        {
            work.Add(monthly, 1);
            reward.CountedMonth = month;
        }
        if (limits.Total is not null)
        {
            work.Add(total, 1);
            reward.CountedTotal = true;
        }
        return true;
    }

    /// <summary>Gives back the limit places a reward took, when it is blocked after taking them.</summary>
    private static void GiveBackLimits(Work work, Reward reward)
    {
        if (reward.CountedMonth is { } month)
        {
            GiveBack(work, AdvocateCounters.Limit(reward, month));
            reward.CountedMonth = null;
        }
        if (reward.CountedTotal)
        {
            GiveBack(work, AdvocateCounters.Limit(reward, "total"));
            reward.CountedTotal = false;
        }
    }

    private static void GiveBack(Work work, string counter)
    {
        if (work.Counter(counter) > 0)
        {
            work.Add(counter, -1);
        }
    }

    private static void Block(Work work, Reward reward, string reason)
    {
        GiveBackLimits(work, reward);
        reward.Status = RewardStatus.Blocked;
        reward.Reason = Clip(reason);
        reward.PendingReason = null;
        reward.CouponDueAt = null;
        reward.UpdatedAt = work.Now;
        work.Changes.Changed(reward);
        work.Send(work.Snapshot.RewardMessage(reward, reward.UpdatedAt));
    }

    /// <summary>
    /// Makes a reward payable: a free uploaded code of its pool is handed to it now; it is issued at once unless an
    /// approval webhook must answer first. When only the pool's create-coupon URL can supply the code, the reward
    /// stays pending (<see cref="PendingReasons.AwaitingCoupon"/>): the coupon requests make that call after the commit.
    /// </summary>
    private static void Release(Work work, Reward reward)
    {
        work.Changes.Changed(reward);
        if (reward.Incentive.Type == IncentiveType.DiscountCoupon && reward.CouponCode is null)
        {
            var pool = reward.Incentive.Pool!;
            if (!work.Facts.Coupons.TryGetValue(pool, out var supply))
            {
                Block(work, reward, $"coupon pool '{pool}' does not exist: upload codes to it or give it a create-coupon URL");
                return;
            }
            if (supply.Free.TryDequeue(out var free))
            {
                reward.CouponCode = free.Code;
                work.Changes.CouponClaims.Add(new CouponClaim(free.Id, reward.Id, reward.ParticipantId));
            }
            else if (supply.HasCreateCouponUrl || supply.HeldElsewhere)
            {
                // The coupon requests take a code freed or uploaded meanwhile, else ask the URL, else block the reward.
                reward.Status = RewardStatus.Pending;
                reward.PendingReason = PendingReasons.AwaitingCoupon;
                reward.CouponDueAt = work.Now;
                reward.CouponAttempts = 0;
                reward.UpdatedAt = work.Now;
                work.Changes.CouponsAwaited = true;
                return;
            }
            else
            {
                Block(work, reward, $"coupon pool '{pool}' is empty");
                return;
            }
        }
        if (RewardRelease.MakePayable(work.Snapshot, reward, work.Now) is { } issued)
        {
            work.Send(issued);
        }
    }

    // ---------------------------------------------------------------- helpers

    private static string Clip(string reason) => reason.Length <= 1000 ? reason : reason[..997] + "...";

    private static List<ScreeningFinding> Findings(FraudVerdict verdict) =>
        verdict.Findings.Select(f => new ScreeningFinding(f.Check, f.Action.ToString().ToLowerInvariant(), f.Reason)).ToList();

    private static string FraudReason(FraudVerdict verdict) =>
        "fraud: " + string.Join("; ", verdict.Findings.Where(f => f.Action == FraudAction.Block).Select(f => $"{f.Check}: {f.Reason}"));

    private static string RewardReasonFor(FraudVerdict verdict) =>
        verdict.Findings.Any(f => f.Action == FraudAction.Block && f.Check.Equals("couponCycling", StringComparison.OrdinalIgnoreCase))
            ? BlockReason.CouponCycling
            : BlockReason.FraudCheckFailed;
}
