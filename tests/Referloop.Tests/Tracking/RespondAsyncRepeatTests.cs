using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using Referloop.Tracking;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Tracking;

/// <summary>
/// Acceptance (<c>Prefer: respond-async</c>) on SQLite does not read what a batch repeats while repeats are rare: the
/// inbox insert finds a recorded or waiting event with the same order id, and the batch runs again, reading first
/// (PostgreSQL always reads first). A server of its own, so that no other test's repeat has its batches read first.
/// </summary>
public class RespondAsyncRepeatTests(RespondAsyncRepeatTests.NoRecoveryApp app) : IClassFixture<RespondAsyncRepeatTests.NoRecoveryApp>
{
    /// <summary>The periodic recovery would process the waiting event the test leaves in the inbox.</summary>
    public class NoRecoveryApp : ReferloopApp
    {
        protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
        {
            ["Tracking:InboxRecoverySeconds"] = "3600",
        };
    }

    private readonly HttpClient _admin = app.CreateAdminClient();

    private async Task<EventAccepted> AcceptAsync(string campaign, string email, string orderId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events")
        {
            Content = JsonContent.Create(new { campaignId = campaign, type = "purchase", email, orderId, purchaseValue = 20 }),
        };
        request.Headers.Add("Prefer", "respond-async");
        var response = await _admin.SendAsync(request);
        response.EnsureStatus(HttpStatusCode.Accepted);
        return (await response.Content.ReadFromJsonAsync<EventAccepted>(JsonSerializerOptions.Web))!;
    }

    [Fact]
    public async Task A_repeat_of_a_recorded_or_a_waiting_order_is_answered_with_its_id_when_the_batch_did_not_read_first()
    {
        var campaign = await _admin.CreateCampaign();
        var recorded = (string)(await _admin.Track(campaign, "purchase", "rec@example.net", orderId: "RR-1", purchaseValue: 20))["eventId"]!;

        // The server's first accepted batch: not read first.
        var repeat = await AcceptAsync(campaign, "rec@example.net", "RR-1");

        Assert.Equal(new EventAccepted(recorded, true, EventStatus.Processed), repeat);
        Assert.Equal(0, await app.WithDb(db => db.Inbox.CountAsync(e => e.CampaignId == campaign)));

        // Batches without repeats, until batches no longer read first; then an order waiting in the inbox.
        for (var i = 0; i < OrderKeyed.RepeatWatch.BatchesAfterRepeat; i++)
        {
            Assert.False((await AcceptAsync(campaign, $"new-{i}@example.net", $"RR-new-{i}")).Duplicate);
        }
        var waiting = await app.WaitingEvent(campaign, "wait@example.net", orderId: "RR-2");

        var repeatOfWaiting = await AcceptAsync(campaign, "wait@example.net", "RR-2");

        Assert.Equal(new EventAccepted(waiting, true, EventStatus.Pending), repeatOfWaiting);
        Assert.Equal(0, await app.WithDb(db => db.Inbox.CountAsync(e => e.CampaignId == campaign && e.OrderId == "RR-2" && e.Id != waiting)));
    }
}
