using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;

namespace Referloop.Tests.Rewards;

/// <summary>A scripted engine whose outbound calls may reach the create-coupon receivers on loopback.</summary>
public sealed class CouponRequestsApp : EngineApp
{
    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["Webhooks:AllowPrivateNetworks"] = "true";
            return settings;
        }
    }

    public CouponRequests Requests => Services.GetRequiredService<CouponRequests>();
}

/// <summary>
/// The create-coupon URL is asked after the event's transaction has committed: the event is answered at once with the
/// reward pending (<c>awaiting_coupon</c>), and the code follows through the reward webhook and the API.
/// </summary>
public class CouponRequestsTests(CouponRequestsApp app) : IClassFixture<CouponRequestsApp>, IAsyncLifetime
{
    private readonly HttpClient _admin = app.CreateAdminClient();
    private Receiver _merchant = null!;
    private int _minted;

    public async Task InitializeAsync()
    {
        app.Listeners.Listening = false;
        _merchant = await Receiver.StartAsync();
        _merchant.Respond = (_, _) => new Reply(Body: $$"""{"code": "MINTED-{{Interlocked.Increment(ref _minted):000}}"}""");
    }

    public async Task DisposeAsync() => await _merchant.DisposeAsync();

    private static object[] CouponRule(string recipient = "friend", string trigger = "invited") =>
        [new { recipient, trigger, kind = "standard", incentive = new { type = "discount_coupon", pool = "welcome" } }];

    /// <summary>A campaign whose pool "welcome" has no uploaded code and asks <see cref="_merchant"/>.</summary>
    private async Task<(string Campaign, string Code)> CampaignAskingTheMerchant(object[] rules)
    {
        var (campaign, _) = await _admin.Campaign(rules);
        (await _admin.PutAsJsonAsync($"/api/v1/campaigns/{campaign}/coupon-pools/welcome", new { createCouponUrl = _merchant.Url("/coupons") }))
            .EnsureStatus(HttpStatusCode.Created);
        var (_, code) = await _admin.Advocate(campaign, email: $"ann-{Guid.NewGuid():N}@example.com");
        return (campaign, code);
    }

    private Task<JsonObject> Reward(string id) => _admin.GetOk($"/api/v1/rewards/{id}");

    private Task<Reward> Stored(string id) => app.WithDb(db => db.Rewards.AsNoTracking().FirstAsync(r => r.Id == id));

    [Fact]
    public async Task A_slow_create_coupon_url_holds_neither_the_events_answer_nor_the_writer()
    {
        var (campaign, code) = await CampaignAskingTheMerchant(CouponRule());
        var (rebates, rebateCode) = await CampaignAskingTheMerchant([new
        {
            recipient = "advocate", trigger = "converted", kind = "standard", incentive = EngineKit.Rebate(5),
        }]);
        var asked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answered = false;
        _merchant.Respond = (_, _) =>
        {
            asked.TrySetResult();
            return new Reply(Body: """{"code": "SLOW-001"}""", Delay: TimeSpan.FromSeconds(2));
        };
        _merchant.Settled = _ => Volatile.Write(ref answered, true);

        var outcome = await _admin.Track(campaign, "signup", "slow-friend@example.net", code);

        var pending = Assert.Single(outcome.Rewards())!;
        Assert.Equal("pending", (string?)pending["status"]);
        Assert.Equal("awaiting_coupon", (string?)pending["pendingReason"]);
        Assert.Null(pending["incentive"]!["couponCode"]);
        var rewardId = (string)pending["id"]!;

        // While the merchant sleeps on its answer, another event is ingested and committed (on SQLite: the writer is free).
        await asked.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var other = await _admin.Track(rebates, "purchase", "meanwhile@example.net", rebateCode, orderId: "ORD-MEANWHILE", purchaseValue: 50);
        Assert.False(Volatile.Read(ref answered), "the second event waited for the create-coupon URL");
        Assert.Equal("issued", (string?)Assert.Single(other.Rewards())!["status"]);
        Assert.Equal("pending", (string?)(await Reward(rewardId))["status"]);

        await EngineKit.Eventually(async () => (string?)(await Reward(rewardId))["status"] == "issued", "the reward is issued");
        var issued = await Reward(rewardId);
        Assert.Equal("SLOW-001", (string?)issued["incentive"]!["couponCode"]);
        Assert.Null(issued["pendingReason"]);
        var message = Assert.Single(await app.Messages(campaign), m => m.Type == "reward.issued");
        Assert.Equal(rewardId, (string?)message.Data["reward"]!["id"]);
        Assert.Equal("SLOW-001", (string?)message.Data["reward"]!["incentive"]!["couponCode"]);
        var request = JsonNode.Parse(Assert.Single(_merchant.Requests).Body)!;
        Assert.Equal(rewardId, (string?)request["rewardId"]);
    }

    [Fact]
    public async Task A_create_coupon_url_that_keeps_failing_is_retried_then_the_reward_is_blocked_with_its_answer()
    {
        var (campaign, code) = await CampaignAskingTheMerchant(CouponRule());
        _merchant.Respond = (_, _) => new Reply(500, "down");

        var rewardId = (string)(await _admin.Track(campaign, "signup", "retried-friend@example.net", code)).Rewards()[0]!["id"]!;

        for (var attempt = 1; attempt < 4; attempt++)
        {
            var failed = attempt;
            // Scheduled at the backoff, not merely taken (a taken reward is due again when its lease runs out).
            await EngineKit.Eventually(async () => await Stored(rewardId) is { CouponAttempts: var n, CouponDueAt: { } due }
                && n == failed && due - app.Clock.GetUtcNow() == CouponRequests.Backoff(failed),
                $"attempt {failed} failed and the next is scheduled");
            Assert.Equal("awaiting_coupon", (string?)(await Reward(rewardId))["pendingReason"]);
            app.Clock.Advance(CouponRequests.Backoff(failed));
            app.Requests.Wake();
        }

        await EngineKit.Eventually(async () => (string?)(await Reward(rewardId))["status"] == "blocked", "the reward is blocked");
        var blocked = await Reward(rewardId);
        Assert.Equal("coupon pool 'welcome' is empty and the create-coupon URL answered 500", (string?)blocked["reason"]);
        Assert.Null(blocked["pendingReason"]);
        Assert.Equal(4, _merchant.Requests.Count);
        Assert.All(_merchant.Requests, r => Assert.Equal(rewardId, (string?)JsonNode.Parse(r.Body)!["rewardId"]));
        var message = Assert.Single(await app.Messages(campaign), m => m.Type == "reward.blocked");
        Assert.Equal("coupon pool 'welcome' is empty and the create-coupon URL answered 500", (string?)message.Data["reward"]!["reason"]);
    }

    [Fact]
    public async Task An_answer_that_breaks_off_in_its_body_is_a_failed_attempt_asked_again_at_the_backoff()
    {
        await using var merchant = RawHttpServer.CutShort("{\"code\"");
        var (campaign, _) = await _admin.Campaign(CouponRule());
        (await _admin.PutAsJsonAsync($"/api/v1/campaigns/{campaign}/coupon-pools/welcome",
            new { createCouponUrl = merchant.Url("/coupons") }))
            .EnsureStatus(HttpStatusCode.Created);
        var (_, code) = await _admin.Advocate(campaign, email: "cut-ann@example.com");

        var rewardId = (string)(await _admin.Track(campaign, "signup", "cut-friend@example.net", code)).Rewards()[0]!["id"]!;

        await EngineKit.Eventually(async () => await Stored(rewardId) is { CouponAttempts: 1, CouponDueAt: { } due }
            && due - app.Clock.GetUtcNow() == CouponRequests.Backoff(1), "the attempt failed and the next is scheduled");
        Assert.Equal("awaiting_coupon", (string?)(await Reward(rewardId))["pendingReason"]);
    }

    [Fact]
    public async Task A_refusal_or_an_unusable_answer_blocks_at_once()
    {
        var (campaign, code) = await CampaignAskingTheMerchant(CouponRule());
        _merchant.Respond = (_, _) => new Reply(404, "no");
        var refused = (string)(await _admin.Track(campaign, "signup", "refused-friend@example.net", code)).Rewards()[0]!["id"]!;
        await EngineKit.Eventually(async () => (string?)(await Reward(refused))["status"] == "blocked", "the refused reward is blocked");

        _merchant.Respond = (_, _) => new Reply(Body: """{"coupon": "X"}""");
        var unusable = (string)(await _admin.Track(campaign, "signup", "unusable-friend@example.net", code)).Rewards()[0]!["id"]!;
        await EngineKit.Eventually(async () => (string?)(await Reward(unusable))["status"] == "blocked", "the unusable reward is blocked");

        Assert.Equal("coupon pool 'welcome' is empty and the create-coupon URL answered 404", (string?)(await Reward(refused))["reason"]);
        Assert.StartsWith("coupon pool 'welcome' is empty and the create-coupon URL answered 200 without a usable code",
            (string?)(await Reward(unusable))["reason"]);
        Assert.Equal(2, _merchant.Requests.Count);
    }

    [Fact]
    public async Task A_coupon_that_arrives_before_the_approval_webhook_is_acknowledged_waits_in_approved()
    {
        app.Listeners.Listening = true;
        var (campaign, code) = await CampaignAskingTheMerchant(CouponRule("advocate", "converted"));

        var outcome = await _admin.Track(campaign, "purchase", "approved-friend@example.net", code, orderId: "ORD-APPROVED", purchaseValue: 80);

        Assert.Equal("approved", (string?)outcome["referral"]!["status"]);
        var rewardId = (string)outcome.Rewards()[0]!["id"]!;
        Assert.Equal("awaiting_coupon", (string?)outcome.Rewards()[0]!["pendingReason"]);
        await EngineKit.Eventually(async () => (string?)(await Reward(rewardId))["status"] == "approved", "the reward has its code");
        Assert.StartsWith("MINTED-", (string?)(await Reward(rewardId))["incentive"]!["couponCode"]);
        Assert.DoesNotContain(await app.Messages(campaign), m => m.Type == "reward.issued");

        var referral = (string)outcome["referral"]!["id"]!;
        await _admin.PostJson($"/api/v1/referrals/{referral}/release-rewards", null);

        Assert.Equal("issued", (string?)(await Reward(rewardId))["status"]);
        Assert.Single(await app.Messages(campaign), m => m.Type == "reward.issued");
    }

    [Fact]
    public async Task A_referral_voided_while_its_coupon_is_asked_for_keeps_the_reward_blocked()
    {
        var (campaign, code) = await CampaignAskingTheMerchant(CouponRule());
        var asked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _merchant.Respond = (_, _) =>
        {
            asked.TrySetResult();
            return new Reply(Body: """{"code": "LATE-001"}""", Delay: TimeSpan.FromMilliseconds(500));
        };
        var outcome = await _admin.Track(campaign, "signup", "voided-friend@example.net", code);
        var rewardId = (string)outcome.Rewards()[0]!["id"]!;
        await asked.Task.WaitAsync(TimeSpan.FromSeconds(10));

        await _admin.PostJson($"/api/v1/referrals/{(string)outcome["referral"]!["id"]!}/void", new { reason = "test order" });
        await EngineKit.Eventually(async () => (await Stored(rewardId)).CouponDueAt is null && _merchant.Requests.Count == 1,
            "the merchant answered");
        await Task.Delay(200);

        var reward = await Reward(rewardId);
        Assert.Equal("blocked", (string?)reward["status"]);
        Assert.Equal("referral voided: test order", (string?)reward["reason"]);
        Assert.DoesNotContain(await app.Messages(campaign), m => m.Type == "reward.issued");
    }

    [Fact]
    public async Task A_reward_is_asked_for_by_one_instance_at_a_time()
    {
        var (campaign, code) = await CampaignAskingTheMerchant(CouponRule());
        _merchant.Respond = (_, _) => new Reply(Body: $$"""{"code": "ONCE-{{Interlocked.Increment(ref _minted):000}}"}""",
            Delay: TimeSpan.FromMilliseconds(300));
        var rewardId = (string)(await _admin.Track(campaign, "signup", "once-friend@example.net", code)).Rewards()[0]!["id"]!;

        // The service woken by the event and eight more runs (as other instances would) all try to take it.
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => app.Requests.RunOnceAsync(CancellationToken.None))));
        await EngineKit.Eventually(async () => (string?)(await Reward(rewardId))["status"] == "issued", "the reward is issued");

        Assert.Single(_merchant.Requests);
        Assert.Equal(1, (await Stored(rewardId)).CouponAttempts);
    }
}
