using Referloop.Tests.Support;
using Referloop.Webhooks;

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
