using System.Net.Http.Json;
using System.Net;
using System.Text.Json.Nodes;
using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Rewards;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Rewards;

public class RewardRuleTests(EngineApp app) : IClassFixture<EngineApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private async Task<(string Campaign, string AdvocateId, string Code)> Setup(object[] rules, object? settings = null)
    {
        var (campaign, _) = await _admin.Campaign(rules, settings);
        var (advocateId, code) = await _admin.Advocate(campaign);
        return (campaign, advocateId, code);
    }

    private int _order;

    private Task<JsonObject> Purchase(string campaign, string code, string email, decimal value = 50, object? properties = null) =>
        _admin.Track(campaign, "purchase", email, code, orderId: $"O-{Interlocked.Increment(ref _order)}", purchaseValue: value, properties: properties);

    [Fact]
    public async Task A_friend_reward_on_invited_is_issued_at_sign_up()
    {
        var (campaign, _, code) = await Setup([new { recipient = "friend", trigger = "invited", kind = "standard", incentive = Other("Welcome gift") }]);

        var outcome = await _admin.Track(campaign, "signup", "fay@example.net", code);

        var reward = Assert.Single(outcome.Rewards())!;
        Assert.Equal("friend", (string?)reward["recipient"]);
        Assert.Equal((string?)outcome["referral"]!["friendId"], (string?)reward["participantId"]);
        Assert.Equal("issued", (string?)reward["status"]);
        Assert.Equal("Welcome gift", (string?)reward["incentive"]!["description"]);
        Assert.Equal("pending", (string?)outcome["referral"]!["status"]);
    }

    [Fact]
    public async Task A_rule_for_both_rewards_advocate_and_friend_on_conversion()
    {
        var (campaign, advocateId, code) = await Setup([new { recipient = "both", trigger = "converted", kind = "standard", incentive = Rebate(5, "EUR") }]);

        var outcome = await Purchase(campaign, code, "gus@example.net");

        Assert.Equal(["advocate", "friend"], outcome.Rewards().Select(r => (string)r!["recipient"]!).Order());
        Assert.All(outcome.Rewards(), r => Assert.Equal("issued", (string?)r!["status"]));
        Assert.Equal(advocateId, (string?)outcome.Rewards().Single(r => (string)r!["recipient"]! == "advocate")!["participantId"]);
        Assert.Equal("EUR", (string?)outcome.Rewards()[0]!["incentive"]!["currency"]);
    }

    [Fact]
    public async Task Milestone_tiers_reward_the_third_and_the_fifth_conversion()
    {
        var (campaign, _, code) = await Setup([new
        {
            recipient = "advocate", trigger = "converted", kind = "milestone",
            tiers = new object[] { new { referrals = 3, incentive = Rebate(10) }, new { referrals = 5, incentive = Rebate(25) } },
        }]);

        var counts = new List<int>();
        for (var i = 1; i <= 6; i++)
        {
            counts.Add((await Purchase(campaign, code, $"m{i}@example.net")).Rewards().Count);
        }

        Assert.Equal([0, 0, 1, 0, 1, 0], counts);
        var rewards = await _admin.RewardList($"campaignId={campaign}");
        Assert.Equal([10m, 25m], rewards.Select(r => (decimal)r!["incentive"]!["amount"]!));
        Assert.Equal([3, 5], rewards.Select(r => (int)r!["milestone"]!));
    }

    [Fact]
    public async Task A_milestone_on_invited_counts_sign_ups()
    {
        var (campaign, _, code) = await Setup([new
        {
            recipient = "advocate", trigger = "invited", kind = "milestone",
            tiers = new object[] { new { referrals = 2, incentive = Other("Sticker pack") } },
        }]);

        await _admin.Track(campaign, "signup", "i1@example.net", code);
        var second = await _admin.Track(campaign, "signup", "i2@example.net", code);

        Assert.Equal("Sticker pack", (string?)Assert.Single(second.Rewards())!["incentive"]!["description"]);
    }

    [Fact]
    public async Task A_goal_rewards_only_the_nth_conversion_which_reports_goal_complete()
    {
        var (campaign, _, code) = await Setup([new { recipient = "advocate", trigger = "converted", kind = "goal", goal = 3, incentive = Rebate(50) }]);

        var outcomes = new List<JsonObject>();
        for (var i = 1; i <= 4; i++)
        {
            outcomes.Add(await Purchase(campaign, code, $"g{i}@example.net"));
        }

        Assert.Equal([0, 0, 1, 0], outcomes.Select(o => o.Rewards().Count));
        Assert.Equal([false, false, true, false], outcomes.Select(o => (bool)o["conversion"]!["goalComplete"]!));
        var goalFlags = (await app.Messages(campaign)).Where(m => m.Type == "conversion").Select(m => (int)m.Data["goal_complete"]!);
        Assert.Equal([0, 0, 1, 0], goalFlags);
    }

    [Fact]
    public async Task A_custom_event_rule_rewards_once_per_friend()
    {
        var (campaign, _, code) = await Setup([new { recipient = "advocate", trigger = "event", @event = "subscription_started", kind = "standard", incentive = Rebate(15) }]);
        await _admin.Track(campaign, "signup", "sub@example.net", code);

        var first = await _admin.Track(campaign, "subscription_started", "sub@example.net");
        var repeat = await _admin.Track(campaign, "subscription_started", "sub@example.net");
        var other = await _admin.Track(campaign, "newsletter", "sub@example.net");

        Assert.Equal("event", (string?)Assert.Single(first.Rewards())!["trigger"]);
        Assert.Empty(repeat.Rewards());
        Assert.Empty(other.Rewards());
    }

    [Fact]
    public async Task Limit_per_month_blocks_the_sixth_reward_with_limit_reached_until_the_next_month()
    {
        var (campaign, advocateId, code) = await Setup([new
        {
            recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10), limits = new { perMonth = 5 },
        }]);

        var statuses = new List<string>();
        for (var i = 1; i <= 6; i++)
        {
            statuses.Add((string)(await Purchase(campaign, code, $"pm{i}@example.net")).Rewards()[0]!["status"]!);
        }
        var sixth = (await _admin.RewardList($"participantId={advocateId}&status=blocked")).Single()!;
        app.Clock.Advance(TimeSpan.FromDays(30)); // 2 November → 2 December
        var nextMonth = await Purchase(campaign, code, "pm7@example.net");

        Assert.Equal(["issued", "issued", "issued", "issued", "issued", "blocked"], statuses);
        Assert.Equal(BlockReason.LimitReached, (string?)sixth["reason"]);
        Assert.Equal("issued", (string?)nextMonth.Rewards()[0]!["status"]);
        var blocked = (await app.Messages(campaign)).Single(m => m.Type == "reward.blocked").Data;
        Assert.Equal("limit reached", (string?)blocked["reward"]!["reason"]);
    }

    [Fact]
    public async Task The_total_limit_holds_across_months()
    {
        var (campaign, _, code) = await Setup([new
        {
            recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10), limits = new { perMonth = 2, total = 3 },
        }]);

        var statuses = new List<string>();
        for (var i = 1; i <= 6; i++)
        {
            statuses.Add((string)(await Purchase(campaign, code, $"tl{i}@example.net")).Rewards()[0]!["status"]!);
            if (i == 3)
            {
                app.Clock.Advance(TimeSpan.FromDays(31));
            }
        }

        Assert.Equal(["issued", "issued", "blocked", "issued", "blocked", "blocked"], statuses);
    }

    [Fact]
    public async Task A_blocked_reward_gives_its_place_under_the_limit_back()
    {
        var (campaign, _, code) = await Setup([new
        {
            recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10), limits = new { total = 1 },
        }], new { approval = "manual" });
        var first = await Purchase(campaign, code, "gb1@example.net");
        await _admin.PostJson($"/api/v1/referrals/{(string)first["referral"]!["id"]!}/void", new { reason = "refund" });

        var second = await Purchase(campaign, code, "gb2@example.net");

        Assert.Equal("pending", (string?)second.Rewards()[0]!["status"]);
    }

    [Fact]
    public async Task A_coupon_incentive_is_blocked_with_the_allocators_reason_when_no_code_is_available()
    {
        var (campaign, _, code) = await Setup([new { recipient = "friend", trigger = "invited", kind = "standard", incentive = new { type = "discount_coupon", pool = "welcome10" } }]);
        await _admin.PutAsJsonAsync($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10", new { });

        var outcome = await _admin.Track(campaign, "signup", "coupon@example.net", code);

        var reward = Assert.Single(outcome.Rewards())!;
        Assert.Equal("blocked", (string?)reward["status"]);
        Assert.Equal("coupon pool 'welcome10' is empty", (string?)reward["reason"]);
        Assert.Equal("discount_coupon", (string?)reward["incentive"]!["type"]);
    }

    [Fact]
    public async Task A_coupon_incentive_hands_the_friend_a_code_from_the_pool()
    {
        var (campaign, _, code) = await Setup([new { recipient = "friend", trigger = "invited", kind = "standard", incentive = new { type = "discount_coupon", pool = "welcome10" } }]);
        await _admin.PostOk($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10/coupons", new { codes = new[] { "WELCOME-001" } }, System.Net.HttpStatusCode.OK);

        var outcome = await _admin.Track(campaign, "signup", "coupon-ok@example.net", code);

        var reward = Assert.Single(outcome.Rewards())!;
        Assert.Equal("issued", (string?)reward["status"]);
        Assert.Equal("WELCOME-001", (string?)reward["incentive"]!["couponCode"]);
    }

    [Fact]
    public async Task Coupon_cycling_found_by_the_fraud_checks_blocks_the_rewards_with_coupon_cycling()
    {
        var (campaign, _, code) = await Setup([new { recipient = "both", trigger = "converted", kind = "standard", incentive = Rebate(10) }]);
        app.Screening.Verdicts["cycler@example.net"] = new FraudVerdict(
            [new FraudFinding("couponCycling", FraudAction.Block, "the friend used the advocate's own coupon")]);

        var outcome = await Purchase(campaign, code, "cycler@example.net", properties: new { couponCode = "ANN-10" });

        Assert.Equal(2, outcome.Rewards().Count);
        Assert.All(outcome.Rewards(), r => Assert.Equal(BlockReason.CouponCycling, (string?)r!["reason"]));
        Assert.Contains(app.Screening.Seen, s => s.Email == "cycler@example.net" && s.CouponCode == "ANN-10");
        Assert.Equal("fail", (string?)outcome["conversion"]!["status"]);
    }

    [Fact]
    public async Task A_purchase_below_the_rules_minimum_is_a_criteria_mismatch()
    {
        var (campaign, _, code) = await Setup([new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10), minPurchaseValue = 100 }]);

        var small = await Purchase(campaign, code, "small@example.net", value: 99.99m);
        var large = await Purchase(campaign, code, "large@example.net", value: 100);

        Assert.Equal(BlockReason.CriteriaMismatch, (string?)small.Rewards()[0]!["reason"]);
        Assert.Equal("issued", (string?)large.Rewards()[0]!["status"]);
    }

    [Fact]
    public async Task Auto_approved_referrals_earn_nothing_when_the_campaign_disallows_it_but_a_manual_approval_pays()
    {
        var rules = new object[] { new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) } };
        var (auto, _, autoCode) = await Setup(rules, new { allowRewardsOnAutoApproved = false });
        var (manual, _, manualCode) = await Setup(rules, new { allowRewardsOnAutoApproved = false, approval = "manual" });

        var autoOutcome = await Purchase(auto, autoCode, "aa1@example.net");
        var manualOutcome = await Purchase(manual, manualCode, "aa2@example.net");
        var approved = await _admin.PostJson($"/api/v1/referrals/{(string)manualOutcome["referral"]!["id"]!}/approve", null);

        Assert.Equal(BlockReason.AutoApprovedNotAllowed, (string?)autoOutcome.Rewards()[0]!["reason"]);
        Assert.Equal("issued", (string?)approved["rewards"]![0]!["status"]);
    }

    [Fact]
    public async Task Events_of_a_referred_friend_while_the_campaign_is_paused_earn_share_inactive()
    {
        var (campaign, _, code) = await Setup([new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) }]);
        await _admin.Track(campaign, "signup", "paused@example.net", code);
        await _admin.PostAsync($"/api/v1/campaigns/{campaign}/pause", null);

        var outcome = await _admin.Track(campaign, "purchase", "paused@example.net", orderId: "P-1", purchaseValue: 10);

        Assert.Equal(BlockReason.ShareInactive, (string?)outcome.Rewards()[0]!["reason"]);
    }

    [Fact]
    public async Task Rewards_are_filtered_and_an_issued_one_is_marked_paid_once()
    {
        var (campaign, advocateId, code) = await Setup([new
        {
            recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10), limits = new { total = 1 },
        }]);
        await Purchase(campaign, code, "pay1@example.net");
        await Purchase(campaign, code, "pay2@example.net");
        var issued = (await _admin.RewardList($"campaignId={campaign}&status=issued")).Single()!;
        var blocked = (await _admin.RewardList($"campaignId={campaign}&status=blocked")).Single()!;

        var paid = await _admin.PostJson($"/api/v1/rewards/{(string)issued["id"]!}/paid", null);
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var paidAgain = await _admin.PostJson($"/api/v1/rewards/{(string)issued["id"]!}/paid", null);
        var notPayable = await _admin.PostAsync($"/api/v1/rewards/{(string)blocked["id"]!}/paid", null);

        Assert.Equal(paid["paidAt"]!.ToString(), paidAgain["paidAt"]!.ToString());
        Assert.Equal(HttpStatusCode.Conflict, notPayable.StatusCode);
        Assert.Single(await _admin.RewardList($"participantId={advocateId}&paid=true"));
        Assert.Single(await _admin.RewardList($"participantId={advocateId}&paid=false"));
        var bad = await _admin.GetAsync("/api/v1/rewards?status=paid-ish");
        await bad.AssertValidationProblem("status");
        Assert.Equal(HttpStatusCode.NotFound, (await _admin.PostAsync("/api/v1/rewards/rwd_nope/paid", null)).StatusCode);
    }
}
