using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// seeds/002: the approved-referral webhook keeps retrying until it gets a 2xx, since the referral's rewards wait for
/// it; past the schedule's 8 attempts it is tried every 10 h until a 2xx or until a person cancels it.
/// </summary>
public class RetryUntilAcknowledgedTests(WebhookApp app) : EndpointTestClass(app)
{
    private static readonly TimeSpan[] Schedule =
    [
        TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(30), TimeSpan.FromHours(2),
        TimeSpan.FromHours(5), TimeSpan.FromHours(10), TimeSpan.FromHours(10),
    ];

    private static readonly TimeSpan Last = TimeSpan.FromHours(10);

    private async Task<(Receiver Receiver, JsonObject Endpoint)> FailingEndpoint(object body)
    {
        var receiver = await Receiver.StartAsync();
        Receivers.Add(receiver);
        receiver.Respond = (_, _) => new Reply(500, "down");
        var json = JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(body))!.AsObject();
        json["url"] = receiver.Url();
        var created = await Client.PostOk("/api/v1/webhook-endpoints", json);
        Endpoints.Add((string)created["id"]!);
        return (receiver, created);
    }

    /// <summary>Lets the given number of attempts happen, each retry falling due after its wait (plus jitter).</summary>
    private async Task<JsonObject> Drive(string messageId, string endpointId, int attempts)
    {
        for (var n = 1; n <= attempts; n++)
        {
            await App.WaitForDelivery(Client, messageId, endpointId, d => (int)d["attemptCount"]! >= n);
            if (n < attempts)
            {
                App.Clock.Advance((n <= Schedule.Length ? Schedule[n - 1] : Last) * 1.11);
            }
        }
        return await App.Delivery(Client, messageId, endpointId);
    }

    [Fact]
    public async Task Is_on_by_default_for_endpoints_that_receive_referral_approved_and_can_be_set()
    {
        var (_, all) = await FailingEndpoint(new { });
        var (_, approvals) = await FailingEndpoint(new { eventTypes = new[] { "referral.approved", "reward.issued" } });
        var (_, rewards) = await FailingEndpoint(new { eventTypes = new[] { "reward.issued" } });
        var (_, optedOut) = await FailingEndpoint(new { eventTypes = new[] { "referral.approved" }, retryUntilAcknowledged = false });

        Assert.True((bool)all["retryUntilAcknowledged"]!);
        Assert.True((bool)approvals["retryUntilAcknowledged"]!);
        Assert.False((bool)rewards["retryUntilAcknowledged"]!);
        Assert.False((bool)optedOut["retryUntilAcknowledged"]!);
        var id = (string)optedOut["id"]!;
        var updated = await Client.PutAsJsonAsync($"/api/v1/webhook-endpoints/{id}",
            new { url = (string)optedOut["url"]!, eventTypes = new[] { "referral.approved" }, retryUntilAcknowledged = true });
        Assert.True((bool)(await updated.ReadJson())["retryUntilAcknowledged"]!);
        Assert.True((await App.Endpoint(id)).RetryUntilAcknowledged);
    }

    [Fact]
    public async Task Retries_until_receiver_answers_2xx_past_the_schedule_and_then_releases_the_rewards()
    {
        var (receiver, endpoint) = await FailingEndpoint(new { eventTypes = new[] { "referral.approved" } });
        var endpointId = (string)endpoint["id"]!;
        var acknowledgedBefore = Acknowledgements();
        var messageId = await App.Publish(EventTypes.ReferralApproved);

        // The 8 scheduled attempts and 4 more, 10 h apart: more than five days of failures in all.
        var delivery = await Drive(messageId, endpointId, 12);
        Assert.Equal("pending", (string)delivery["status"]!);
        Assert.True((bool)delivery["retryUntilAcknowledged"]!);
        var next = (DateTimeOffset)delivery["nextAttemptAt"]!;
        Assert.InRange(next - App.Clock.GetUtcNow(), Last * 0.89, Last * 1.11);
        Assert.Empty(await App.Db(db => db.Outbox.AsNoTracking()
            .Where(m => m.Type == EventTypes.MessageAttemptExhausted && m.EndpointId == endpointId).ToListAsync()));
        // Failing for five days does not disable it: that would end the wait too.
        Assert.True((await App.Endpoint(endpointId)).Enabled);
        Assert.Equal(acknowledgedBefore, Acknowledgements());

        receiver.Respond = (_, _) => new Reply(200);
        App.Clock.Advance(Last * 1.11);
        var acknowledged = await App.WaitForDelivery(Client, messageId, endpointId, d => (string)d["status"]! == "succeeded");

        Assert.Equal(13, (int)acknowledged["attemptCount"]!);
        Assert.All(receiver.Requests, r => Assert.Equal(messageId, r.Header("webhook-id")));
        await Referrals.EngineKit.Eventually(() => Task.FromResult(Acknowledgements() > acknowledgedBefore),
            "the acknowledgement releases the referral's rewards");
    }

    /// <summary>How often the example referral's approval was acknowledged (by any test of this server).</summary>
    private int Acknowledgements()
    {
        lock (App.AcknowledgedReferrals)
        {
            return App.AcknowledgedReferrals.Count(id => id == "ref_0196f1c4e3068f2a0b5c7d9e1f3a5b72");
        }
    }

    [Fact]
    public async Task Without_it_the_approved_referral_webhook_fails_after_the_8th_attempt()
    {
        var (_, endpoint) = await FailingEndpoint(new { eventTypes = new[] { "referral.approved" }, retryUntilAcknowledged = false });
        var endpointId = (string)endpoint["id"]!;
        var messageId = await App.Publish(EventTypes.ReferralApproved);

        await Drive(messageId, endpointId, 8);
        App.Clock.Advance(Last * 1.11);
        var delivery = await App.WaitForDelivery(Client, messageId, endpointId, d => (string)d["status"]! == "failed");

        Assert.Equal(8, (int)delivery["attemptCount"]!);
        Assert.False((bool)delivery["retryUntilAcknowledged"]!);
    }

    [Fact]
    public async Task A_person_can_cancel_a_waiting_message_and_replay_it_later()
    {
        var (receiver, endpoint) = await FailingEndpoint(new { eventTypes = new[] { "referral.approved" } });
        var endpointId = (string)endpoint["id"]!;
        var messageId = await App.Publish(EventTypes.ReferralApproved);
        var delivery = await Drive(messageId, endpointId, 9);
        var deliveryId = (string)delivery["id"]!;
        Assert.Equal("pending", (string)delivery["status"]!);

        var cancelled = await Client.PostOk($"/api/v1/messages/{deliveryId}/cancel", new { }, HttpStatusCode.OK);

        Assert.Equal(1, (int)cancelled["cancelled"]!);
        var after = await App.Delivery(Client, messageId, endpointId);
        Assert.Equal("cancelled", (string)after["status"]!);
        Assert.Null(after["nextAttemptAt"]);
        App.Clock.Advance(Last * 2);
        await receiver.AssertStillAsync(9);
        Assert.Equal(HttpStatusCode.Conflict, (await Client.PostAsync($"/api/v1/messages/{deliveryId}/cancel", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Client.PostAsync("/api/v1/messages/dlv_nothing/cancel", null)).StatusCode);
        var list = await Client.GetOk($"/api/v1/webhook-endpoints/{endpointId}/messages?status=cancelled");
        Assert.Equal(deliveryId, (string)list["data"]!.AsArray().Single()!["id"]!);

        receiver.Respond = (_, _) => new Reply(204);
        await Client.PostOk($"/api/v1/messages/{deliveryId}/replay", new { }, HttpStatusCode.Accepted);
        var replayed = await App.WaitForDelivery(Client, messageId, endpointId, d => (string)d["status"]! == "succeeded");
        Assert.Equal(10, (int)replayed["attemptCount"]!);
    }
}
