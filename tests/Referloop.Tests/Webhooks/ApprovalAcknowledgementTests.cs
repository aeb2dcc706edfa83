using Referloop.Tests.Referrals;
using Referloop.Tests.Support;

namespace Referloop.Tests.Webhooks;

/// <summary>seeds/002: rewards of an approved referral become payable once the approved-referral webhook got a 2xx.</summary>
public class ApprovalAcknowledgementTests(WebhookApp app) : IClassFixture<WebhookApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task Rewards_wait_until_the_approved_referral_webhook_is_acknowledged_and_are_issued_then()
    {
        await using var receiver = await Receiver.StartAsync();
        var acknowledge = false;
        receiver.Respond = (_, _) => acknowledge ? new Reply(200) : new Reply(500, "not yet");
        var (campaign, _) = await _admin.Campaign([new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = EngineKit.Rebate(10) }]);
        await app.CreateEndpoint(_admin, new { url = receiver.Url(), eventTypes = new[] { "referral.approved" }, campaignId = campaign, format = "json" });
        var (_, code) = await _admin.Advocate(campaign, "ack-ann@example.com");

        var outcome = await _admin.Track(campaign, "purchase", "ack-bob@example.net", code, orderId: "ACK-1", purchaseValue: 50);

        var reward = Assert.Single(outcome.Rewards())!;
        Assert.Equal("approved", (string?)reward["status"]);
        var rewardId = (string)reward["id"]!;
        await receiver.WaitForAsync(1);
        Assert.Equal("approved", (string?)(await _admin.GetOk($"/api/v1/rewards/{rewardId}"))["status"]);

        acknowledge = true;
        app.Clock.Advance(TimeSpan.FromSeconds(6)); // the second attempt of the schedule is due after 5 s
        await receiver.WaitForAsync(2);

        await EngineKit.Eventually(async () => (string?)(await _admin.GetOk($"/api/v1/rewards/{rewardId}"))["status"] == "issued",
            "the reward is issued after the acknowledgement");
        var messages = await app.Messages(campaign);
        Assert.Contains(messages, m => m.Type == "reward.issued" && (string?)m.Data["reward"]!["id"] == rewardId);
    }

    [Fact]
    public async Task Without_a_subscribed_endpoint_rewards_are_issued_at_approval()
    {
        var (campaign, _) = await _admin.Campaign([new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = EngineKit.Rebate(10) }]);
        var (_, code) = await _admin.Advocate(campaign, "noack-ann@example.com");

        var outcome = await _admin.Track(campaign, "purchase", "noack-bob@example.net", code, orderId: "NOACK-1", purchaseValue: 50);

        Assert.Equal("issued", (string?)Assert.Single(outcome.Rewards())!["status"]);
    }
}
