using System.Net;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;

namespace Referloop.Tests.Tracking;

/// <summary>Events that arrive together go through the one write path in batches: each order is recorded once.</summary>
public class ConcurrentIngestTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    [Fact]
    public async Task Concurrent_purchases_are_all_attributed_and_stored_once()
    {
        var admin = app.CreateAdminClient();
        var campaignId = await admin.CreateCampaign(Api.AutoApprovedRebateCampaign("Grouped purchases"));
        var advocate = await admin.PostOk($"/api/v1/campaigns/{campaignId}/participants", new { email = "ann-grouped@example.com" });
        var code = (string)advocate["code"]!;

        // Twice the same 40 orders at once: each order is attributed once, and its repeat is answered as a duplicate.
        var posts = Enumerable.Range(0, 80).Select(i => admin.PostOk("/api/v1/events", new
        {
            campaignId,
            type = "purchase",
            email = $"friend-{i % 40}@example.net",
            orderId = $"grouped-{i % 40}",
            purchaseValue = 20,
            currency = "USD",
            referralCode = code,
        }, HttpStatusCode.Accepted));
        var outcomes = await Task.WhenAll(posts);

        Assert.Equal(40, outcomes.Count(o => !(bool)o["duplicate"]!));
        Assert.All(outcomes, o => Assert.Equal("approved", (string?)o["referral"]!["status"]));
        var referrals = await app.WithDb(db => db.Referrals.CountAsync(r => r.CampaignId == campaignId));
        var rewards = await app.WithDb(db => db.Rewards.CountAsync(r => r.CampaignId == campaignId));
        Assert.Equal(40, referrals);
        Assert.Equal(40, rewards);
    }
}
