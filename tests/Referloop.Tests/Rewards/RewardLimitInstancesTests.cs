using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Referloop.Rewards;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Rewards;

public class RewardLimitInstancesTests(SharedDatabaseApp app) : IClassFixture<SharedDatabaseApp>
{
    // Each instance decides its batches over the advocate's counters as it read them; the rows it locks first (on
    // PostgreSQL) and SQLite's one writer make the other instance's decisions wait for that batch's commit, and read the
    // counters it left.
    [Fact]
    public async Task Two_instances_taking_purchases_of_one_advocate_at_once_issue_exactly_the_rewards_the_limit_allows()
    {
        await using var second = app.SecondInstance();
        var admin = app.CreateAdminClient();
        var (campaign, _) = await admin.Campaign([new
        {
            recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10), limits = new { perMonth = 5 },
        }]);
        var (advocateId, code) = await admin.Advocate(campaign);
        var other = SharedDatabaseApp.CreateAdminClient(second);
        HttpClient[] instances = [admin, other];

        var responses = await Task.WhenAll(Enumerable.Range(1, 120).Select(i => Task.Run(() =>
            instances[i % 2].PostAsJsonAsync("/api/v1/events", new
            {
                campaignId = campaign,
                type = "purchase",
                email = $"both-{i}@example.net",
                referralCode = code,
                orderId = $"BOTH-{i}",
                purchaseValue = 20,
            }))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
        var rewards = await app.WithDb(db => db.Rewards.AsNoTracking().Where(r => r.AdvocateId == advocateId).ToListAsync());
        Assert.Equal(120, rewards.Count);
        Assert.Equal(5, rewards.Count(r => r.Status == RewardStatus.Issued));
        Assert.Equal(115, rewards.Count(r => r.Status == RewardStatus.Blocked && r.Reason == BlockReason.LimitReached));
        var counters = await app.WithDb(db => db.AdvocateCounters.AsNoTracking().Where(c => c.ParticipantId == advocateId)
            .ToDictionaryAsync(c => c.Name, c => c.Count));
        Assert.Contains(120, counters.Values);
        Assert.All(counters.Values, count => Assert.True(count <= 120, $"a counter of the advocate moved {count} times for 120 purchases"));
    }
}
