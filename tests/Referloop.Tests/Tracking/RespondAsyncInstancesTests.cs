using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Rewards;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Tracking;

public class RespondAsyncInstancesTests(SharedDatabaseApp app) : IClassFixture<SharedDatabaseApp>
{
    // Each instance looks for an earlier event before it accepts one; when the other instance accepts the same order
    // between that look and its insert, the insert takes no row, and the request runs again and finds the other's.
    [Fact]
    public async Task Two_instances_accepting_the_same_orders_at_once_answer_each_with_one_event_id()
    {
        await using var second = app.SecondInstance();
        var admin = app.CreateAdminClient();
        var (campaign, _) = await admin.Campaign([new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) }]);
        var (_, code) = await admin.Advocate(campaign);
        var other = SharedDatabaseApp.CreateAdminClient(second);
        const int orders = 40;

        var answers = await Task.WhenAll(Enumerable.Range(0, orders * 2).Select(n => Task.Run(async () =>
        {
            var order = n / 2;
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events")
            {
                Content = JsonContent.Create(new
                {
                    campaignId = campaign,
                    type = "purchase",
                    email = $"twice-{order}@example.net",
                    referralCode = code,
                    orderId = $"TWICE-{order}",
                    purchaseValue = 20,
                }),
            };
            request.Headers.Add("Prefer", "respond-async");
            var response = await (n % 2 == 0 ? admin : other).SendAsync(request);
            response.EnsureStatus(HttpStatusCode.Accepted);
            var answer = await response.ReadJson();
            return (Order: order, EventId: (string)answer["eventId"]!, Duplicate: (bool)answer["duplicate"]!);
        })));

        foreach (var both in answers.GroupBy(a => a.Order))
        {
            Assert.Single(both.Select(a => a.EventId).Distinct());
            Assert.Single(both, a => !a.Duplicate);
        }
        await Eventually(async () => await app.WithDb(db =>
            db.Events.CountAsync(e => e.CampaignId == campaign && e.OrderId!.StartsWith("TWICE-"))) == orders, "every order is processed once");
        var events = await app.WithDb(db => db.Events.AsNoTracking()
            .Where(e => e.CampaignId == campaign && e.OrderId!.StartsWith("TWICE-")).Select(e => e.Id).ToListAsync());
        Assert.Equal(answers.Select(a => a.EventId).Distinct().Order(), events.Order());
    }
}
