using Microsoft.Extensions.Configuration;
using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Tracking;
using Referloop.Webhooks;

namespace Referloop.Tests.Refunds;

/// <summary>The refund rule over plain objects: the facts of one refunded order in, the answer and the changes out.</summary>
public class RefundCoreTests
{
    private static readonly DateTimeOffset Now = new(2026, 3, 14, 9, 30, 0, TimeSpan.Zero);

    private sealed class Clean : IReferralScreening
    {
        public FraudVerdict Evaluate(Campaign campaign, Participant advocate, FriendSignals friend, FraudFacts facts) => FraudVerdict.Clean;
    }

    private readonly ReferralCore _core = new(new Clean(),
        new PublicUrls(new ConfigurationBuilder().AddInMemoryCollection([new("PublicUrl", "https://refer.example.com")]).Build(), null!, null!));

    private static Campaign Campaign(string refunds = RefundPolicy.KeepIfOtherPurchases) => new()
    {
        Id = "cmp_1",
        Name = "Spring",
        LandingUrl = "https://shop.example.com",
        AttributionWindowDays = 30,
        Approval = ApprovalPolicy.Auto,
        AllowRewardsOnAutoApproved = true,
        GoalConversions = 3,
        Refunds = refunds,
        Fraud = new FraudPolicy(),
        Rewards = [],
        Status = CampaignStatus.Active,
        PublishableKey = "pk_1",
    };

    private static Participant Person(string id, string email) => new()
    {
        Id = id,
        CampaignId = "cmp_1",
        Email = email,
        Name = email.Split('@')[0],
        Code = id.ToUpperInvariant(),
        IsReferrer = true,
        CreatedAt = Now.AddDays(-10),
        UpdatedAt = Now.AddDays(-10),
    };

    private static Referral Referral(string status = ReferralStatus.Approved) => new()
    {
        Id = "ref_1",
        CampaignId = "cmp_1",
        AdvocateId = "par_ann",
        FriendId = "par_bob",
        Status = status,
        AttributedBy = "referral_code",
        QualifiedAt = status == ReferralStatus.Pending ? null : Now.AddDays(-2),
        ApprovedAt = status == ReferralStatus.Approved ? Now.AddDays(-2) : null,
        ConversionNumber = 3,
        OrderId = "o-1",
        EventType = EventKinds.Purchase,
        CreatedAt = Now.AddDays(-3),
        UpdatedAt = Now.AddDays(-2),
    };

    private static Reward Reward(string id, string status, string referralId = "ref_1", string kind = RewardKind.Standard,
        int? milestone = null, DateTimeOffset? paidAt = null, string trigger = RewardTrigger.Converted, string? countedMonth = null) => new()
        {
            Id = id,
            CampaignId = "cmp_1",
            ReferralId = referralId,
            AdvocateId = "par_ann",
            ParticipantId = "par_ann",
            Recipient = RewardRecipient.Advocate,
            RuleId = "r1",
            Trigger = trigger,
            Kind = kind,
            Milestone = milestone,
            Incentive = new Incentive { Type = IncentiveType.Rebate, Amount = 10, Currency = "USD" },
            Status = status,
            PaidAt = paidAt,
            CountedMonth = countedMonth,
            CreatedAt = Now.AddDays(-2),
            UpdatedAt = Now.AddDays(-2),
        };

    private static TrackedEvent Purchase() => new()
    {
        Id = "evt_p",
        CampaignId = "cmp_1",
        Type = EventKinds.Purchase,
        Email = "bob@example.net",
        OrderId = "o-1",
        PurchaseValue = 80m,
        Currency = "USD",
        ParticipantId = "par_bob",
        ReferralId = "ref_1",
        OccurredAt = Now.AddDays(-2),
        ReceivedAt = Now.AddDays(-2),
    };

    private static TrackedEvent Refund(string type = EventKinds.Refund) => new()
    {
        Id = "evt_r",
        CampaignId = "cmp_1",
        Type = type,
        Email = "bob@example.net",
        RefundOf = "o-1",
        OccurredAt = Now,
        ReceivedAt = Now,
    };

    private static ReferralFacts Facts(Campaign? campaign = null, Referral? referral = null, IReadOnlyList<Reward>? rewards = null,
        int conversions = 3, int otherPurchases = 0, IReadOnlyList<Reward>? counted = null, Dictionary<string, int>? counters = null) => new()
        {
            Campaign = campaign ?? Campaign(),
            Now = Now,
            Referral = referral ?? Referral(),
            Advocate = Person("par_ann", "ann@example.com"),
            Friend = Person("par_bob", "bob@example.net"),
            Counters = counters ?? new Dictionary<string, int> { [AdvocateCounters.Conversions] = conversions },
            Rewards = rewards ?? [],
            RefundedPurchase = Purchase(),
            OtherCountedPurchases = otherPurchases,
            CountedConversionRewards = counted ?? [],
        };

    [Fact]
    public void A_refunded_purchase_voids_its_referral_and_takes_back_its_rewards_by_whether_they_were_paid()
    {
        var unpaid = Reward("rwd_1", RewardStatus.Issued);
        var paid = Reward("rwd_2", RewardStatus.Issued, paidAt: Now.AddDays(-1));
        var blocked = Reward("rwd_3", RewardStatus.Blocked);
        var signup = Reward("rwd_4", RewardStatus.Issued, trigger: RewardTrigger.Invited);
        var refund = Refund();

        var (outcome, changes) = _core.Refund(Facts(rewards: [unpaid, paid, blocked, signup]), refund);

        Assert.Equal(new EventRefund("o-1", "evt_p", RefundEffect.Voided), outcome.Refund);
        Assert.Equal((ReferralStatus.Voided, "refunded"), (outcome.Referral!.Status, outcome.Referral.Reason));
        var referral = Assert.Single(changes.ChangedReferrals);
        Assert.Equal(ReferralStatus.Approved, changes.ExpectedStatus[referral.Id]);
        Assert.Equal((Now, "refund", "o-1"), (referral.VoidedAt!.Value, referral.EventType!, referral.OrderId!));
        Assert.Equal("approved -> voided: refunded", referral.History.Select(h => $"{h.From} -> {h.To}: {h.Reason}").Single());
        Assert.Equal([(RewardStatus.Revoked, "refunded"), (RewardStatus.ClawbackRequired, "refunded")],
            changes.ChangedRewards.Select(r => (r.Status, r.Reason!)).ToArray());
        Assert.Equal(["rwd_1", "rwd_2"], outcome.Rewards.Select(r => r.Id).ToArray());
        Assert.Equal((RewardStatus.Blocked, RewardStatus.Issued), (blocked.Status, signup.Status));
        Assert.Equal(new Dictionary<(string, string), int> { [("par_ann", AdvocateCounters.Conversions)] = -1 }, changes.CounterDeltas);
        Assert.Equal(new EventConversion(ConversionStatus.Fail, 2, false), outcome.Conversion);
        Assert.Equal([EventTypes.ReferralVoided, EventTypes.Conversion, EventTypes.RewardRevoked, EventTypes.RewardRevoked],
            changes.Messages.Select(m => m.Type).ToArray());
        Assert.Contains("\"conversions\":2", changes.Messages[0].Data);
        Assert.Equal(("par_bob", "ref_1"), (refund.ParticipantId, refund.ReferralId));
        Assert.NotNull(refund.Outcome);
    }

    [Fact]
    public void A_chargeback_voids_with_its_own_reason()
    {
        var (outcome, _) = _core.Refund(Facts(), Refund(EventKinds.Chargeback));

        Assert.Equal((ReferralStatus.Voided, "chargeback"), (outcome.Referral!.Status, outcome.Referral.Reason));
    }

    [Fact]
    public void Another_counted_purchase_keeps_the_referral_approved_by_default_and_changes_no_reward_or_count()
    {
        var reward = Reward("rwd_1", RewardStatus.Issued);

        var (outcome, changes) = _core.Refund(Facts(rewards: [reward], otherPurchases: 1), Refund());

        Assert.Equal(RefundEffect.Kept, outcome.Refund!.Effect);
        Assert.Equal(ReferralStatus.Approved, outcome.Referral!.Status);
        Assert.Equal("another purchase of the friend still qualifies the referral", outcome.Reason);
        Assert.Equal(RewardStatus.Issued, reward.Status);
        // The referral is written again only for its history: its status stays.
        var referral = Assert.Single(changes.ChangedReferrals);
        Assert.Equal(ReferralStatus.Approved, referral.Status);
        Assert.Empty(changes.ChangedRewards);
        Assert.Empty(changes.CounterDeltas);
        Assert.Empty(changes.Messages);
        var history = Assert.Single(referral.History);
        Assert.Equal(("approved", "approved"), (history.From, history.To));
        Assert.StartsWith("refunded (order o-1)", history.Reason);
    }

    [Fact]
    public void The_void_policy_voids_even_when_other_purchases_count()
    {
        var (outcome, _) = _core.Refund(Facts(Campaign(RefundPolicy.Void), otherPurchases: 2), Refund());

        Assert.Equal((RefundEffect.Voided, ReferralStatus.Voided), (outcome.Refund!.Effect, outcome.Referral!.Status));
    }

    [Fact]
    public void A_goal_or_milestone_the_lower_count_no_longer_reaches_is_taken_back_too_with_its_limit_place()
    {
        // Referral 3 reached the goal of 3; refunding referral 1 takes the advocate back to 2.
        var goal = Reward("rwd_goal", RewardStatus.Issued, referralId: "ref_3", kind: RewardKind.Goal, milestone: 3, countedMonth: "2026-03");
        var tier2 = Reward("rwd_tier2", RewardStatus.Issued, referralId: "ref_2", kind: RewardKind.Milestone, milestone: 2);
        var counters = new Dictionary<string, int> { [AdvocateCounters.Conversions] = 3, ["rule:r1:advocate:2026-03"] = 1 };

        var (outcome, changes) = _core.Refund(Facts(counted: [goal, tier2], counters: counters), Refund());

        Assert.Equal(RewardStatus.Revoked, goal.Status);
        Assert.Equal("refunded: order o-1 took the advocate's conversions from 3 to 2", goal.Reason);
        Assert.Null(goal.CountedMonth);
        Assert.Equal(RewardStatus.Issued, tier2.Status);
        Assert.Equal(-1, changes.CounterDeltas[("par_ann", "rule:r1:advocate:2026-03")]);
        Assert.Contains(outcome.Rewards, r => r.Id == "rwd_goal");
    }

    [Fact]
    public void A_pending_or_awaiting_coupon_reward_of_a_qualified_referral_is_revoked()
    {
        var waiting = Reward("rwd_1", RewardStatus.Pending);
        waiting.PendingReason = PendingReasons.AwaitingCoupon;
        waiting.CouponDueAt = Now;

        var (outcome, _) = _core.Refund(Facts(referral: Referral(ReferralStatus.Qualified), rewards: [waiting]), Refund());

        Assert.Equal(ReferralStatus.Voided, outcome.Referral!.Status);
        Assert.Equal((RewardStatus.Revoked, null, null), (waiting.Status, waiting.PendingReason, waiting.CouponDueAt));
    }

    [Fact]
    public void A_purchase_that_converted_nothing_changes_nothing_but_is_recorded()
    {
        var refund = Refund();

        var (voided, _) = _core.Refund(Facts(referral: Referral(ReferralStatus.Voided)), refund);
        var (pending, changes) = _core.Refund(Facts(referral: Referral(ReferralStatus.Pending)), Refund());

        Assert.Equal((RefundEffect.None, "the referral is voided already"), (voided.Refund!.Effect, voided.Reason));
        Assert.Equal((RefundEffect.None, "the purchase had not converted the referral"), (pending.Refund!.Effect, pending.Reason));
        Assert.Empty(changes.Messages);
        Assert.Empty(changes.CounterDeltas);
        Assert.Equal("ref_1", refund.ReferralId);
    }

    [Fact]
    public void An_unknown_order_is_answered_as_such_and_an_unattributed_one_as_not_attributed()
    {
        var unknown = new ReferralFacts { Campaign = Campaign(), Now = Now };
        var unattributed = new ReferralFacts { Campaign = Campaign(), Now = Now, RefundedPurchase = Purchase() };

        var (first, changes) = _core.Refund(unknown, Refund());
        var (second, _) = _core.Refund(unattributed, Refund());

        Assert.Equal(new EventRefund("o-1", null, RefundEffect.UnknownOrder), first.Refund);
        Assert.Empty(changes.Messages);
        Assert.Equal((false, RefundEffect.None, "evt_p"), (second.Attributed, second.Refund!.Effect, second.Refund.PurchaseEventId));
    }
}
