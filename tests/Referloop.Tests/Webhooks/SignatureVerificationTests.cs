using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Referloop.Tests.Support;
using Referloop.Webhooks;
using StandardWebhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// Receivers verify with the reference libraries, which check the timestamp against their own clock: these tests
/// run the fake clock at real time.
/// </summary>
public class SignatureVerificationTests(WebhookApp app) : IClassFixture<WebhookApp>, IAsyncLifetime
{
    private readonly HttpClient _client = app.CreateAdminClient();
    private readonly List<string> _endpoints = [];

    public Task InitializeAsync()
    {
        if (app.Clock.GetUtcNow() < DateTimeOffset.UtcNow)
        {
            app.Clock.SetUtcNow(DateTimeOffset.UtcNow);
        }
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var id in _endpoints)
        {
            await _client.DeleteAsync($"/api/v1/webhook-endpoints/{id}");
        }
    }

    private async Task<(string Id, string Secret)> CreateEndpoint(string url, object? extra = null)
    {
        var body = JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(extra ?? new { }))!.AsObject();
        body["url"] = url;
        var created = await _client.PostOk("/api/v1/webhook-endpoints", body);
        _endpoints.Add((string)created["id"]!);
        return ((string)created["id"]!, (string)created["secret"]!);
    }

    private static void VerifyWithNuGet(string secret, ReceivedRequest request)
    {
        var headers = new HeaderDictionary
        {
            ["webhook-id"] = request.Header("webhook-id"),
            ["webhook-timestamp"] = request.Header("webhook-timestamp"),
            ["webhook-signature"] = request.Header("webhook-signature"),
        };
        new StandardWebhook(secret).Verify(request.SignedContent, headers);
    }

    [Theory]
    [InlineData("json", "referral.approved")]
    [InlineData("form", "reward.issued")]
    [InlineData("query", "conversion")]
    public async Task Every_format_verifies_with_the_reference_libraries(string format, string type)
    {
        await using var receiver = await Receiver.StartAsync();
        var (_, secret) = await CreateEndpoint(receiver.Url(), new { format, eventTypes = new[] { type } });

        var messageId = await app.Publish(type);
        var request = await receiver.WaitForAsync(1);

        var node = await Node.Verify(secret, request);
        Assert.True((bool)node["ok"]!, node.ToJsonString());
        VerifyWithNuGet(secret, request);
        Assert.Equal(messageId, request.Header("webhook-id"));
    }

    [Fact]
    public async Task A_tampered_body_or_wrong_secret_fails_verification()
    {
        await using var receiver = await Receiver.StartAsync();
        var (_, secret) = await CreateEndpoint(receiver.Url(), new { eventTypes = new[] { "referral.voided" } });

        await app.Publish(EventTypes.ReferralVoided);
        var request = await receiver.WaitForAsync(1);

        var tampered = request with { Body = request.Body.Replace("chargeback", "goodwill") };
        Assert.False((bool)(await Node.Verify(secret, tampered))["ok"]!);
        Assert.False((bool)(await Node.Verify(WebhookSignature.NewSecret(), request))["ok"]!);
        Assert.ThrowsAny<Exception>(() => VerifyWithNuGet(secret, tampered));
    }

    [Fact]
    public async Task The_express_receiver_of_the_integration_guide_accepts_the_json_post_unchanged()
    {
        var (process, port) = await Node.StartExpressReceiver();
        try
        {
            var campaign = await _client.CreateCampaign();
            var (endpointId, _) = await CreateEndpoint($"http://127.0.0.1:{port}/webhook", new { campaignId = campaign });

            await _client.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "eve@example.org", name = "Eve" });

            var deadline = DateTime.UtcNow.AddSeconds(10);
            JsonObject? delivery = null;
            while (DateTime.UtcNow < deadline)
            {
                var log = await _client.GetOk($"/api/v1/webhook-endpoints/{endpointId}/messages");
                delivery = log["data"]!.AsArray().SingleOrDefault()?.AsObject();
                if (delivery is not null && (string)delivery["status"]! != "pending")
                {
                    break;
                }
                await Task.Delay(50);
            }
            Assert.NotNull(delivery);
            Assert.True((string)delivery["status"]! == "succeeded", delivery.ToJsonString());
            var attempt = delivery["attempts"]!.AsArray().Single()!;
            Assert.Equal(200, (int)attempt["statusCode"]!);
            Assert.Contains("Webhook received successfully", (string)attempt["responseExcerpt"]!);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            process.Dispose();
        }
    }
}

/// <summary>Rotation moves the fake clock a day ahead, so it has a server of its own.</summary>
public class SecretRotationTests(WebhookApp app) : IClassFixture<WebhookApp>
{
    private readonly HttpClient _client = app.CreateAdminClient();

    [Fact]
    public async Task During_rotation_both_signatures_are_sent_and_each_secret_verifies()
    {
        if (app.Clock.GetUtcNow() < DateTimeOffset.UtcNow)
        {
            app.Clock.SetUtcNow(DateTimeOffset.UtcNow);
        }
        await using var receiver = await Receiver.StartAsync();
        var created = await _client.PostOk("/api/v1/webhook-endpoints", new { url = receiver.Url(), eventTypes = new[] { "reward.issued" } });
        var id = (string)created["id"]!;
        var oldSecret = (string)created["secret"]!;
        var newSecret = (string)(await _client.PostOk($"/api/v1/webhook-endpoints/{id}/rotate-secret", new { }, System.Net.HttpStatusCode.OK))["secret"]!;

        await app.Publish(EventTypes.RewardIssued);
        var during = await receiver.WaitForAsync(1);

        Assert.Equal(2, during.Header("webhook-signature").Split(' ').Length);
        foreach (var secret in new[] { oldSecret, newSecret })
        {
            var verified = await Node.Verify(secret, during);
            Assert.True((bool)verified["ok"]!, verified.ToJsonString());
        }
        // StandardWebhooks 1.1.2 (NuGet) compares the whole header against the last signature of a list, so each
        // signature is handed to it on its own.
        var signatures = during.Header("webhook-signature").Split(' ');
        new StandardWebhook(newSecret).Verify(during.Body, NuGetHeaders(during, signatures[0]));
        new StandardWebhook(oldSecret).Verify(during.Body, NuGetHeaders(during, signatures[1]));

        app.Clock.Advance(TimeSpan.FromHours(25));
        var messageId = await app.Publish(EventTypes.RewardIssued);
        var after = await receiver.WaitForAsync(2);
        var timestamp = long.Parse(after.Header("webhook-timestamp"));
        Assert.Equal(WebhookSignature.Sign(newSecret, messageId, timestamp, after.Body), after.Header("webhook-signature"));
        Assert.Null((await _client.GetOk($"/api/v1/webhook-endpoints/{id}/secret"))["previousSecret"]);
    }

    private static HeaderDictionary NuGetHeaders(ReceivedRequest request, string signature) => new()
    {
        ["webhook-id"] = request.Header("webhook-id"),
        ["webhook-timestamp"] = request.Header("webhook-timestamp"),
        ["webhook-signature"] = signature,
    };
}

/// <summary>With polling all but off, a write still reaches the receiver at once: the commit itself wakes the engine.</summary>
public class DeliveryLatencyTests(DeliveryLatencyTests.SlowPollApp app) : IClassFixture<DeliveryLatencyTests.SlowPollApp>
{
    public sealed class SlowPollApp : WebhookApp
    {
        protected override IDictionary<string, string?> Settings
        {
            get
            {
                var settings = base.Settings;
                settings["Webhooks:PollInterval"] = "00:10:00";
                return settings;
            }
        }
    }

    [Fact]
    public async Task The_first_attempt_follows_the_write_without_waiting_for_the_poll()
    {
        var client = app.CreateAdminClient();
        await using var receiver = await Receiver.StartAsync();
        var campaign = await client.CreateCampaign();
        await client.PostOk("/api/v1/webhook-endpoints", new { url = receiver.Url(), campaignId = campaign });

        // Warm up connections and the engine once, then measure.
        await client.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "warm@example.com" });
        await receiver.WaitForAsync(1);
        var watch = Stopwatch.StartNew();
        await client.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "fast@example.com" });
        await receiver.WaitForAsync(2, seconds: 5);

        // Typically a few milliseconds; the bound leaves room for a loaded test machine and is still far below the
        // 10-minute poll, which is what this proves the write did not wait for.
        Assert.True(watch.ElapsedMilliseconds < 5000, $"took {watch.ElapsedMilliseconds} ms");
    }
}
