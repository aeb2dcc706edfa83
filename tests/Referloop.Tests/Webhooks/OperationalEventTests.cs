using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// message.attempt.exhausted and endpoint.disabled reach the merchant's monitoring endpoint, driven by the fake
/// clock, and never the endpoint they are about.
/// </summary>
public class OperationalEventTests(WebhookApp app) : EndpointTestClass(app)
{
    private static readonly TimeSpan[] Waits =
    [
        TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(30), TimeSpan.FromHours(2),
        TimeSpan.FromHours(5), TimeSpan.FromHours(10), TimeSpan.FromHours(10),
    ];

    private async Task<(Receiver Receiver, string Id)> Endpoint(params string[] eventTypes)
    {
        var receiver = await Receiver.StartAsync();
        Receivers.Add(receiver);
        var created = await Client.PostOk("/api/v1/webhook-endpoints", new { url = receiver.Url(), eventTypes, description = "monitor" });
        Endpoints.Add((string)created["id"]!);
        return (receiver, (string)created["id"]!);
    }

    /// <summary>Lets every retry of the schedule fall due (each step plus its 10 % jitter) until the delivery fails.</summary>
    private async Task<JsonObject> DriveToExhaustion(string messageId, string endpointId)
    {
        for (var i = 0; i < Waits.Length; i++)
        {
            await App.WaitForDelivery(Client, messageId, endpointId, d => (int)d["attemptCount"]! == i + 1);
            App.Clock.Advance(Waits[i] * 1.11);
        }
        return await App.WaitForDelivery(Client, messageId, endpointId, d => (string)d["status"]! == "failed");
    }

    private Task<List<OutboxMessage>> Events(string type) =>
        App.Db(db => db.Outbox.AsNoTracking().Where(m => m.Type == type).ToListAsync());

    [Fact]
    public async Task Message_attempt_exhausted_reaches_the_monitor_after_the_last_retry_but_not_the_failing_endpoint()
    {
        var (monitor, _) = await Endpoint(EventTypes.MessageAttemptExhausted, EventTypes.EndpointDisabled);
        // Subscribed to everything: it would be sent its own exhaustion notice if the fan-out did not leave it out.
        var (failing, failingId) = await Endpoint();
        failing.Respond = (_, _) => new Reply(500, "boom");

        // Not referral.approved: an endpoint receiving every type retries that one until acknowledged.
        var messageId = await App.Publish(EventTypes.ReferralQualified);
        var delivery = await DriveToExhaustion(messageId, failingId);
        Assert.Equal(8, (int)delivery["attemptCount"]!);

        var notice = JsonNode.Parse((await monitor.WaitForAsync(1)).Body)!;
        Assert.Equal("message.attempt.exhausted", (string)notice["type"]!);
        var data = notice["data"]!;
        Assert.Equal(failingId, (string)data["endpoint"]!["id"]!);
        // Its origin only: another endpoint must not learn the path or query, which often hold the receiver's token.
        Assert.Equal(new Uri(failing.Url()).GetLeftPart(UriPartial.Authority), (string)data["endpoint"]!["url"]!);
        Assert.Equal(messageId, (string)data["message"]!["id"]!);
        Assert.Equal("referral.qualified", (string)data["message"]!["type"]!);
        Assert.Equal((string)delivery["id"]!, (string)data["deliveryId"]!);
        Assert.Equal(8, (int)data["attempts"]!);
        Assert.Equal(500, (int)data["lastStatusCode"]!);
        Assert.Equal(App.Clock.GetUtcNow(), (DateTimeOffset)data["failedAt"]!);

        App.Clock.Advance(TimeSpan.FromMinutes(1));
        await failing.AssertStillAsync(8);
        Assert.All(failing.Requests, r => Assert.Equal(messageId, r.Header("webhook-id")));
        var exhausted = Assert.Single(await Events(EventTypes.MessageAttemptExhausted), m => m.Data.Contains(messageId));
        Assert.Equal(failingId, exhausted.EndpointId);
        Assert.DoesNotContain((await Client.GetOk($"/api/v1/messages/{exhausted.Id}"))["deliveries"]!.AsArray(),
            d => (string)d!["endpointId"]! == failingId);
        // Exhaustion does not disable: the endpoint had not failed for five days.
        Assert.True((await App.Endpoint(failingId)).Enabled);
        Assert.Single(monitor.Requests);
    }

    [Fact]
    public async Task An_operational_event_that_cannot_be_delivered_raises_no_further_event()
    {
        var (brokenMonitor, brokenId) = await Endpoint(EventTypes.MessageAttemptExhausted);
        brokenMonitor.Respond = (_, _) => new Reply(500, "monitor down");
        var (failing, failingId) = await Endpoint(EventTypes.RewardIssued);
        failing.Respond = (_, _) => new Reply(503, "busy");

        var messageId = await App.Publish(EventTypes.RewardIssued);
        await DriveToExhaustion(messageId, failingId);
        var notice = Assert.Single(await Events(EventTypes.MessageAttemptExhausted), m => m.Data.Contains(messageId));

        // The monitor fails every attempt at the notice too; that exhaustion is logged, not announced.
        var delivery = await DriveToExhaustion(notice.Id, brokenId);
        Assert.Equal(8, (int)delivery["attemptCount"]!);
        App.Clock.Advance(TimeSpan.FromDays(1));
        await brokenMonitor.AssertStillAsync(8);
        Assert.DoesNotContain(await Events(EventTypes.MessageAttemptExhausted), m => m.Data.Contains(notice.Id));
    }

    [Fact]
    public async Task Gone_disables_with_reason_gone()
    {
        var (monitor, _) = await Endpoint(EventTypes.EndpointDisabled);
        var (gone, goneId) = await Endpoint();
        gone.Respond = (_, _) => new Reply(410, "gone");

        await App.Publish(EventTypes.ReferralCreated);

        var notice = JsonNode.Parse((await monitor.WaitForAsync(1)).Body)!;
        Assert.Equal("endpoint.disabled", (string)notice["type"]!);
        Assert.Equal(goneId, (string)notice["data"]!["endpoint"]!["id"]!);
        Assert.Equal("gone", (string)notice["data"]!["reason"]!);
        Assert.Contains("410", (string)notice["data"]!["detail"]!);
        await gone.AssertStillAsync(1);
        Assert.Equal(goneId, Assert.Single(await Events(EventTypes.EndpointDisabled), m => m.Data.Contains(goneId)).EndpointId);
    }

    [Fact]
    public async Task Failing_for_five_days_disables_with_reason_failing()
    {
        var (monitor, _) = await Endpoint(EventTypes.EndpointDisabled, EventTypes.MessageAttemptExhausted);
        var (failing, failingId) = await Endpoint(EventTypes.ParticipantJoined);
        failing.Respond = (_, _) => new Reply(500);

        var messageId = await App.Publish(EventTypes.ParticipantJoined);
        await App.WaitForDelivery(Client, messageId, failingId, d => (int)d["attemptCount"]! == 1);
        App.Clock.Advance(TimeSpan.FromDays(5));

        var notice = JsonNode.Parse((await monitor.WaitForAsync(1)).Body)!;
        Assert.Equal("endpoint.disabled", (string)notice["type"]!);
        Assert.Equal(failingId, (string)notice["data"]!["endpoint"]!["id"]!);
        Assert.Equal("failing", (string)notice["data"]!["reason"]!);
        Assert.Contains("failed since", (string)notice["data"]!["detail"]!);
        Assert.False((await App.Endpoint(failingId)).Enabled);
        await monitor.AssertStillAsync(1);
    }

    [Fact]
    public async Task Disabling_by_hand_says_so_with_reason_manual_through_either_api()
    {
        var (monitor, _) = await Endpoint(EventTypes.EndpointDisabled);
        var (byPost, byPostId) = await Endpoint();
        var (byPut, byPutId) = await Endpoint();

        await Client.PostOk($"/api/v1/webhook-endpoints/{byPostId}/disable", new { }, HttpStatusCode.OK);
        (await Client.PutAsJsonAsync($"/api/v1/webhook-endpoints/{byPutId}", new { url = byPut.Url(), enabled = false }))
            .EnsureSuccessStatusCode();
        // Disabling an endpoint that is already disabled is no news.
        await Client.PostOk($"/api/v1/webhook-endpoints/{byPostId}/disable", new { }, HttpStatusCode.OK);

        await monitor.WaitForAsync(2);
        await monitor.AssertStillAsync(2);
        var notices = monitor.Requests.Select(r => JsonNode.Parse(r.Body)!["data"]!).ToList();
        Assert.All(notices, n => Assert.Equal("manual", (string)n["reason"]!));
        Assert.Equal([byPostId, byPutId], notices.Select(n => (string)n["endpoint"]!["id"]!).Order());
        // Each may hear of the other (both subscribe to everything), never of itself.
        Assert.All(byPost.Requests, r => Assert.NotEqual(byPostId, (string)JsonNode.Parse(r.Body)!["data"]!["endpoint"]!["id"]!));
        Assert.All(byPut.Requests, r => Assert.NotEqual(byPutId, (string)JsonNode.Parse(r.Body)!["data"]!["endpoint"]!["id"]!));
    }

    [Fact]
    public void An_operational_event_is_not_wanted_by_the_endpoint_it_is_about()
    {
        var endpoint = new WebhookEndpoint { Id = "whe_a", Url = "https://a.example.com", Format = "json", Secret = "" };
        OutboxMessage Message(string? about) => new()
        {
            Id = "msg_x",
            Type = EventTypes.EndpointDisabled,
            EndpointId = about,
            Data = "{}",
            CreatedAt = DateTimeOffset.UnixEpoch.AddDays(1),
        };
        Assert.False(endpoint.Wants(Message("whe_a")));
        Assert.True(endpoint.Wants(Message("whe_b")));
    }
}
