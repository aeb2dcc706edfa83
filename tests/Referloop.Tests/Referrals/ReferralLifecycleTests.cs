using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Rewards;
using Referloop.Tests.Support;
using Referloop.Webhooks;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Referrals;

public class ReferralLifecycleTests(EngineApp app) : IClassFixture<EngineApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task A_participant_added_before_and_then_referred_becomes_invited_and_keeps_what_was_stored()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        var (annId, annCode) = await _admin.Advocate(campaign, "added-ann@example.com");
        var (carolId, _) = await _admin.Advocate(campaign, "added-carol@example.net", name: "Carol Stored", customValue: "crm-7");

        var outcome = await _admin.Track(campaign, "signup", "added-carol@example.net", annCode, name: "Carol Reported");

        Assert.Equal(annId, (string?)outcome["referral"]!["advocateId"]);
        var carol = await _admin.GetOk($"/api/v1/campaigns/{campaign}/participants/{carolId}");
        Assert.Equal(annId, (string?)carol["referredBy"]);
        Assert.Contains("invited", carol["roles"]!.AsArray().Select(r => (string?)r));
        Assert.Equal("Carol Stored", (string?)carol["name"]);
        Assert.Equal("crm-7", (string?)carol["customValue"]);
    }

    [Fact]
    public async Task Manual_approval_keeps_a_purchase_qualified_until_an_admin_approves_it()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars, new { approval = "manual" });
        var (_, code) = await _admin.Advocate(campaign);

        var outcome = await _admin.Track(campaign, "purchase", "bob@example.net", code, orderId: "M-1", purchaseValue: 40);
        var referralId = (string)outcome["referral"]!["id"]!;

        Assert.Equal("qualified", (string?)outcome["referral"]!["status"]);
        Assert.Equal("pending", (string?)outcome.Rewards()[0]!["status"]);
        Assert.Equal("pending", (string?)outcome["conversion"]!["status"]);

        app.Clock.Advance(TimeSpan.FromHours(2));
        var approved = await _admin.PostJson($"/api/v1/referrals/{referralId}/approve", new { reason = "checked the order" });

        Assert.Equal("approved", (string?)approved["status"]);
        Assert.False((bool)approved["autoApproved"]!);
        Assert.Equal("checked the order", (string?)approved["reason"]);
        Assert.Equal("issued", (string?)approved["rewards"]![0]!["status"]);
        var history = approved["history"]!.AsArray();
        Assert.Equal(["pending", "qualified", "approved"], history.Select(h => (string)h!["to"]!));
        Assert.Equal("purchase M-1", (string?)history[1]!["reason"]);
        Assert.Equal("checked the order", (string?)history[2]!["reason"]);
        Assert.Equal(app.Clock.GetUtcNow(), (DateTimeOffset)history[2]!["at"]!);
        var conversions = (await app.Messages(campaign)).Where(m => m.Type == "conversion").Select(m => (string)m.Data["conversion"]!);
        Assert.Equal(["pending", "success"], conversions);
    }

    [Fact]
    public async Task Voiding_blocks_the_rewards_not_yet_issued_with_the_reason()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars, new { approval = "manual" });
        var (_, code) = await _admin.Advocate(campaign);
        var outcome = await _admin.Track(campaign, "purchase", "bob@example.net", code, orderId: "V-1", purchaseValue: 40);
        var referralId = (string)outcome["referral"]!["id"]!;

        var voided = await _admin.PostJson($"/api/v1/referrals/{referralId}/void", new { reason = "chargeback" });

        Assert.Equal("voided", (string?)voided["status"]);
        Assert.Equal("chargeback", (string?)voided["reason"]);
        Assert.Equal("blocked", (string?)voided["rewards"]![0]!["status"]);
        Assert.Equal("referral voided: chargeback", (string?)voided["rewards"]![0]!["reason"]);
        var again = await _admin.PostAsJsonAsync($"/api/v1/referrals/{referralId}/approve", new { });
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        var types = (await app.Messages(campaign)).Select(m => m.Type).ToList();
        Assert.Contains("referral.voided", types);
        Assert.Contains("reward.blocked", types);
        Assert.Equal("fail", (await app.Messages(campaign)).Last(m => m.Type == "conversion").Data["conversion"]!.ToString());

        var noReason = await _admin.PostAsJsonAsync($"/api/v1/referrals/{referralId}/void", new { });
        await noReason.AssertValidationProblem("reason");
        var unknown = await _admin.PostAsJsonAsync("/api/v1/referrals/ref_nope/void", new { reason = "x" });
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task A_signed_up_friend_is_qualified_by_their_unique_code()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        var (_, code) = await _admin.Advocate(campaign);
        var signup = await _admin.Track(campaign, "signup", "cleo@example.net", code, name: "Cleo");
        var friendId = (string)signup["referral"]!["friendId"]!;
        var friend = await _admin.GetOk($"/api/v1/campaigns/{campaign}/participants/{friendId}");
        Assert.Equal(["invited"], friend["roles"]!.AsArray().Select(r => (string)r!));
        Assert.Equal("pending", (string?)signup["referral"]!["status"]);

        var qualified = await _admin.PostJson("/api/v1/referrals/qualify", new { code = (string)friend["code"]! });

        Assert.Equal("approved", (string?)qualified["status"]);
        Assert.True((bool)qualified["autoApproved"]!);
        Assert.Equal("qualified by the friend's code", (string?)qualified["history"]![1]!["reason"]);
        Assert.Equal("issued", (string?)qualified["rewards"]![0]!["status"]);
        var missing = await _admin.PostAsJsonAsync("/api/v1/referrals/qualify", new { code = "nobody12" });
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task The_holding_period_ends_with_auto_approval_when_the_clock_passes_it()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars, new { holdingPeriodDays = 7 });
        var (_, code) = await _admin.Advocate(campaign);
        var outcome = await _admin.Track(campaign, "purchase", "hold@example.net", code, orderId: "H-1", purchaseValue: 20);
        var referralId = (string)outcome["referral"]!["id"]!;
        Assert.Equal("qualified", (string?)outcome["referral"]!["status"]);

        app.Clock.Advance(TimeSpan.FromDays(6));
        await Task.Delay(300);
        Assert.Equal("qualified", (string?)(await _admin.GetOk($"/api/v1/referrals/{referralId}"))["status"]);

        app.Clock.Advance(TimeSpan.FromDays(1));
        await Eventually(async () => (string?)(await _admin.GetOk($"/api/v1/referrals/{referralId}"))["status"] == "approved",
            "the auto-approval service approved the referral");
        var referral = await _admin.GetOk($"/api/v1/referrals/{referralId}");
        Assert.True((bool)referral["autoApproved"]!);
        Assert.Equal("holding period of 7 days ended", (string?)referral["reason"]);
        Assert.Equal("issued", (string?)referral["rewards"]![0]!["status"]);
    }

    [Fact]
    public async Task A_blocking_fraud_verdict_voids_the_referral_with_its_findings_and_blocks_the_rewards()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        var (_, code) = await _admin.Advocate(campaign);
        app.Screening.Verdicts["mallory@example.net"] = new FraudVerdict(
            [new FraudFinding("sameIp", FraudAction.Block, "friend and advocate share IP 198.51.100.9")]);

        var outcome = await _admin.Track(campaign, "purchase", "mallory@example.net", code, orderId: "F-1", purchaseValue: 20);

        Assert.Equal("voided", (string?)outcome["referral"]!["status"]);
        Assert.Contains("sameIp", (string?)outcome["referral"]!["reason"]);
        var reward = Assert.Single(outcome.Rewards())!;
        Assert.Equal("blocked", (string?)reward["status"]);
        Assert.Equal(BlockReason.FraudCheckFailed, (string?)reward["reason"]);
        var referral = await _admin.GetOk($"/api/v1/referrals/{(string)outcome["referral"]!["id"]!}");
        var finding = Assert.Single(referral["findings"]!.AsArray())!;
        Assert.Equal("sameIp", (string?)finding["check"]);
        Assert.Equal("block", (string?)finding["action"]);
        Assert.DoesNotContain((await app.Messages(campaign)).Select(m => m.Type), t => t == "referral.approved");
    }

    [Fact]
    public async Task A_flag_finding_holds_the_referral_for_review_with_its_score()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        var (_, code) = await _admin.Advocate(campaign);
        app.Screening.Verdicts["flagged@example.net"] = new FraudVerdict(
            [new FraudFinding("disposableEmail", FraudAction.Flag, "example.net looks disposable")]);

        var outcome = await _admin.Track(campaign, "purchase", "flagged@example.net", code, orderId: "FL-1", purchaseValue: 20);

        Assert.Equal("flagged", (string?)outcome["referral"]!["status"]);
        Assert.Equal("pending", (string?)outcome.Rewards()[0]!["status"]);
        var referral = await _admin.GetOk($"/api/v1/referrals/{(string)outcome["referral"]!["id"]!}");
        Assert.Equal("flag", (string?)referral["findings"]![0]!["action"]);
        Assert.Equal(30, (int)referral["riskScore"]!);
        Assert.Null((string?)referral["approveAfter"]);
    }

    [Fact]
    public async Task Rewards_wait_for_the_approval_webhooks_acknowledgement_when_an_endpoint_listens()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        var (_, code) = await _admin.Advocate(campaign);
        app.Listeners.Listening = true;
        try
        {
            var outcome = await _admin.Track(campaign, "purchase", "acked@example.net", code, orderId: "A-1", purchaseValue: 20);
            var referralId = (string)outcome["referral"]!["id"]!;
            Assert.Equal("approved", (string?)outcome["referral"]!["status"]);
            Assert.Equal("approved", (string?)outcome.Rewards()[0]!["status"]);
            Assert.DoesNotContain((await app.Messages(campaign)).Select(m => m.Type), t => t == "reward.issued");

            var issued = await app.WithDb(async db =>
            {
                var clock = app.Services.GetRequiredService<TimeProvider>();
                var outbox = app.Services.GetRequiredService<OutboxWriter>();
                return (await RewardRelease.OnReferralApprovedAcknowledgedAsync(db, referralId, clock, outbox, default),
                    await RewardRelease.OnReferralApprovedAcknowledgedAsync(db, referralId, clock, outbox, default));
            });

            Assert.Equal((1, 0), issued);
            var reward = Assert.Single(await _admin.RewardList($"referralId={referralId}"))!;
            Assert.Equal("issued", (string?)reward["status"]);
            Assert.Single(await app.Messages(campaign), m => m.Type == "reward.issued");
        }
        finally
        {
            app.Listeners.Listening = false;
        }
    }

    [Fact]
    public async Task Every_step_writes_its_outbound_event_with_the_documented_data()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars, new { goalConversions = 1 });
        var (advocateId, code) = await _admin.Advocate(campaign, "robert@example.com", "Robert Downy", "vip-7");

        await _admin.Track(campaign, "signup", "cristian@example.net", code, name: "Cristian Bale");
        await _admin.Track(campaign, "purchase", "cristian@example.net", orderId: "ASDXXXXX", purchaseValue: 1000);

        var messages = await app.Messages(campaign);
        // Messages of one transaction share a millisecond, so their ids do not order them; the set is what counts.
        Assert.Equal(
            ["conversion", "participant.joined", "participant.joined", "referral.approved", "referral.created", "referral.qualified", "reward.issued"],
            messages.Select(m => m.Type).Order(StringComparer.Ordinal));
        var joined = messages.Single(m => m.Type == "participant.joined" && (string?)m.Data["participant"]!["role"] == "invited").Data;
        Assert.Equal("invited", (string?)joined["participant"]!["role"]);
        Assert.Equal(advocateId, (string?)joined["referredBy"]!["id"]);

        var approved = messages.Single(m => m.Type == "referral.approved").Data;
        Assert.Equal(campaign, (string?)approved["campaign"]!["id"]);
        Assert.Equal("approved", (string?)approved["referral"]!["status"]);
        Assert.NotNull(approved["referral"]!["approvedAt"]);
        Assert.Equal("robert@example.com", (string?)approved["advocate"]!["email"]);
        Assert.Equal(code, (string?)approved["advocate"]!["code"]);
        Assert.Equal("vip-7", (string?)approved["advocate"]!["customValue"]);
        Assert.Equal(1, (int)approved["advocate"]!["conversions"]!);
        Assert.Equal("cristian@example.net", (string?)approved["friend"]!["email"]);
        Assert.Equal("ASDXXXXX", (string?)approved["event"]!["orderId"]);

        var issued = messages.Single(m => m.Type == "reward.issued").Data;
        Assert.Equal("advocate", (string?)issued["reward"]!["recipient"]);
        Assert.Equal(10m, (decimal)issued["reward"]!["incentive"]!["amount"]!);

        var conversion = messages.Single(m => m.Type == "conversion").Data;
        Assert.Equal(
            ["conversion", "referrer_name", "referrer_email", "referee_name", "referee_email", "orderID", "purchaseValue",
             "referrer_converts", "referrer_customValue", "goal_complete"],
            conversion.Select(p => p.Key));
        Assert.Equal("success", (string?)conversion["conversion"]);
        Assert.Equal("Robert Downy", (string?)conversion["referrer_name"]);
        Assert.Equal("Cristian Bale", (string?)conversion["referee_name"]);
        Assert.Equal("ASDXXXXX", (string?)conversion["orderID"]);
        Assert.Equal(1000m, (decimal)conversion["purchaseValue"]!);
        Assert.Equal(1, (int)conversion["referrer_converts"]!);
        Assert.Equal("vip-7", (string?)conversion["referrer_customValue"]);
        Assert.Equal(1, (int)conversion["goal_complete"]!);
    }

    [Fact]
    public async Task Referrals_are_listed_by_campaign_status_and_advocate()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars, new { approval = "manual" });
        var (advocateId, code) = await _admin.Advocate(campaign);
        await _admin.Track(campaign, "signup", "l1@example.net", code);
        await _admin.Track(campaign, "purchase", "l2@example.net", code, orderId: "L-2", purchaseValue: 1);

        var pending = (await _admin.GetOk($"/api/v1/referrals?campaignId={campaign}&status=pending"))["data"]!.AsArray();
        var all = (await _admin.GetOk($"/api/v1/referrals?advocateId={advocateId}&limit=1"));

        Assert.Single(pending);
        Assert.Single(all["data"]!.AsArray());
        Assert.NotNull(all["nextCursor"]);
        var bad = await _admin.GetAsync("/api/v1/referrals?status=nope");
        await bad.AssertValidationProblem("status");
    }
}
