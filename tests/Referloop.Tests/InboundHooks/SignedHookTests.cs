using System.Net;
using System.Text;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.InboundHooks;

public class SignedHookTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();
    private readonly HttpClient _sender = app.CreateAnonymousClient();

    private Task<HttpResponseMessage> PostSigned(string path, string body, string secret, DateTimeOffset at, string id = "msg_1")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        WebhookSignature.Apply(request, [secret], id, at, body);
        return _sender.SendAsync(request);
    }

    [Fact]
    public async Task A_signed_hook_accepts_only_correctly_signed_recent_requests()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "conversion", signed: true);
        Assert.StartsWith("whsec_", hook.Secret);
        Assert.True((bool)(await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}"))["signed"]!);
        var now = app.Clock.GetUtcNow();

        var unsigned = await _sender.PostJson(hook.Path, "{}");
        var wrongSecret = await PostSigned(hook.Path, "{}", WebhookSignature.NewSecret(), now, "msg_2");
        var stale = await PostSigned(hook.Path, "{}", hook.Secret!, now.AddMinutes(-6), "msg_3");
        var good = await PostSigned(hook.Path, "{}", hook.Secret!, now.AddMinutes(-4), "msg_4");

        Assert.Equal(HttpStatusCode.Unauthorized, unsigned.StatusCode);
        Assert.Contains("webhook-signature", (string)(await unsigned.ReadJson())["detail"]!);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongSecret.StatusCode);
        Assert.Contains("does not match", (string)(await wrongSecret.ReadJson())["detail"]!);
        Assert.Equal(HttpStatusCode.Unauthorized, stale.StatusCode);
        Assert.Contains("5 minutes", (string)(await stale.ReadJson())["detail"]!);
        good.EnsureStatus(HttpStatusCode.OK);
        Assert.Equal(1, (int)(await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}"))["conversions"]!);

        var requests = (await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}/requests"))["data"]!.AsArray();
        Assert.Equal(3, requests.Count(r => (string)r!["outcome"]! == "rejected"));
    }

    [Fact]
    public async Task A_redelivered_signed_message_counts_once_by_its_webhook_id()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "conversion", signed: true);
        var now = app.Clock.GetUtcNow();

        (await PostSigned(hook.Path, "{}", hook.Secret!, now, "msg_same")).EnsureStatus(HttpStatusCode.OK);
        var again = await PostSigned(hook.Path, "{}", hook.Secret!, now, "msg_same");

        Assert.True((bool)(await again.ReadJson())["duplicate"]!);
        Assert.Equal(1, (int)(await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}"))["conversions"]!);
    }

    [Fact]
    public async Task A_captured_signed_request_cannot_be_replayed_under_a_new_idempotency_key()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "conversion", signed: true);
        var now = app.Clock.GetUtcNow();

        var first = await PostSigned(hook.Path, "{}", hook.Secret!, now, "msg_captured");
        first.EnsureStatus(HttpStatusCode.OK);
        // The attacker resends the very same signed request, adding a fresh Idempotency-Key each time.
        var replays = new List<HttpResponseMessage>();
        foreach (var key in new[] { "replay-1", "replay-2" })
        {
            var request = new HttpRequestMessage(HttpMethod.Post, hook.Path) { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
            WebhookSignature.Apply(request, [hook.Secret!], "msg_captured", now, "{}");
            request.Headers.Add("Idempotency-Key", key);
            replays.Add(await _sender.SendAsync(request));
        }

        foreach (var replay in replays)
        {
            replay.EnsureStatus(HttpStatusCode.OK);
            Assert.True((bool)(await replay.ReadJson())["duplicate"]!);
        }
        Assert.Equal(1, (int)(await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}"))["conversions"]!);
    }
}

public sealed class LowRateLimitApp : ReferloopApp
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["InboundHooks:RateLimit:Permits"] = "3",
        ["InboundHooks:RateLimit:WindowSeconds"] = "600",
    };
}

public class HookRateLimitTests(LowRateLimitApp app) : IClassFixture<LowRateLimitApp>
{
    [Fact]
    public async Task The_limit_is_per_sending_address_whatever_token_it_uses()
    {
        var admin = app.CreateAdminClient();
        var campaign = await admin.CreateCampaign();
        var hook = await admin.CreateHook(campaign, "conversion");
        var other = await admin.CreateHook(campaign, "conversion");

        for (var i = 0; i < 2; i++)
        {
            (await PostFrom("192.0.2.61", hook.Path)).EnsureStatus(HttpStatusCode.OK);
        }
        // Inventing tokens buys nothing: an unknown token spends the same address's budget.
        (await PostFrom("192.0.2.61", "/hooks/invented-token-0123456789")).EnsureStatus(HttpStatusCode.Unauthorized);
        var limited = await PostFrom("192.0.2.61", other.Path);

        limited.EnsureStatus(HttpStatusCode.TooManyRequests);
        Assert.True(limited.Headers.RetryAfter is not null);
        Assert.Equal("application/problem+json", limited.Content.Headers.ContentType?.MediaType);
        (await PostFrom("192.0.2.62", hook.Path)).EnsureStatus(HttpStatusCode.OK);
        Assert.Equal(3, (int)(await admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}"))["conversions"]!);
    }

    private Task<HttpResponseMessage> PostFrom(string address, string path)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent([]) };
        request.Headers.Add(ClientAddress.Header, address);
        return app.CreateAnonymousClient().SendAsync(request);
    }
}
