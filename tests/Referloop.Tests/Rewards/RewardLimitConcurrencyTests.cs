using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Referloop.Rewards;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Rewards;

public class RewardLimitConcurrencyTests(EngineApp app) : IClassFixture<EngineApp>
{
    [Fact]
    public async Task Hundred_parallel_purchases_issue_exactly_the_five_rewards_the_limit_allows()
    {
        var admin = app.CreateAdminClient();
        var (campaign, _) = await admin.Campaign([new
        {
            recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10), limits = new { perMonth = 5 },
        }]);
        var (advocateId, code) = await admin.Advocate(campaign);

        var responses = await Task.WhenAll(Enumerable.Range(1, 100).Select(i => Task.Run(() =>
            admin.PostAsJsonAsync("/api/v1/events", new
            {
                campaignId = campaign,
                type = "purchase",
                email = $"buyer{i}@example.net",
                referralCode = code,
                orderId = $"PAR-{i}",
                purchaseValue = 20,
            }))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
        var rewards = await app.WithDb(db => db.Rewards.AsNoTracking().Where(r => r.AdvocateId == advocateId).ToListAsync());
        Assert.Equal(100, rewards.Count);
        Assert.Equal(5, rewards.Count(r => r.Status == RewardStatus.Issued));
        Assert.Equal(95, rewards.Count(r => r.Status == RewardStatus.Blocked && r.Reason == BlockReason.LimitReached));
        Assert.Equal(100, await app.WithDb(db => db.Referrals.CountAsync(r => r.AdvocateId == advocateId && r.Status == "approved")));
        var conversions = (await app.Messages(campaign)).Where(m => m.Type == "conversion").Select(m => (int)m.Data["referrer_converts"]!);
        Assert.Equal(Enumerable.Range(1, 100), conversions.Order());
    }

    [Fact]
    public async Task Parallel_retries_of_one_purchase_count_it_once()
    {
        var admin = app.CreateAdminClient();
        var (campaign, _) = await admin.Campaign([new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) }]);
        var (advocateId, code) = await admin.Advocate(campaign);

        var responses = await Task.WhenAll(Enumerable.Range(1, 10).Select(_ => Task.Run(async () =>
        {
            var response = await admin.PostAsJsonAsync("/api/v1/events", new
            {
                campaignId = campaign,
                type = "purchase",
                email = "twice@example.net",
                referralCode = code,
                orderId = "RETRY-1",
                purchaseValue = 20,
            });
            response.EnsureStatus(HttpStatusCode.Accepted);
            return await response.ReadJson();
        })));

        Assert.Single(responses, r => !(bool)r["duplicate"]!);
        Assert.Single(responses.Select(r => (string)r["eventId"]!).Distinct());
        Assert.Equal(1, await app.WithDb(db => db.Rewards.CountAsync(r => r.AdvocateId == advocateId)));
        Assert.Equal(1, await app.WithDb(db => db.Participants.CountAsync(p => p.Email == "twice@example.net")));
    }
}
