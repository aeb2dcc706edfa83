using System.Net;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using Referloop.Webhooks;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Webhooks;

/// <summary>Attempts time out after 1 s here, so these tests wait for slow receivers briefly.</summary>
public class SlowReceiverTests(ShortTimeoutWebhookApp app) : IClassFixture<ShortTimeoutWebhookApp>
{
    private readonly HttpClient _client = app.CreateAdminClient();

    [Fact]
    public async Task A_receiver_slower_than_the_timeout_is_logged_as_timed_out_and_retried()
    {
        await using var slow = await Receiver.StartAsync();
        var slowId = (string)(await _client.PostOk("/api/v1/webhook-endpoints",
            new { url = slow.Url(), eventTypes = new[] { "reward.issued" } }))["id"]!;
        slow.Respond = (n, _) => n == 1 ? new Reply(Delay: TimeSpan.FromSeconds(3)) : new Reply();

        var messageId = await app.Publish(EventTypes.RewardIssued);

        var timedOut = await app.WaitForDelivery(_client, messageId, slowId, d => (int)d["attemptCount"]! == 1);
        var attempt = timedOut["attempts"]![0]!;
        Assert.Equal("pending", (string)timedOut["status"]!);
        Assert.Null(attempt["statusCode"]);
        Assert.Contains("Timed out after 1 s", (string)attempt["error"]!);
        // The timeout, not the receiver's 3 s answer, ended the attempt (the error says so); how long after the
        // timeout the attempt is recorded depends on how busy the machine is, so only the lower bound is checked.
        Assert.True((long)attempt["latencyMs"]! >= 900, $"latency {attempt["latencyMs"]} ms");

        app.Clock.Advance(TimeSpan.FromSeconds(6));
        await app.WaitForDelivery(_client, messageId, slowId, d => (int)d["attemptCount"]! >= 2);
    }
}

/// <summary>A <see cref="WebhookApp"/> with four slots, one per endpoint, and attempts timing out after 3 s.</summary>
public sealed class NarrowDeliveryApp : WebhookApp
{
    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["Webhooks:MaxConcurrency"] = "4";
            settings["Webhooks:MaxConcurrencyPerEndpoint"] = "1";
            settings["Webhooks:Timeout"] = "00:00:03";
            return settings;
        }
    }
}

public class SlowEndpointTests(NarrowDeliveryApp app) : IClassFixture<NarrowDeliveryApp>
{
    private readonly HttpClient _client = app.CreateAdminClient();

    // Claimed by this instance and waiting for the endpoint's one slot: the cancel drops it before it answers, rather
    // than at the next lease renewal (which never comes here, on the tests' clock).
    [Theory]
    [InlineData("cancel")]
    [InlineData("erasure")]
    [InlineData("disable")]
    public async Task A_delivery_stopped_while_it_waits_for_its_endpoints_slot_is_not_sent(string stop)
    {
        await using var receiver = await Receiver.StartAsync();
        using var firstArrived = new SemaphoreSlim(0);
        receiver.Respond = (n, _) =>
        {
            if (n > 1)
            {
                return new Reply();
            }
            firstArrived.Release();
            return new Reply(Delay: TimeSpan.FromSeconds(2));
        };
        var endpoint = (string)(await _client.PostOk("/api/v1/webhook-endpoints",
            new { url = receiver.Url(), eventTypes = new[] { EventTypes.ParticipantJoined } }))["id"]!;
        try
        {
            var (campaign, _) = await _client.Campaign([]);
            await _client.Advocate(campaign, $"held-first-{stop}@example.com");
            var (second, _) = await _client.Advocate(campaign, $"held-second-{stop}@example.com");
            var messages = await app.WithDb(db => db.Outbox.Where(m => m.CampaignId == campaign && m.Type == EventTypes.ParticipantJoined)
                .OrderBy(m => m.Id).Select(m => m.Id).ToListAsync());
            Assert.Equal(2, messages.Count);
            Assert.True(await firstArrived.WaitAsync(TimeSpan.FromSeconds(20)), "the first delivery is on the wire");
            await Eventually(() => app.WithDb(db => db.WebhookDeliveries.AnyAsync(d => d.MessageId == messages[1] && d.ClaimedBy != null)),
                "the second delivery is held, waiting for the slot");

            var stopped = stop switch
            {
                "cancel" => await _client.PostAsync($"/api/v1/messages/{messages[1]}/cancel", null),
                "erasure" => await _client.DeleteAsync($"/api/v1/campaigns/{campaign}/participants/{second}"),
                _ => await _client.PostAsync($"/api/v1/webhook-endpoints/{endpoint}/disable", null),
            };
            Assert.True(stopped.IsSuccessStatusCode, $"answered {(int)stopped.StatusCode}");

            await Eventually(() => app.WithDb(db => db.WebhookDeliveries.AnyAsync(d => d.MessageId == messages[0] && d.Status == DeliveryStatus.Succeeded)),
                "the first delivery is recorded");
            await receiver.AssertStillAsync(1, milliseconds: 1000);
            Assert.Equal(messages[0], receiver.Requests.Single().Header("webhook-id"));
            var held = await app.WithDb(db => db.WebhookDeliveries.AsNoTracking().SingleAsync(d => d.MessageId == messages[1]));
            Assert.Equal((stop == "disable" ? DeliveryStatus.Failed : DeliveryStatus.Cancelled, 0, null), (held.Status, held.Attempts, held.ClaimedBy));
        }
        finally
        {
            await _client.DeleteAsync($"/api/v1/webhook-endpoints/{endpoint}");
        }
    }

    // The instance holds at most 32 unsent deliveries of an endpoint here (32 rounds of its one slot). A receiver that
    // never answers in time keeps its endpoint stocked for the whole test: its held deliveries drain one per 3 s
    // timeout. Before each endpoint was stocked on its own, the slow one's waiting deliveries kept every claim away
    // (a claim came only once fewer than a round of all slots waited), so the fast endpoint stalled after its share
    // of the first fan-out until the slow one had drained.
    [Fact]
    public async Task A_receiver_that_never_answers_in_time_does_not_hold_up_another_endpoints_deliveries()
    {
        await using var slow = await Receiver.StartAsync();
        await using var fast = await Receiver.StartAsync();
        slow.Respond = (_, _) => new Reply(Delay: TimeSpan.FromMinutes(1));
        var endpoints = new List<string>();
        foreach (var receiver in new[] { slow, fast })
        {
            endpoints.Add((string)(await _client.PostOk("/api/v1/webhook-endpoints",
                new { url = receiver.Url(), eventTypes = new[] { EventTypes.RewardIssued } }))["id"]!);
        }
        try
        {
            for (var i = 0; i < 40; i++)
            {
                await app.Publish(EventTypes.RewardIssued);
            }

            await fast.WaitForAsync(40, seconds: 10);
        }
        finally
        {
            foreach (var id in endpoints)
            {
                await _client.DeleteAsync($"/api/v1/webhook-endpoints/{id}");
            }
        }
    }
}
