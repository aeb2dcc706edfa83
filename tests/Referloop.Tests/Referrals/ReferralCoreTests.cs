using Microsoft.Extensions.Configuration;
using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Http;
using Referloop.Participants;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Tracking;
using Referloop.Webhooks;

namespace Referloop.Tests.Referrals;

/// <summary>
/// The referral rules over plain objects: facts in, answer and changes out, with no database, server or clock. The
/// behaviour tests (<see cref="EngineTests"/> and others) run the same rules through the API.
/// </summary>
public class ReferralCoreTests
{
    private static readonly DateTimeOffset Now = new(2026, 3, 14, 9, 30, 0, TimeSpan.Zero);

    private sealed class Screening : IReferralScreening
    {
        public FraudVerdict Verdict { get; set; } = FraudVerdict.Clean;
        public List<FriendSignals> Seen { get; } = [];

        public FraudVerdict Evaluate(Campaign campaign, Participant advocate, FriendSignals friend, FraudFacts facts)
        {
            Seen.Add(friend);
            return Verdict;
        }
    }

    private readonly Screening _screening = new();
    private readonly ReferralCore _core;

    public ReferralCoreTests()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new("PublicUrl", "https://refer.example.com")]).Build();
        _core = new ReferralCore(_screening, new PublicUrls(configuration, null!, null!));
    }

    private static Incentive Rebate(decimal amount) => new() { Type = IncentiveType.Rebate, Amount = amount, Currency = "USD" };

    private static Incentive Coupon(string pool) => new() { Type = IncentiveType.DiscountCoupon, Pool = pool };

    private static RewardRule Rule(string id, string trigger, Incentive incentive, string recipient = RewardRecipient.Advocate,
        RewardLimits? limits = null) =>
        new() { Id = id, Recipient = recipient, Trigger = trigger, Kind = RewardKind.Standard, Incentive = incentive, Limits = limits };

    private static Campaign Campaign(params RewardRule[] rules) => new()
    {
        Id = "cmp_1",
        Name = "Spring",
        LandingUrl = "https://shop.example.com",
        AttributionWindowDays = 30,
        Approval = ApprovalPolicy.Auto,
        AllowRewardsOnAutoApproved = true,
        Fraud = new FraudPolicy(),
        Rewards = [.. rules],
        Status = CampaignStatus.Active,
        PublishableKey = "pk_1",
    };

    private static Participant Person(string id, string email, string code) => new()
    {
        Id = id,
        CampaignId = "cmp_1",
        Email = email,
        Name = email.Split('@')[0],
        Code = code,
        IsReferrer = true,
        CreatedAt = Now.AddDays(-10),
        UpdatedAt = Now.AddDays(-10),
    };

    // The core changes the objects it is given (an advocate's risk level): each test has its own.
    private Participant Ann { get; } = Person("par_ann", "ann@example.com", "ANN1");

    private static TrackedEvent Purchase(string email = "bob@example.net", decimal value = 80m, string orderId = "o-1",
        string id = "evt_1") => new()
        {
            Id = id,
            CampaignId = "cmp_1",
            Type = EventKinds.Purchase,
            Email = email,
            OrderId = orderId,
            PurchaseValue = value,
            Currency = "USD",
            ReferralCode = "ANN1",
            OccurredAt = Now,
            ReceivedAt = Now,
        };

    private ReferralFacts NewFriendFacts(Campaign campaign, Dictionary<string, int>? counters = null,
        bool listeners = false, Dictionary<string, CouponSupply>? coupons = null) => new()
        {
            Campaign = campaign,
            Now = Now,
            Advocate = Ann,
            Match = new AttributionMatch(Ann, Attribution.ByReferralCode, null),
            Counters = counters ?? [],
            ApprovalListeners = listeners,
            Coupons = coupons ?? [],
        };

    private static string[] Types(ReferralChanges changes) => [.. changes.Messages.Select(m => m.Type)];

    [Fact]
    public void A_new_friends_purchase_creates_qualifies_and_approves_the_referral_and_issues_the_advocates_reward()
    {
        var campaign = Campaign(Rule("r1", RewardTrigger.Converted, Rebate(10)));
        var tracked = Purchase();

        var (outcome, changes) = _core.Track(NewFriendFacts(campaign, new() { [AdvocateCounters.Conversions] = 2 }), tracked, null);

        Assert.True(outcome.Attributed);
        Assert.Equal(ReferralStatus.Approved, outcome.Referral!.Status);
        var reward = Assert.Single(outcome.Rewards);
        Assert.Equal((RewardStatus.Issued, 10m), (reward.Status, reward.Incentive.Amount));
        Assert.Equal(new EventConversion(ConversionStatus.Success, 3, false), outcome.Conversion);

        var friend = Assert.Single(changes.NewParticipants);
        Assert.Equal(("bob@example.net", true, "par_ann"), (friend.Email, friend.IsInvited, friend.ReferredById));
        var referral = Assert.Single(changes.NewReferrals);
        Assert.Equal((3, "referral_code"), (referral.ConversionNumber, referral.AttributedBy));
        Assert.Empty(changes.ChangedReferrals);
        Assert.Equal(["(new) -> pending", "pending -> qualified", "qualified -> approved"],
            referral.History.Select(h => $"{h.From ?? "(new)"} -> {h.To}").ToArray());
        Assert.Equal(new Dictionary<(string, string), int> { [(Ann.Id, AdvocateCounters.Referrals)] = 1, [(Ann.Id, AdvocateCounters.Conversions)] = 1 },
            changes.CounterDeltas);
        Assert.Equal([EventTypes.ParticipantJoined, EventTypes.ReferralCreated, EventTypes.ReferralQualified,
            EventTypes.ReferralApproved, EventTypes.RewardIssued, EventTypes.Conversion], Types(changes));
        Assert.Equal((friend.Id, referral.Id), (tracked.ParticipantId, tracked.ReferralId));
        Assert.NotNull(tracked.Outcome);
    }

    [Fact]
    public void An_event_nothing_points_to_an_advocate_for_is_not_attributed_and_changes_nothing()
    {
        var facts = new ReferralFacts { Campaign = Campaign(), Now = Now };

        var (outcome, changes) = _core.Track(facts, Purchase(), null);

        Assert.False(outcome.Attributed);
        Assert.StartsWith("no referral code", outcome.Reason);
        Assert.Empty(changes.Messages);
        Assert.Empty(changes.NewParticipants);
    }

    [Fact]
    public void An_advocates_own_purchase_with_their_code_is_not_attributed()
    {
        var facts = NewFriendFacts(Campaign()) is var f ? new ReferralFacts
        {
            Campaign = f.Campaign,
            Now = Now,
            Advocate = Ann,
            Friend = Ann,
            Match = f.Match,
        } : null!;

        var (outcome, _) = _core.Track(facts, Purchase(Ann.Email), null);

        Assert.Equal("the event is the advocate's own", outcome.Reason);
    }

    [Fact]
    public void A_full_limit_blocks_the_reward_and_takes_no_place()
    {
        var rule = Rule("r1", RewardTrigger.Converted, Rebate(10), limits: new RewardLimits { Total = 2 });
        var totalKey = $"rule:r1:{RewardRecipient.Advocate}:total";

        var (outcome, changes) = _core.Track(NewFriendFacts(Campaign(rule), new() { [totalKey] = 2 }), Purchase(), null);

        var reward = Assert.Single(outcome.Rewards);
        Assert.Equal((RewardStatus.Blocked, BlockReason.LimitReached), (reward.Status, reward.Reason));
        Assert.False(changes.CounterDeltas.ContainsKey((Ann.Id, totalKey)));
        Assert.Contains(EventTypes.RewardBlocked, Types(changes));
    }

    [Fact]
    public void A_limit_with_room_takes_a_place()
    {
        var rule = Rule("r1", RewardTrigger.Converted, Rebate(10), limits: new RewardLimits { Total = 2, PerMonth = 1 });

        var (outcome, changes) = _core.Track(NewFriendFacts(Campaign(rule), new() { ["rule:r1:advocate:total"] = 1 }), Purchase(), null);

        Assert.Equal(RewardStatus.Issued, Assert.Single(outcome.Rewards).Status);
        Assert.Equal(1, changes.CounterDeltas[(Ann.Id, "rule:r1:advocate:total")]);
        Assert.Equal(1, changes.CounterDeltas[(Ann.Id, "rule:r1:advocate:2026-03")]);
    }

    [Fact]
    public void An_approval_webhook_listener_makes_approved_rewards_wait_for_its_acknowledgement()
    {
        var (outcome, changes) = _core.Track(NewFriendFacts(Campaign(Rule("r1", RewardTrigger.Converted, Rebate(10))), listeners: true),
            Purchase(), null);

        Assert.Equal(RewardStatus.Approved, Assert.Single(outcome.Rewards).Status);
        Assert.Null(Assert.Single(changes.NewReferrals).RewardsReleasedAt);
        Assert.DoesNotContain(EventTypes.RewardIssued, Types(changes));
    }

    [Fact]
    public void A_flag_holds_the_referral_and_its_rewards_and_raises_the_advocates_risk()
    {
        _screening.Verdict = new FraudVerdict([new FraudFinding(FraudCheck.SameIp, FraudAction.Flag, "same address")]);
        var campaign = Campaign(Rule("r1", RewardTrigger.Converted, Rebate(10)), Rule("r2", RewardTrigger.Invited, Rebate(5), RewardRecipient.Friend));

        var (outcome, changes) = _core.Track(NewFriendFacts(campaign), Purchase(), null);

        Assert.Equal(ReferralStatus.Flagged, outcome.Referral!.Status);
        Assert.All(outcome.Rewards, r => Assert.Equal(RewardStatus.Pending, r.Status));
        Assert.Equal(FraudDecision.Flagged, Assert.Single(changes.NewReferrals).FraudDecision);
        var risk = changes.Risks[Ann.Id];
        Assert.Equal(new RiskChange("par_ann", RiskLevel.Low, RiskLevel.Medium, risk.Reasons, Now), risk);
        Assert.Contains(EventTypes.ReferralFlagged, Types(changes));
        Assert.Contains(EventTypes.ParticipantRiskChanged, Types(changes));
        Assert.DoesNotContain(EventTypes.ReferralApproved, Types(changes));
    }

    [Fact]
    public void A_block_at_creation_voids_the_referral_and_blocks_what_it_would_have_earned()
    {
        _screening.Verdict = new FraudVerdict([new FraudFinding(FraudCheck.SelfReferral, FraudAction.Block, "same person")]);

        var (outcome, changes) = _core.Track(NewFriendFacts(Campaign(Rule("r1", RewardTrigger.Converted, Rebate(10)))), Purchase(), null);

        Assert.Equal(ReferralStatus.Voided, outcome.Referral!.Status);
        Assert.Equal((RewardStatus.Blocked, BlockReason.FraudCheckFailed),
            (Assert.Single(outcome.Rewards).Status, outcome.Rewards[0].Reason));
        Assert.Equal(ConversionStatus.Fail, outcome.Conversion!.Status);
        Assert.False(changes.CounterDeltas.ContainsKey((Ann.Id, AdvocateCounters.Referrals)));
        Assert.Equal(RiskLevel.Medium, changes.Risks[Ann.Id].NewLevel);
    }

    [Fact]
    public void Coupons_come_from_free_uploaded_codes_then_the_create_coupon_url_and_a_missing_pool_blocks()
    {
        var campaign = Campaign(
            Rule("r1", RewardTrigger.Converted, Coupon("uploaded")),
            Rule("r2", RewardTrigger.Converted, Coupon("minted")),
            Rule("r3", RewardTrigger.Converted, Coupon("nowhere")));
        var coupons = new Dictionary<string, CouponSupply>
        {
            ["uploaded"] = new("cpl_1", false, [new FreeCoupon("cpn_1", "SPRING-1")]),
            ["minted"] = new("cpl_2", true, []),
        };

        var (outcome, changes) = _core.Track(NewFriendFacts(campaign, coupons: coupons), Purchase(), null);

        Assert.Equal((RewardStatus.Issued, "SPRING-1"), (outcome.Rewards[0].Status, outcome.Rewards[0].Incentive.CouponCode));
        Assert.Equal(new CouponClaim("cpn_1", outcome.Rewards[0].Id, "par_ann"), Assert.Single(changes.CouponClaims));
        Assert.Equal((RewardStatus.Pending, PendingReasons.AwaitingCoupon), (outcome.Rewards[1].Status, outcome.Rewards[1].PendingReason));
        Assert.True(changes.CouponsAwaited);
        Assert.Equal(RewardStatus.Blocked, outcome.Rewards[2].Status);
        Assert.StartsWith("coupon pool 'nowhere' does not exist", outcome.Rewards[2].Reason);
    }

    [Fact]
    public void Milestone_tiers_count_the_advocates_conversions_so_far()
    {
        var rule = new RewardRule
        {
            Id = "m1",
            Recipient = RewardRecipient.Advocate,
            Trigger = RewardTrigger.Converted,
            Kind = RewardKind.Milestone,
            Tiers = [new MilestoneTier { Referrals = 3, Incentive = Rebate(30) }, new MilestoneTier { Referrals = 5, Incentive = Rebate(50) }],
        };

        var (third, _) = _core.Track(NewFriendFacts(Campaign(rule), new() { [AdvocateCounters.Conversions] = 2 }), Purchase(), null);
        var (fourth, _) = _core.Track(NewFriendFacts(Campaign(rule), new() { [AdvocateCounters.Conversions] = 3 }), Purchase(), null);

        Assert.Equal((3, 30m), (Assert.Single(third.Rewards).Milestone, third.Rewards[0].Incentive.Amount));
        Assert.Empty(fourth.Rewards);
    }

    [Fact]
    public void Voiding_a_qualified_referral_blocks_its_open_rewards_and_expects_the_status_it_was_read_with()
    {
        var friend = Person("par_bob", "bob@example.net", "BOB1");
        var referral = new Referral
        {
            Id = "ref_1",
            CampaignId = "cmp_1",
            AdvocateId = Ann.Id,
            FriendId = friend.Id,
            Status = ReferralStatus.Qualified,
            AttributedBy = Attribution.ByReferralCode,
            QualifiedAt = Now.AddDays(-1),
            ConversionNumber = 1,
            CreatedAt = Now.AddDays(-2),
        };
        var open = new Reward
        {
            Id = "rwd_1",
            CampaignId = "cmp_1",
            ReferralId = "ref_1",
            AdvocateId = Ann.Id,
            ParticipantId = Ann.Id,
            Recipient = RewardRecipient.Advocate,
            RuleId = "r1",
            Trigger = RewardTrigger.Converted,
            Kind = RewardKind.Standard,
            Incentive = Rebate(10),
            Status = RewardStatus.Pending,
            CountedTotal = true,
        };
        var facts = new ReferralFacts
        {
            Campaign = Campaign(),
            Now = Now,
            Referral = referral,
            Advocate = Ann,
            Friend = friend,
            Rewards = [open],
            Counters = new Dictionary<string, int> { ["rule:r1:advocate:total"] = 4 },
        };

        var (conflict, changes) = _core.Void(facts, "order cancelled");

        Assert.Null(conflict);
        Assert.Equal(ReferralStatus.Qualified, changes.ExpectedStatus["ref_1"]);
        Assert.Same(referral, Assert.Single(changes.ChangedReferrals));
        Assert.Equal(ReferralStatus.Voided, referral.Status);
        Assert.Equal((RewardStatus.Blocked, "referral voided: order cancelled"), (open.Status, open.Reason));
        Assert.Equal(-1, changes.CounterDeltas[(Ann.Id, "rule:r1:advocate:total")]);
        Assert.Equal([EventTypes.ReferralVoided, EventTypes.Conversion, EventTypes.RewardBlocked], Types(changes));
    }

    [Fact]
    public void A_voided_referral_cannot_be_approved()
    {
        var referral = new Referral
        {
            Id = "ref_1",
            CampaignId = "cmp_1",
            AdvocateId = Ann.Id,
            FriendId = "par_bob",
            Status = ReferralStatus.Voided,
            AttributedBy = Attribution.ByReferralCode,
        };
        var facts = new ReferralFacts
        {
            Campaign = Campaign(),
            Now = Now,
            Referral = referral,
            Advocate = Ann,
            Friend = Person("par_bob", "bob@example.net", "BOB1"),
        };

        var (conflict, changes) = _core.Approve(facts, "looks fine");

        Assert.Equal("The referral is voided; a voided referral cannot be approved.", conflict);
        Assert.Empty(changes.Messages);
    }

    [Fact]
    public void In_a_batch_each_event_sees_what_the_events_before_it_changed_and_the_changes_add_up()
    {
        var rule = Rule("r1", RewardTrigger.Converted, Rebate(10), limits: new RewardLimits { Total = 1 });
        var campaign = Campaign(rule);
        var batch = new EventBatch { Now = Now };
        var ann = batch.One(Ann);
        batch.Counters[ann.Id] = new Dictionary<string, int> { [AdvocateCounters.Conversions] = 4 };
        batch.Counted[ann.Id] = [];
        batch.Listeners[campaign.Id] = false;
        batch.Coupons[campaign.Id] = [];
        var events = new[] { Purchase("bob@example.net", orderId: "o-1"), Purchase("cy@example.net", orderId: "o-2", id: "evt_2") };
        var outcomes = new List<EventOutcome>();
        foreach (var tracked in events)
        {
            batch.Matches[tracked.Id] = new AttributionMatch(ann, Attribution.ByReferralCode, null);
            var item = new EventToDecide(campaign, tracked, null);
            var (outcome, changes) = _core.Track(batch.FactsFor(item), tracked, null);
            batch.Apply(changes);
            outcomes.Add(outcome);
        }

        Assert.Equal([5, 6], outcomes.Select(o => o.Conversion!.ReferrerConverts));
        Assert.Equal([RewardStatus.Issued, RewardStatus.Blocked], outcomes.Select(o => o.Rewards.Single().Status));
        Assert.Equal(2, batch.Changes.CounterDeltas[(ann.Id, AdvocateCounters.Conversions)]);
        Assert.Equal(1, batch.Changes.CounterDeltas[(ann.Id, "rule:r1:advocate:total")]);
        Assert.Equal(2, batch.Changes.NewReferrals.Count);
        Assert.Equal(2, batch.Changes.Messages.Count(m => m.Type == EventTypes.ReferralApproved));
    }

    private Referral StoredReferral(string status, string id = "ref_1", decimal? value = 80m) => new()
    {
        Id = id,
        CampaignId = "cmp_1",
        AdvocateId = Ann.Id,
        FriendId = "par_bob",
        Status = status,
        AttributedBy = Attribution.ByReferralCode,
        QualifiedAt = status is ReferralStatus.Pending ? null : Now.AddDays(-1),
        ApprovedAt = status == ReferralStatus.Approved ? Now.AddDays(-1) : null,
        ConversionNumber = status is ReferralStatus.Pending ? null : 3,
        EventType = EventKinds.Purchase,
        OrderId = "o-1",
        PurchaseValue = value,
        Currency = "USD",
        CreatedAt = Now.AddDays(-2),
    };

    private static Reward StoredReward(string id, string referralId, string status, string trigger = RewardTrigger.Converted,
        string kind = RewardKind.Standard, int? milestone = null, DateTimeOffset? paidAt = null) => new()
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
            Incentive = Rebate(10),
            Status = status,
            PaidAt = paidAt,
        };

    private ReferralFacts CommandFacts(Campaign campaign, Referral referral, Dictionary<string, int>? counters = null,
        List<Reward>? rewards = null, List<Reward>? counted = null) => new()
        {
            Campaign = campaign,
            Now = Now,
            Referral = referral,
            Advocate = Ann,
            Friend = Person("par_bob", "bob@example.net", "BOB1"),
            Counters = counters ?? [],
            Rewards = rewards ?? [],
            CountedConversionRewards = counted ?? [],
        };

    [Fact]
    public void Voiding_a_converted_referral_gives_back_the_advocates_conversion_so_goals_count_the_ones_that_stand()
    {
        var goal = new RewardRule
        {
            Id = "g1", Recipient = RewardRecipient.Advocate, Trigger = RewardTrigger.Converted, Kind = RewardKind.Goal, Goal = 3,
            Incentive = Rebate(30),
        };
        var campaign = Campaign(goal);
        // A, B and C converted; C is voided.
        var (_, voided) = _core.Void(CommandFacts(campaign, StoredReferral(ReferralStatus.Approved),
            new() { [AdvocateCounters.Conversions] = 3 }), "order cancelled");
        Assert.Equal(-1, voided.CounterDeltas[(Ann.Id, AdvocateCounters.Conversions)]);

        // D converts: the third conversion that stands earns the goal.
        var (fourth, _) = _core.Track(NewFriendFacts(campaign, new() { [AdvocateCounters.Conversions] = 2 }), Purchase(), null);
        Assert.Equal((3, 30m), (Assert.Single(fourth.Rewards).Milestone, fourth.Rewards[0].Incentive.Amount));

        // A referral voided before it converted took no conversion.
        var (_, pending) = _core.Void(CommandFacts(campaign, StoredReferral(ReferralStatus.Pending),
            new() { [AdvocateCounters.Conversions] = 3 }), "duplicate");
        Assert.False(pending.CounterDeltas.ContainsKey((Ann.Id, AdvocateCounters.Conversions)));
    }

    [Fact]
    public void Rejecting_a_flagged_referral_gives_back_its_place_in_the_advocates_referral_count()
    {
        var referral = StoredReferral(ReferralStatus.Flagged);
        referral.QualifiedAt = null;
        referral.FraudDecision = FraudDecision.Flagged;

        var (conflict, changes) = _core.Void(CommandFacts(Campaign(), referral,
            new() { [AdvocateCounters.Referrals] = 4, [AdvocateCounters.Conversions] = 2 }), "same household");

        Assert.Null(conflict);
        Assert.Equal(-1, changes.CounterDeltas[(Ann.Id, AdvocateCounters.Referrals)]);
        Assert.False(changes.CounterDeltas.ContainsKey((Ann.Id, AdvocateCounters.Conversions)));
    }

    [Fact]
    public void Voiding_an_approved_referral_revokes_what_its_conversion_issued_like_a_refund()
    {
        var referral = StoredReferral(ReferralStatus.Approved);
        var unpaid = StoredReward("rwd_1", "ref_1", RewardStatus.Issued);
        unpaid.CountedTotal = true;
        var paid = StoredReward("rwd_2", "ref_1", RewardStatus.Issued, paidAt: Now.AddHours(-2));
        var welcome = StoredReward("rwd_3", "ref_1", RewardStatus.Issued, trigger: RewardTrigger.Invited);
        // The goal a later referral reached at the fourth conversion: the advocate now has three.
        var goal = StoredReward("rwd_4", "ref_9", RewardStatus.Issued, kind: RewardKind.Goal, milestone: 4);
        var kept = StoredReward("rwd_5", "ref_8", RewardStatus.Issued, kind: RewardKind.Milestone, milestone: 3);

        var (conflict, changes) = _core.Void(CommandFacts(Campaign(), referral,
            new() { [AdvocateCounters.Conversions] = 4, ["rule:r1:advocate:total"] = 2 },
            [unpaid, paid, welcome], [goal, kept]), "fake order");

        Assert.Null(conflict);
        Assert.Equal(ReferralStatus.Voided, referral.Status);
        Assert.Equal((RewardStatus.Revoked, "referral voided: fake order"), (unpaid.Status, unpaid.Reason));
        Assert.Equal(RewardStatus.ClawbackRequired, paid.Status);
        Assert.Equal(RewardStatus.Issued, welcome.Status);
        Assert.Equal(RewardStatus.Revoked, goal.Status);
        Assert.Equal(RewardStatus.Issued, kept.Status);
        Assert.Equal(-1, changes.CounterDeltas[(Ann.Id, "rule:r1:advocate:total")]);
        Assert.Equal([EventTypes.ReferralVoided, EventTypes.Conversion, EventTypes.RewardRevoked, EventTypes.RewardRevoked,
            EventTypes.RewardRevoked], Types(changes));
    }

    [Fact]
    public void The_holding_period_does_not_approve_a_referral_of_a_campaign_switched_to_manual_approval()
    {
        var referral = StoredReferral(ReferralStatus.Qualified);
        referral.ApproveAfter = Now.AddMinutes(-1);
        var campaign = Campaign(Rule("r1", RewardTrigger.Converted, Rebate(10)));
        campaign.Approval = ApprovalPolicy.Manual;

        var (conflict, changes) = _core.ApproveDue(CommandFacts(campaign, referral));

        Assert.Equal("not due", conflict);
        Assert.Equal(ReferralStatus.Qualified, referral.Status);
        Assert.Empty(changes.Messages);

        campaign.Approval = ApprovalPolicy.Auto;
        Assert.Null(_core.ApproveDue(CommandFacts(campaign, referral)).Conflict);
        Assert.Equal(ReferralStatus.Approved, referral.Status);
    }

    [Fact]
    public void Approving_by_hand_a_purchase_held_for_the_servers_confirmation_judges_the_rules_by_its_recorded_value()
    {
        var rule = new RewardRule
        {
            Id = "r1", Recipient = RewardRecipient.Advocate, Trigger = RewardTrigger.Converted, Kind = RewardKind.Standard,
            Incentive = Rebate(10), MinPurchaseValue = 50m,
        };
        var campaign = Campaign(rule);
        campaign.Fraud = new FraudPolicy { BrowserConversions = BrowserConversions.Confirm };

        // The friend signed up first; the browser then reports a purchase of 80, which waits for the server.
        var referral = StoredReferral(ReferralStatus.Pending, value: null);
        referral.EventType = EventKinds.Signup;
        var browser = Purchase(value: 80m);
        browser.Source = EventSource.Browser;
        var (held, _) = _core.Track(CommandFacts(campaign, referral), browser, null);
        Assert.Equal((ReferralStatus.Pending, ConversionStatus.Pending), (held.Referral!.Status, held.Conversion!.Status));
        Assert.Equal(80m, referral.PurchaseValue);

        var (conflict, changes) = _core.Approve(CommandFacts(campaign, referral), "confirmed with the shop");

        Assert.Null(conflict);
        var reward = Assert.Single(changes.NewRewards);
        Assert.Equal(RewardStatus.Issued, reward.Status);

        // Below the minimum it is still a mismatch.
        var small = StoredReferral(ReferralStatus.Pending, id: "ref_2", value: 20m);
        var (_, smallChanges) = _core.Approve(CommandFacts(campaign, small), "confirmed with the shop");
        Assert.Equal((RewardStatus.Blocked, BlockReason.CriteriaMismatch),
            (smallChanges.NewRewards.Single().Status, smallChanges.NewRewards.Single().Reason));
    }
}
