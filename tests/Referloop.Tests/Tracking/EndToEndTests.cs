using System.Net;
using Microsoft.AspNetCore.WebUtilities;
using Referloop.Tests.Support;

namespace Referloop.Tests.Tracking;

/// <summary>The walk a new merchant takes, through the public HTTP API only.</summary>
public class EndToEndTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    [Fact]
    public async Task Campaign_advocate_click_signup_purchase_approval_and_rewards()
    {
        var admin = app.CreateAdminClient();

        // 1. a campaign that pays the advocate $10 per converted friend and gives the friend a thank-you, approved by hand
        var campaign = await admin.PostOk("/api/v1/campaigns", new
        {
            name = "Spring referral",
            landingUrl = "https://shop.example.com/welcome",
            approval = "manual",
            goalConversions = 1,
            rewards = new object[]
            {
                new { recipient = "advocate", trigger = "converted", kind = "standard",
                      incentive = new { type = "rebate", amount = 10, currency = "USD" }, limits = new { perMonth = 5 } },
                new { recipient = "friend", trigger = "converted", kind = "standard",
                      incentive = new { type = "other", description = "Free T-shirt" } },
            },
        });
        var campaignId = (string)campaign["id"]!;
        var publishableKey = (string)campaign["publishableKey"]!;

        // 2. the advocate joins and shares the link
        var advocate = await admin.PostOk($"/api/v1/campaigns/{campaignId}/participants", new { email = "ann@example.com", name = "Ann Lee" });
        var advocateId = (string)advocate["id"]!;

        // 3. a friend follows it: the landing URL carries the click id, the snippet keeps it
        var visit = await app.CreateAnonymousClient().GetAsync(new Uri((string)advocate["shareUrl"]!).PathAndQuery);
        Assert.Equal(HttpStatusCode.Found, visit.StatusCode);
        var clickId = QueryHelpers.ParseQuery(visit.Headers.Location!.Query)["rl_click"].ToString();

        // 4. the shop page reports the sign-up with the publishable key, as the snippet does
        var browser = app.CreateAnonymousClient();
        browser.DefaultRequestHeaders.Add("X-Referloop-Key", publishableKey);
        var signup = await browser.PostOk("/api/v1/events",
            new { type = "signup", email = "bob@example.net", name = "Bob Stone", clickId }, HttpStatusCode.Accepted);
        Assert.True((bool)signup["attributed"]!);
        var referralId = (string)signup["referral"]!["id"]!;

        // 5. the shop's server reports the purchase
        var purchase = await admin.PostOk("/api/v1/events", new
        {
            campaignId,
            type = "purchase",
            email = "bob@example.net",
            orderID = "ORD-1001",
            purchaseValue = 120.5,
            currency = "USD",
        }, HttpStatusCode.Accepted);
        Assert.Equal("qualified", (string?)purchase["referral"]!["status"]);
        Assert.All(purchase["rewards"]!.AsArray(), r => Assert.Equal("pending", (string?)r!["status"]));

        // 6. the merchant approves; both rewards become payable
        var approved = await admin.PostOk($"/api/v1/referrals/{referralId}/approve", new { reason = "order shipped" }, HttpStatusCode.OK);
        Assert.Equal("approved", (string?)approved["status"]);
        var rewards = (await admin.GetOk($"/api/v1/rewards?campaignId={campaignId}&status=issued"))["data"]!.AsArray();
        Assert.Equal(2, rewards.Count);
        var advocateReward = rewards.Single(r => (string)r!["recipient"]! == "advocate")!;
        Assert.Equal(advocateId, (string?)advocateReward["participantId"]);

        // 7. the rebate is paid out
        var paid = await admin.PostOk($"/api/v1/rewards/{(string)advocateReward["id"]!}/paid", new { }, HttpStatusCode.OK);
        Assert.NotNull(paid["paidAt"]);

        // the advocate's data export holds the referral, the reward and nothing lost
        var export = await admin.GetOk($"/api/v1/campaigns/{campaignId}/participants/{advocateId}/export");
        Assert.Single(export["referrals"]!.AsArray());
        Assert.Single(export["rewards"]!.AsArray());
        var friendId = (string)signup["referral"]!["friendId"]!;
        var friendExport = await admin.GetOk($"/api/v1/campaigns/{campaignId}/participants/{friendId}/export");
        Assert.Equal(2, friendExport["events"]!.AsArray().Count);

        // and deleting the friend removes their events, rewards and the referral
        var deleted = await admin.DeleteAsync($"/api/v1/campaigns/{campaignId}/participants/{friendId}");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync($"/api/v1/referrals/{referralId}")).StatusCode);
        var left = (await admin.GetOk($"/api/v1/rewards?campaignId={campaignId}"))["data"]!.AsArray();
        Assert.Equal(advocateId, (string?)Assert.Single(left)!["participantId"]);
    }
}
