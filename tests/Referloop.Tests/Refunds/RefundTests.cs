using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Referloop.Tests.InboundHooks;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Storage;
using Referloop.Tracking;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Refunds;

/// <summary>Refunds and chargebacks through the API and the track hook: what stops counting, what is taken back, what is sent.</summary>
public class RefundTests(EngineApp app) : IClassFixture<EngineApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private Task<JsonObject> Refund(string campaign, string orderId, string type = "refund", string? idempotencyKey = null,
        HttpStatusCode expected = HttpStatusCode.Accepted)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events") { Content = JsonContent.Create(new { campaignId = campaign, type, orderId }) };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        return Send(request, expected);
    }

    private async Task<JsonObject> Send(HttpRequestMessage request, HttpStatusCode expected)
    {
        var response = await _admin.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"answered {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    [PostgresFact]
    public async Task A_payment_asked_for_while_a_refund_of_its_purchase_is_decided_waits_for_it_and_is_refused()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        var (_, code) = await _admin.Advocate(campaign);
        var purchase = await _admin.Track(campaign, "purchase", "race-bob@example.net", code, orderId: "R-RACE", purchaseValue: 40);
        var referralId = (string)purchase["referral"]!["id"]!;
        var rewardId = (string)purchase.Rewards()[0]!["id"]!;

        // Another transaction holds the referral's row: the refund and the payment both wait for it, then go in turn.
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var holder = await db.Database.BeginTransactionAsync();
        await ReferralStore.LockReferralsAsync(db, [referralId], CancellationToken.None);
        Task<int> WaitingOnLocks() => app.WithDb(d => d.Database.SqlQuery<int>($"""
            SELECT count(*)::int AS "Value" FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
            """).SingleAsync());
        var refund = Refund(campaign, "R-RACE");
        await Eventually(async () => await WaitingOnLocks() == 1, "the refund waits for the referral");
        var payment = _admin.PostAsJsonAsync($"/api/v1/rewards/{rewardId}/paid", new { });
        await Eventually(async () => await WaitingOnLocks() == 2, "the payment waits for the referral too");
        await holder.RollbackAsync();
        await holder.DisposeAsync();
        await refund;
        using var paid = await payment;

        // The refund, first in line, revoked the unpaid reward; the payment then finds nothing to pay.
        Assert.Equal(HttpStatusCode.Conflict, paid.StatusCode);
        var stored = await app.WithDb(d => d.Rewards.AsNoTracking().SingleAsync(r => r.Id == rewardId));
        Assert.Equal(RewardStatus.Revoked, stored.Status);
        Assert.Null(stored.PaidAt);
    }

    [Fact]
    public async Task A_refund_voids_the_referral_revokes_unpaid_rewards_and_asks_to_claw_back_paid_ones()
    {
        var rules = new object[]
        {
            new { recipient = "both", trigger = "converted", kind = "standard", incentive = Rebate(10) },
        };
        var (campaign, _) = await _admin.Campaign(rules);
        var (_, code) = await _admin.Advocate(campaign);
        var purchase = await _admin.Track(campaign, "purchase", "bob@example.net", code, orderId: "R-1", purchaseValue: 40);
        var referralId = (string)purchase["referral"]!["id"]!;
        var advocateReward = (string)purchase.Rewards().Single(r => (string)r!["recipient"]! == "advocate")!["id"]!;
        var friendReward = (string)purchase.Rewards().Single(r => (string)r!["recipient"]! == "friend")!["id"]!;
        await _admin.PostJson($"/api/v1/rewards/{advocateReward}/paid", new { });

        var refund = await Refund(campaign, "R-1");

        Assert.False((bool)refund["duplicate"]!);
        Assert.Equal("voided", (string?)refund["refund"]!["effect"]);
        Assert.Equal((string?)purchase["eventId"], (string?)refund["refund"]!["purchaseEventId"]);
        Assert.Equal(("voided", "refunded"), ((string?)refund["referral"]!["status"], (string?)refund["referral"]!["reason"]));
        var referral = await _admin.GetOk($"/api/v1/referrals/{referralId}");
        Assert.Equal(("voided", "refunded"), ((string?)referral["status"], (string?)referral["reason"]));
        Assert.Equal("clawback_required", (string?)(await _admin.GetOk($"/api/v1/rewards/{advocateReward}"))["status"]);
        Assert.Equal("revoked", (string?)(await _admin.GetOk($"/api/v1/rewards/{friendReward}"))["status"]);
        Assert.Single(await _admin.RewardList($"campaignId={campaign}&status=revoked"));

        var messages = await app.Messages(campaign);
        var voided = messages.Single(m => m.Type == "referral.voided");
        Assert.Equal(0, (int)voided.Data["advocate"]!["conversions"]!);
        Assert.Equal(("refund", "R-1"), ((string?)voided.Data["event"]!["type"], (string?)voided.Data["event"]!["orderId"]));
        var revoked = messages.Where(m => m.Type == "reward.revoked").Select(m => (string)m.Data["reward"]!["status"]!).Order().ToArray();
        Assert.Equal(["clawback_required", "revoked"], revoked);
        Assert.Equal("fail", (string?)messages.Last(m => m.Type == "conversion").Data["conversion"]);
    }

    [Fact]
    public async Task Refunding_the_same_order_twice_or_with_the_same_key_answers_the_first_outcome_and_changes_nothing_more()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        var (_, code) = await _admin.Advocate(campaign);
        await _admin.Track(campaign, "purchase", "bob@example.net", code, orderId: "I-1", purchaseValue: 40);

        var first = await Refund(campaign, "I-1", idempotencyKey: "refund-I-1");
        var again = await Refund(campaign, "I-1");
        var sameKey = await Refund(campaign, "I-1", idempotencyKey: "refund-I-1");

        foreach (var repeat in new[] { again, sameKey })
        {
            Assert.True((bool)repeat["duplicate"]!);
            Assert.Equal((string?)first["eventId"], (string?)repeat["eventId"]);
            Assert.Equal("voided", (string?)repeat["refund"]!["effect"]);
        }
        var messages = await app.Messages(campaign);
        Assert.Single(messages, m => m.Type == "referral.voided");
        Assert.Single(messages, m => m.Type == "reward.revoked");
        Assert.Equal(1, await app.WithDb(db => Task.FromResult(db.Events.Count(e => e.CampaignId == campaign && e.Type == "refund"))));
    }

    [Fact]
    public async Task Another_purchase_of_the_friend_keeps_the_referral_approved_until_it_is_refunded_too()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        var (_, code) = await _admin.Advocate(campaign);
        var first = await _admin.Track(campaign, "purchase", "bob@example.net", code, orderId: "K-1", purchaseValue: 40);
        await _admin.Track(campaign, "purchase", "bob@example.net", orderId: "K-2", purchaseValue: 15);
        var reward = (string)first.Rewards()[0]!["id"]!;

        var kept = await Refund(campaign, "K-1");

        Assert.Equal(("kept", "approved"), ((string?)kept["refund"]!["effect"], (string?)kept["referral"]!["status"]));
        Assert.Equal("issued", (string?)(await _admin.GetOk($"/api/v1/rewards/{reward}"))["status"]);
        Assert.DoesNotContain(await app.Messages(campaign), m => m.Type is "referral.voided" or "reward.revoked");

        var voided = await Refund(campaign, "K-2", type: "chargeback");

        Assert.Equal(("voided", "chargeback"), ((string?)voided["referral"]!["status"], (string?)voided["referral"]!["reason"]));
        Assert.Equal("revoked", (string?)(await _admin.GetOk($"/api/v1/rewards/{reward}"))["status"]);
    }

    [Fact]
    public async Task The_void_policy_voids_on_any_refunded_purchase()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars, new { refunds = "void" });
        Assert.Equal("void", (string?)(await _admin.GetOk($"/api/v1/campaigns/{campaign}"))["refunds"]);
        var (_, code) = await _admin.Advocate(campaign);
        await _admin.Track(campaign, "purchase", "bob@example.net", code, orderId: "P-1", purchaseValue: 40);
        await _admin.Track(campaign, "purchase", "bob@example.net", orderId: "P-2", purchaseValue: 15);

        var refund = await Refund(campaign, "P-2");

        Assert.Equal("voided", (string?)refund["referral"]!["status"]);
    }

    [Fact]
    public async Task Counts_follow_a_refund_so_a_goal_is_no_longer_reached_and_is_earned_again_by_the_next_conversion()
    {
        var rules = new object[]
        {
            new { recipient = "advocate", trigger = "converted", kind = "goal", goal = 2, incentive = Other("Goal hoodie") },
            new { recipient = "advocate", trigger = "converted", kind = "milestone", tiers = new[] { new { referrals = 2, incentive = Rebate(25) } } },
        };
        var (campaign, _) = await _admin.Campaign(rules);
        var (_, code) = await _admin.Advocate(campaign);
        await _admin.Track(campaign, "purchase", "one@example.net", code, orderId: "G-1", purchaseValue: 10);
        var second = await _admin.Track(campaign, "purchase", "two@example.net", code, orderId: "G-2", purchaseValue: 10);
        Assert.True((bool)second["conversion"]!["goalComplete"]!);
        Assert.Equal(2, second.Rewards().Count);

        var refund = await Refund(campaign, "G-1");

        Assert.Equal(1, (int)refund["conversion"]!["referrerConverts"]!);
        Assert.Equal(["revoked", "revoked"], refund.Rewards().Select(r => (string)r!["status"]!).ToArray());
        Assert.Empty(await _admin.RewardList($"campaignId={campaign}&status=issued"));
        var third = await _admin.Track(campaign, "purchase", "three@example.net", code, orderId: "G-3", purchaseValue: 10);
        Assert.Equal(2, (int)third["conversion"]!["referrerConverts"]!);
        Assert.True((bool)third["conversion"]!["goalComplete"]!);
        Assert.Equal(["issued", "issued"], third.Rewards().Select(r => (string)r!["status"]!).ToArray());
    }

    [Fact]
    public async Task A_refund_queued_with_other_events_counts_before_the_events_that_arrived_after_it()
    {
        var rules = new object[] { new { recipient = "advocate", trigger = "converted", kind = "goal", goal = 2, incentive = Other("Goal hoodie") } };
        var (campaignId, _) = await _admin.Campaign(rules);
        var (_, code) = await _admin.Advocate(campaignId);
        await _admin.Track(campaignId, "purchase", "one@example.net", code, orderId: "B-1", purchaseValue: 10);
        await _admin.Track(campaignId, "purchase", "two@example.net", code, orderId: "B-2", purchaseValue: 10);

        // Queued together, in arrival order: a fourth friend's sign-up, the refund of B-1, then a third friend's purchase,
        // which earns the goal again. The refund is decided on its own, between the events around it.
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var campaign = await db.Campaigns.AsNoTracking().SingleAsync(c => c.Id == campaignId);
        var ingest = app.Services.GetRequiredService<EventIngest>();
        var outcomes = await Task.WhenAll(
            ingest.TrackAsync(new TrackRequest(campaign, new TrackEvent { Type = "signup", Email = "four@example.net", ReferralCode = code },
                null, null, null, EventSource.Server)),
            ingest.TrackAsync(new TrackRequest(campaign, new TrackEvent { Type = "refund", OrderId = "B-1" }, null, null, null, EventSource.Server)),
            ingest.TrackAsync(new TrackRequest(campaign, new TrackEvent { Type = "purchase", Email = "three@example.net", ReferralCode = code, OrderId = "B-3", PurchaseValue = 10 },
                null, null, null, EventSource.Server)));

        Assert.True(outcomes[0].Attributed);
        Assert.Equal(1, outcomes[1].Conversion!.ReferrerConverts);
        Assert.Equal(2, outcomes[2].Conversion!.ReferrerConverts);
        Assert.True(outcomes[2].Conversion!.GoalComplete);
        Assert.Equal(["issued"], outcomes[2].Rewards.Select(r => r.Status).ToArray());
    }

    [Fact]
    public async Task An_unknown_order_is_refused_with_a_problem_and_nothing_is_recorded()
    {
        var (campaign, key) = await _admin.Campaign(AdvocateTenDollars);

        var unknown = await _admin.PostAsJsonAsync("/api/v1/events", new { campaignId = campaign, type = "refund", orderId = "NOPE-1" });
        var missing = await _admin.PostAsJsonAsync("/api/v1/events", new { campaignId = campaign, type = "refund" });
        var browser = app.CreateAnonymousClient();
        browser.DefaultRequestHeaders.Add("X-Referloop-Key", key);
        var fromBrowser = await browser.PostAsJsonAsync("/api/v1/events", new { type = "refund", orderId = "NOPE-1", email = "bob@example.net" });

        Assert.Equal(HttpStatusCode.UnprocessableEntity, unknown.StatusCode);
        var problem = await unknown.ReadJson();
        Assert.Contains("NOPE-1", (string)problem["errors"]!["orderId"]![0]!);
        await missing.AssertValidationProblem("orderId");
        Assert.Equal(HttpStatusCode.Forbidden, fromBrowser.StatusCode);
        Assert.Equal(0, await app.WithDb(db => Task.FromResult(db.Events.Count(e => e.CampaignId == campaign))));
    }

    [Fact]
    public async Task The_track_hook_takes_refunds_like_the_api()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        var (_, code) = await _admin.Advocate(campaign);
        await _admin.Track(campaign, "purchase", "bob@example.net", code, orderId: "H-1", purchaseValue: 40);
        var hook = await _admin.CreateHook(campaign, "track");
        var sender = app.CreateAnonymousClient();

        var refunded = await sender.PostForm(hook.Path, Hooks.Form(("type", "refund"), ("orderID", "H-1")));
        var unknown = await sender.PostJson(hook.Path, """{"type":"refund","orderId":"H-404"}""");

        Assert.Equal(HttpStatusCode.OK, refunded.StatusCode);
        Assert.Equal("voided", (string?)(await refunded.ReadJson())["result"]!["refund"]!["effect"]);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, unknown.StatusCode);
        Assert.Contains(await app.Messages(campaign), m => m.Type == "reward.revoked");
    }
}
