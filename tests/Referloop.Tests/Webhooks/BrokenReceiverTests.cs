using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

public class BrokenReceiverTests(WebhookApp app) : IClassFixture<WebhookApp>
{
    private readonly HttpClient _client = app.CreateAdminClient();

    [Fact]
    public async Task An_answer_cut_short_while_its_body_is_read_is_a_failed_attempt_recorded_and_retried()
    {
        await using var receiver = RawHttpServer.CutShort("cut short");
        var endpointId = (string)(await _client.PostOk("/api/v1/webhook-endpoints",
            new { url = receiver.Url("/hook"), eventTypes = new[] { "reward.issued" } }))["id"]!;

        var messageId = await app.Publish(EventTypes.RewardIssued);

        var failed = await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! == 1);
        Assert.Equal("pending", (string)failed["status"]!);
        Assert.NotNull(failed["nextAttemptAt"]);
        Assert.False(string.IsNullOrEmpty((string?)failed["attempts"]![0]!["error"]), "the attempt says what went wrong");
        app.Clock.Advance(TimeSpan.FromSeconds(6));
        await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! >= 2);
    }

    [Fact]
    public async Task A_reason_phrase_of_any_length_is_logged_cut_to_200_characters()
    {
        // A status line of over a kilobyte, as a misconfigured proxy may send.
        var reason = string.Concat(Enumerable.Repeat("Service Unavailable, try again later. ", 30));
        await using var receiver = new RawHttpServer($"HTTP/1.1 503 {reason}\r\nContent-Length: 0\r\n\r\n");
        var endpointId = (string)(await _client.PostOk("/api/v1/webhook-endpoints",
            new { url = receiver.Url("/hook"), eventTypes = new[] { "reward.issued" } }))["id"]!;

        var messageId = await app.Publish(EventTypes.RewardIssued);

        var failed = await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! == 1);
        Assert.Equal("pending", (string)failed["status"]!);
        var attempt = failed["attempts"]![0]!;
        Assert.Equal(503, (int)attempt["statusCode"]!);
        Assert.Equal($"The receiver answered 503 {reason[..200]}….", (string)attempt["error"]!);
    }
}
