using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Storage;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>A <see cref="WebhookApp"/> whose attempts time out after 1 s, for tests of slow receivers.</summary>
public sealed class ShortTimeoutWebhookApp : WebhookApp
{
    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["Webhooks:Timeout"] = "00:00:01";
            return settings;
        }
    }
}

/// <summary>
/// A Referloop server whose webhooks may call loopback receivers, with a short poll interval so that retries fall
/// due promptly after the fake clock is advanced.
/// </summary>
public class WebhookApp : ReferloopApp
{
    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["Webhooks:AllowPrivateNetworks"] = "true";
            settings["Webhooks:PollInterval"] = "00:00:00.050";
            settings["Webhooks:Timeout"] = "00:00:10";
            return settings;
        }
    }

    public List<string> AcknowledgedReferrals { get; } = [];

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(services => services.AddSingleton<IAcknowledgementHandler>(new AcknowledgementCallback((_, referralIds, _) =>
        {
            lock (AcknowledgedReferrals)
            {
                AcknowledgedReferrals.AddRange(referralIds);
            }
            return Task.CompletedTask;
        })));
    }

    /// <summary>Writes an outbox message the way the referral engine does: in its own transaction, at the fake now.</summary>
    public Task<string> PublishData(string type, string data, string? campaignId = null) => WithDb(async db =>
    {
        var message = Outbox.Add(db, type, campaignId, JsonSerializer.Deserialize<JsonElement>(data), Clock.GetUtcNow());
        await db.SaveChangesAsync();
        return message.Id;
    });

    public Task<string> Publish(string type, string? campaignId = null) => PublishData(type, ExamplePayloads.Data[type], campaignId);

    public async Task<JsonObject> CreateEndpoint(HttpClient client, object body) =>
        await client.PostOk("/api/v1/webhook-endpoints", body);

    /// <summary>The delivery of one message to one endpoint, as the API shows it.</summary>
    public async Task<JsonObject> Delivery(HttpClient client, string messageId, string endpointId)
    {
        var message = await client.GetOk($"/api/v1/messages/{messageId}");
        return message["deliveries"]!.AsArray().Select(d => d!.AsObject()).Single(d => (string)d["endpointId"]! == endpointId);
    }

    /// <summary>Waits (real time) until the delivery reaches a state, e.g. a status or an attempt count.</summary>
    public async Task<JsonObject> WaitForDelivery(HttpClient client, string messageId, string endpointId,
        Func<JsonObject, bool> done, int seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var response = await client.GetAsync($"/api/v1/messages/{messageId}");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                var deliveries = (await response.ReadJson())["deliveries"]!.AsArray().Select(d => d!.AsObject());
                var delivery = deliveries.SingleOrDefault(d => (string)d["endpointId"]! == endpointId);
                if (delivery is not null && done(delivery))
                {
                    return delivery;
                }
                if (DateTime.UtcNow > deadline)
                {
                    Assert.Fail($"delivery of {messageId} to {endpointId} did not reach the expected state: {delivery?.ToJsonString()}");
                }
            }
            else if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"message {messageId} not found: {(int)response.StatusCode}");
            }
            await Task.Delay(30);
        }
    }

    public Task<T> Db<T>(Func<ReferloopDb, Task<T>> work) => WithDb(work);

    public Task<WebhookEndpoint> Endpoint(string id) => WithDb(db => db.WebhookEndpoints.AsNoTracking().SingleAsync(e => e.Id == id));
}
