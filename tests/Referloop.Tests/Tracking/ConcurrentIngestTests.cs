using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Campaigns;
using Referloop.Referrals;
using Referloop.Storage;
using Referloop.Tests.Support;
using Referloop.Tracking;

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

    // The event loop does not read what a batch repeats while repeats are rare: the events' insert finds them. A repeat
    // by order id or by idempotency key is then not inserted, and the batch runs again, reading first: every request
    // gets the answer it gets when the batch reads first.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Repeats_are_answered_alike_whether_or_not_the_batch_reads_them_first(bool lookForRepeats)
    {
        var admin = app.CreateAdminClient();
        var campaignId = await admin.CreateCampaign(Api.AutoApprovedRebateCampaign($"Repeats {lookForRepeats}"));
        var advocate = await admin.PostOk($"/api/v1/campaigns/{campaignId}/participants", new { email = "ann-repeats@example.com" });
        var code = (string)advocate["code"]!;
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var campaign = (await scope.ServiceProvider.GetRequiredService<CampaignCache>().FindAsync(db, campaignId, CancellationToken.None))!;
        var engine = scope.ServiceProvider.GetRequiredService<ReferralEngine>();
        TrackRequest Purchase(string email, string orderId, string? key) => new(campaign, new TrackEvent
        {
            CampaignId = campaignId,
            Type = "purchase",
            Email = email,
            OrderId = orderId,
            PurchaseValue = 20,
            Currency = "USD",
            ReferralCode = code,
        }, key, null, null, EventSource.Server);
        var first = await engine.TrackAsync([Purchase("bo@example.net", "R-1", null), Purchase("cy@example.net", "R-2", "K-2")],
            CancellationToken.None, lookForRepeats);

        // The same order; another order with the same key; a new order.
        var again = await engine.TrackAsync(
            [Purchase("bo@example.net", "R-1", null), Purchase("cy@example.net", "R-3", "K-2"), Purchase("di@example.net", "R-4", null)],
            CancellationToken.None, lookForRepeats);

        Assert.Equal([first[0].EventId, first[1].EventId], again.Take(2).Select(o => o.EventId));
        Assert.Equal([true, true, false], again.Select(o => o.Duplicate));
        Assert.Equal([first[0].Referral!.Id, first[1].Referral!.Id], again.Take(2).Select(o => o.Referral!.Id));
        Assert.Equal("approved", again[2].Referral?.Status);
        var orders = await app.WithDb(db => db.Events.Where(e => e.CampaignId == campaignId).Select(e => e.OrderId).ToListAsync());
        Assert.Equal(["R-1", "R-2", "R-4"], orders.Order());
        Assert.Equal(3, await app.WithDb(db => db.Rewards.CountAsync(r => r.CampaignId == campaignId)));
    }
}
