using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Web;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

public class WebhookDeliveryTests(WebhookApp app) : IClassFixture<WebhookApp>, IAsyncLifetime
{
    private readonly HttpClient _client = app.CreateAdminClient();
    private readonly List<string> _endpoints = [];

    /// <summary>
    /// Each test starts a second later than the last one ended: its new endpoints then never receive an earlier
    /// test's messages (an endpoint receives messages written from its creation instant on).
    /// </summary>
    public Task InitializeAsync()
    {
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        return Task.CompletedTask;
    }

    /// <summary>Tests share one server and clock: each removes its endpoints so later tests' messages do not reach them.</summary>
    public async Task DisposeAsync()
    {
        foreach (var id in _endpoints)
        {
            await _client.DeleteAsync($"/api/v1/webhook-endpoints/{id}");
        }
    }

    private async Task<(Receiver Receiver, string EndpointId, string Secret)> Endpoint(object? extra = null, string path = "/hook")
    {
        var receiver = await Receiver.StartAsync();
        var body = JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(extra ?? new { }))!.AsObject();
        body["url"] = receiver.Url(path);
        var created = await _client.PostOk("/api/v1/webhook-endpoints", body);
        _endpoints.Add((string)created["id"]!);
        return (receiver, (string)created["id"]!, (string)created["secret"]!);
    }

    [Fact]
    public async Task Json_format_posts_the_envelope_signed_with_the_outbox_id_as_webhook_id()
    {
        var (receiver, endpointId, secret) = await Endpoint(new { eventTypes = new[] { "referral.approved" } });
        await using var _ = receiver;

        var at = app.Clock.GetUtcNow();
        var messageId = await app.Publish(EventTypes.ReferralApproved);
        var request = await receiver.WaitForAsync(1);

        Assert.Equal("POST", request.Method);
        Assert.StartsWith("application/json", request.ContentType);
        Assert.Equal(messageId, request.Header("webhook-id"));
        Assert.Equal(at.ToUnixTimeSeconds().ToString(), request.Header("webhook-timestamp"));
        Assert.Equal(WebhookSignature.Sign(secret, messageId, long.Parse(request.Header("webhook-timestamp")), request.Body),
            request.Header("webhook-signature"));
        Assert.StartsWith("req_", request.Header("x-request-id"));
        var envelope = JsonNode.Parse(request.Body)!;
        Assert.Equal("referral.approved", (string)envelope["type"]!);
        Assert.Equal(WebhookPayload.Timestamp(at), (string)envelope["timestamp"]!);
        Assert.Equal("Ann Lee's referral of Bob Stone was approved in Spring referral.", (string)envelope["message"]!);
        Assert.Equal("ref_0196f1c4e3068f2a0b5c7d9e1f3a5b72", (string)envelope["data"]!["referral"]!["id"]!);

        var delivery = await app.WaitForDelivery(_client, messageId, endpointId, d => (string)d["status"]! == "succeeded");
        var attempt = delivery["attempts"]!.AsArray().Single()!;
        Assert.Equal(1, (int)attempt["number"]!);
        Assert.Equal(200, (int)attempt["statusCode"]!);
        Assert.Equal("ok", (string)attempt["responseExcerpt"]!);
        Assert.Equal(request.Header("x-request-id"), (string)attempt["requestId"]!);
        Assert.True((long)attempt["latencyMs"]! >= 0);
    }

    [Fact]
    public async Task Form_format_posts_flat_snake_case_fields()
    {
        var (receiver, _, secret) = await Endpoint(new { format = "form", eventTypes = new[] { "reward.issued" } });
        await using var _ = receiver;

        var messageId = await app.Publish(EventTypes.RewardIssued);
        var request = await receiver.WaitForAsync(1);

        Assert.Equal("POST", request.Method);
        Assert.StartsWith("application/x-www-form-urlencoded", request.ContentType);
        var form = HttpUtility.ParseQueryString(request.Body);
        Assert.Equal("reward.issued", form["type"]);
        Assert.Equal("ref_0196f1c4e3068f2a0b5c7d9e1f3a5b72", form["referral_id"]);
        Assert.Equal("ann@example.com", form["advocate_email"]);
        Assert.Equal("crm-42", form["advocate_custom_value"]);
        Assert.Equal("rebate", form["reward_incentive_type"]);
        Assert.Equal("120.5", form["event_purchase_value"]);
        Assert.Equal(WebhookSignature.Sign(secret, messageId, long.Parse(request.Header("webhook-timestamp")), request.Body),
            request.Header("webhook-signature"));
    }

    [Fact]
    public async Task Query_format_sends_a_conversion_as_a_GET_with_the_classic_parameter_names()
    {
        var (receiver, _, secret) = await Endpoint(new { format = "query", eventTypes = new[] { "conversion" } }, "/callback?token=abc");
        await using var _ = receiver;

        var messageId = await app.Publish(EventTypes.Conversion);
        var request = await receiver.WaitForAsync(1);

        Assert.Equal("GET", request.Method);
        Assert.Equal("/callback", request.Path);
        Assert.Equal("", request.Body);
        var query = HttpUtility.ParseQueryString(request.Query);
        Assert.Equal<string?>(
            ["token", "conversion", "referrer_name", "referrer_email", "referee_name", "referee_email", "orderID", "purchaseValue",
             "referrer_converts", "referrer_customValue", "goal_complete"],
            query.AllKeys.ToList());
        Assert.Equal("abc", query["token"]);
        Assert.Equal("success", query["conversion"]);
        Assert.Equal("Ann Lee", query["referrer_name"]);
        Assert.Equal("ORD-1001", query["orderID"]);
        Assert.Equal("120.50", query["purchaseValue"]);
        Assert.Equal("5", query["referrer_converts"]);
        Assert.Equal("1", query["goal_complete"]);
        // A GET has no body: the signature covers the query string exactly as it arrived, without its '?'.
        Assert.StartsWith("?token=abc&conversion=success&referrer_name=Ann%20Lee&", request.Query);
        Assert.Equal(WebhookSignature.Sign(secret, messageId, long.Parse(request.Header("webhook-timestamp")), request.Query[1..]),
            request.Header("webhook-signature"));
    }

    [Fact]
    public async Task Custom_headers_are_sent_and_redirects_are_not_followed()
    {
        var (receiver, endpointId, _) = await Endpoint(new
        {
            eventTypes = new[] { "referral.voided" },
            headers = new Dictionary<string, string> { ["X-Api-Key"] = "secret-key" },
        });
        await using var _ = receiver;
        receiver.Respond = (_, _) => new Reply(302, "", Headers: new Dictionary<string, string> { ["Location"] = receiver.Url("/elsewhere") });

        var messageId = await app.Publish(EventTypes.ReferralVoided);
        var request = await receiver.WaitForAsync(1);
        Assert.Equal("secret-key", request.Header("x-api-key"));

        var delivery = await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! == 1);
        Assert.Equal("pending", (string)delivery["status"]!);
        Assert.Equal(302, (int)delivery["lastStatusCode"]!);
        await receiver.AssertStillAsync(1);
    }

    [Fact]
    public async Task Attempt_log_keeps_the_sent_headers_with_custom_headers_and_credentials_redacted()
    {
        var custom = new Dictionary<string, string> { ["Authorization"] = "Bearer crm-token", ["X-Shop"] = "shop-secret-1" };
        var (accepting, acceptingId, _) = await Endpoint(new { eventTypes = new[] { "referral.voided" }, headers = custom });
        var (failing, failingId, _) = await Endpoint(new { eventTypes = new[] { "referral.voided" }, headers = custom });
        await using var a = accepting;
        await using var f = failing;
        failing.Respond = (_, _) => new Reply(500, "down");

        var messageId = await app.Publish(EventTypes.ReferralVoided);
        var received = await accepting.WaitForAsync(1);
        await failing.WaitForAsync(1);

        // Both ways an attempt is recorded: the bulk path of 2xx answers and the tracked path of failures.
        foreach (var (endpointId, done) in new[] { (acceptingId, "succeeded"), (failingId, "pending") })
        {
            var delivery = await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! == 1);
            Assert.Equal(done, (string)delivery["status"]!);
            // Names as HttpClient spelled them on the wire; header names are case-insensitive.
            var headers = new Dictionary<string, string>(delivery["attempts"]![0]!["requestHeaders"]!.AsObject()
                .Select(h => KeyValuePair.Create(h.Key, (string)h.Value!)), StringComparer.OrdinalIgnoreCase);
            Assert.Equal(messageId, headers["webhook-id"]);
            Assert.Matches(@"^\d+$", headers["webhook-timestamp"]);
            Assert.StartsWith("v1,", headers["webhook-signature"]);
            Assert.StartsWith("application/json", headers["Content-Type"]);
            Assert.Equal((string)delivery["attempts"]![0]!["requestId"]!, headers["X-Request-Id"]);
            Assert.Equal("[redacted]", headers["Authorization"]);
            Assert.Equal("[redacted]", headers["X-Shop"]);
            Assert.DoesNotContain("crm-token", delivery.ToJsonString());
            Assert.DoesNotContain("shop-secret-1", delivery.ToJsonString());
        }
        var accepted = await app.Delivery(_client, messageId, acceptingId);
        Assert.Equal(received.Header("webhook-signature"), (string)accepted["attempts"]![0]!["requestHeaders"]!["webhook-signature"]!);

        var stored = await app.Db(db => db.WebhookAttempts.AsNoTracking().Where(x => x.EndpointId == acceptingId || x.EndpointId == failingId)
            .Select(x => x.RequestHeaders).ToListAsync());
        Assert.Equal(2, stored.Count);
        Assert.All(stored, json => Assert.DoesNotContain("crm-token", json!));

        var dashboard = await DashboardClient.SignedIn(app);
        var page = System.Net.WebUtility.HtmlDecode(await dashboard.Page(
            $"/admin/webhooks/{acceptingId}/messages/{(string)accepted["id"]!}"));
        Assert.Contains(received.Header("webhook-signature"), page);
        Assert.Contains("[redacted]", page);
        Assert.DoesNotContain("crm-token", page);
        Assert.DoesNotContain("shop-secret-1", page);
    }

    [Fact]
    public async Task Filters_pick_event_types_and_campaigns_and_new_endpoints_get_no_old_messages()
    {
        var campaign = await _client.CreateCampaign();
        var (approvedOnly, _, _) = await Endpoint(new { eventTypes = new[] { "referral.qualified" } });
        var (campaignOnly, _, _) = await Endpoint(new { campaignId = campaign, eventTypes = new[] { "referral.qualified", "referral.created" } });
        await using var a = approvedOnly;
        await using var c = campaignOnly;

        var other = await app.Publish(EventTypes.ReferralQualified, "cmp_other");
        var created = await app.Publish(EventTypes.ReferralCreated, campaign);
        var old = await app.Publish(EventTypes.ReferralQualified, campaign);
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        var (late, lateId, _) = await Endpoint(new { eventTypes = new[] { "referral.qualified" } });
        await using var l = late;

        await approvedOnly.WaitForAsync(2);
        await campaignOnly.WaitForAsync(2);
        await approvedOnly.AssertStillAsync(2);
        Assert.Equal(2, campaignOnly.Requests.Count);
        Assert.Equal(new[] { other, old }.Order(), approvedOnly.Requests.Select(r => r.Header("webhook-id")).Order());
        Assert.Equal(new[] { created, old }.Order(), campaignOnly.Requests.Select(r => r.Header("webhook-id")).Order());
        Assert.Empty(late.Requests);
        var message = await _client.GetOk($"/api/v1/messages/{old}");
        Assert.DoesNotContain(message["deliveries"]!.AsArray(), d => (string)d!["endpointId"]! == lateId);
    }

    [Fact]
    public async Task Retries_follow_the_schedule_with_the_same_webhook_id_until_failed()
    {
        var (receiver, endpointId, _) = await Endpoint(new { eventTypes = new[] { "reward.blocked" } });
        await using var _ = receiver;
        receiver.Respond = (_, _) => new Reply(500, "boom");

        var messageId = await app.Publish(EventTypes.RewardBlocked);
        await receiver.WaitForAsync(1);

        TimeSpan[] waits = [TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(30), TimeSpan.FromHours(2),
            TimeSpan.FromHours(5), TimeSpan.FromHours(10), TimeSpan.FromHours(10)];
        for (var i = 0; i < waits.Length; i++)
        {
            await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! == i + 1);
            // Not before the schedule (less 10 % jitter), but by its end (plus 10 %).
            app.Clock.Advance(waits[i] * 0.89);
            await receiver.AssertStillAsync(i + 1, 150);
            app.Clock.Advance(waits[i] * 0.22);
            await receiver.WaitForAsync(i + 2);
        }

        var delivery = await app.WaitForDelivery(_client, messageId, endpointId, d => (string)d["status"]! == "failed");
        Assert.Equal(8, (int)delivery["attemptCount"]!);
        Assert.Equal(Enumerable.Range(1, 8), delivery["attempts"]!.AsArray().Select(a => (int)a!["number"]!));
        Assert.All(delivery["attempts"]!.AsArray(), a => Assert.Equal(500, (int)a!["statusCode"]!));
        Assert.Equal("boom", (string)delivery["attempts"]![0]!["responseExcerpt"]!);
        Assert.All(receiver.Requests, r => Assert.Equal(messageId, r.Header("webhook-id")));
        app.Clock.Advance(TimeSpan.FromDays(1));
        await receiver.AssertStillAsync(8);

        var failed = await _client.GetOk($"/api/v1/webhook-endpoints/{endpointId}/messages?status=failed");
        Assert.Equal(messageId, (string)failed["data"]!.AsArray().Single()!["messageId"]!);
        Assert.True((bool)(await _client.GetOk($"/api/v1/webhook-endpoints/{endpointId}"))["enabled"]!);
    }

    [Fact]
    public async Task Retries_until_receiver_answers_2xx()
    {
        var (receiver, endpointId, _) = await Endpoint(new { eventTypes = new[] { "referral.created" } });
        await using var _ = receiver;
        receiver.Respond = (n, _) => n < 3 ? new Reply(503, "busy") : new Reply(204, "");

        var messageId = await app.Publish(EventTypes.ReferralCreated);
        await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! == 1);
        app.Clock.Advance(TimeSpan.FromSeconds(6));
        await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! == 2);
        app.Clock.Advance(TimeSpan.FromMinutes(6));
        await receiver.WaitForAsync(3);

        var delivery = await app.WaitForDelivery(_client, messageId, endpointId, d => (string)d["status"]! == "succeeded");
        Assert.Equal([503, 503, 204], delivery["attempts"]!.AsArray().Select(a => (int)a!["statusCode"]!));
        Assert.Null((await app.Endpoint(endpointId)).FailingSince);
    }

    [Fact]
    public async Task Retry_after_on_429_is_honoured()
    {
        var (receiver, endpointId, _) = await Endpoint(new { eventTypes = new[] { "participant.joined" } });
        await using var _ = receiver;
        receiver.Respond = (n, _) => n == 1
            ? new Reply(429, "slow down", Headers: new Dictionary<string, string> { ["Retry-After"] = "120" })
            : new Reply();

        var messageId = await app.Publish(EventTypes.ParticipantJoined);
        await receiver.WaitForAsync(1);
        var delivery = await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! == 1);
        Assert.Equal(app.Clock.GetUtcNow().AddSeconds(120), (DateTimeOffset)delivery["nextAttemptAt"]!);

        app.Clock.Advance(TimeSpan.FromSeconds(100));
        await receiver.AssertStillAsync(1);
        app.Clock.Advance(TimeSpan.FromSeconds(21));
        await receiver.WaitForAsync(2);
        await app.WaitForDelivery(_client, messageId, endpointId, d => (string)d["status"]! == "succeeded");
    }

    [Fact]
    public async Task Gone_disables_the_endpoint_at_once_and_says_so_with_an_event()
    {
        var (watcher, _, _) = await Endpoint(new { eventTypes = new[] { "endpoint.disabled" } });
        var (receiver, endpointId, _) = await Endpoint(new { eventTypes = new[] { "referral.approved" } });
        await using var w = watcher;
        await using var _ = receiver;
        receiver.Respond = (_, _) => new Reply(410, "gone");

        var messageId = await app.Publish(EventTypes.ReferralApproved);
        await receiver.WaitForAsync(1);

        var delivery = await app.WaitForDelivery(_client, messageId, endpointId, d => (string)d["status"]! == "failed");
        Assert.Equal(410, (int)delivery["lastStatusCode"]!);
        var endpoint = await _client.GetOk($"/api/v1/webhook-endpoints/{endpointId}");
        Assert.False((bool)endpoint["enabled"]!);
        Assert.Contains("410", (string)endpoint["disabledReason"]!);
        var notice = JsonNode.Parse((await watcher.WaitForAsync(1)).Body)!;
        Assert.Equal("endpoint.disabled", (string)notice["type"]!);
        Assert.Equal(endpointId, (string)notice["data"]!["endpoint"]!["id"]!);

        // Disabled endpoints get nothing new, and a replay needs it enabled first.
        await app.Publish(EventTypes.ReferralApproved);
        app.Clock.Advance(TimeSpan.FromHours(1));
        await receiver.AssertStillAsync(1);
        Assert.Equal(HttpStatusCode.Conflict, (await _client.PostAsync($"/api/v1/messages/{delivery["id"]}/replay", null)).StatusCode);
    }

    [Fact]
    public async Task An_endpoint_failing_for_five_days_is_disabled()
    {
        var (receiver, endpointId, _) = await Endpoint(new { eventTypes = new[] { "participant.joined" } });
        await using var _ = receiver;
        receiver.Respond = (_, _) => new Reply(500);

        var messageId = await app.Publish(EventTypes.ParticipantJoined);
        await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! == 1);
        var firstFailure = app.Clock.GetUtcNow();
        Assert.Equal(firstFailure, (await app.Endpoint(endpointId)).FailingSince);

        // The first message's next retry, five days on, is the failure that ends it.
        app.Clock.Advance(TimeSpan.FromDays(5));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await app.Endpoint(endpointId)).Enabled && DateTime.UtcNow < deadline)
        {
            await Task.Delay(30);
        }

        var endpoint = await app.Endpoint(endpointId);
        Assert.False(endpoint.Enabled);
        Assert.Contains("failed since", endpoint.DisabledReason);
        var events = await app.Db(db => db.Outbox.AsNoTracking().Where(m => m.Type == "endpoint.disabled").ToListAsync());
        Assert.Contains(events, m => m.Data.Contains(endpointId));
    }

    [Fact]
    public async Task Refused_connections_are_logged_and_retried()
    {
        var closedPort = Node.FreePort();
        var refused = await _client.PostOk("/api/v1/webhook-endpoints",
            new { url = $"http://127.0.0.1:{closedPort}/hook", eventTypes = new[] { "reward.issued" } });
        var refusedId = (string)refused["id"]!;
        _endpoints.Add(refusedId);

        var messageId = await app.Publish(EventTypes.RewardIssued);

        var notConnected = await app.WaitForDelivery(_client, messageId, refusedId, d => (int)d["attemptCount"]! == 1);
        Assert.Equal("pending", (string)notConnected["status"]!);
        Assert.Null(notConnected["attempts"]![0]!["statusCode"]);
        Assert.Contains("refused", (string)notConnected["attempts"]![0]!["error"]!, StringComparison.OrdinalIgnoreCase);

        app.Clock.Advance(TimeSpan.FromSeconds(6));
        await app.WaitForDelivery(_client, messageId, refusedId, d => (int)d["attemptCount"]! == 2);
    }

    [Fact]
    public async Task Replay_sends_a_message_again_with_the_same_webhook_id()
    {
        var (receiver, endpointId, _) = await Endpoint(new { eventTypes = new[] { "referral.qualified" } });
        await using var _ = receiver;

        var messageId = await app.Publish(EventTypes.ReferralQualified);
        await receiver.WaitForAsync(1);
        var delivery = await app.WaitForDelivery(_client, messageId, endpointId, d => (string)d["status"]! == "succeeded");

        var replay = await _client.PostAsync($"/api/v1/messages/{delivery["id"]}/replay", null);
        replay.EnsureStatus(HttpStatusCode.Accepted);
        await receiver.WaitForAsync(2);
        await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! == 2 && (string)d["status"]! == "succeeded");
        var byMessage = await _client.PostAsync($"/api/v1/messages/{messageId}/replay", null);
        byMessage.EnsureStatus(HttpStatusCode.Accepted);
        await receiver.WaitForAsync(3);

        Assert.All(receiver.Requests, r => Assert.Equal(messageId, r.Header("webhook-id")));
        Assert.Equal(receiver.Requests[0].Body, receiver.Requests[2].Body);
        var replayed = await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! == 3 && (string)d["status"]! == "succeeded");
        Assert.Equal([1, 2, 3], replayed["attempts"]!.AsArray().Select(a => (int)a!["number"]!));

        var one = await _client.GetOk($"/api/v1/messages/{delivery["id"]}");
        Assert.Equal(messageId, (string)one["id"]!);
        Assert.Equal("referral.qualified", (string)one["type"]!);
        Assert.Equal((string)delivery["id"]!, (string)one["deliveries"]!.AsArray().Single()!["id"]!);
    }

    [Fact]
    public async Task Recover_requeues_the_failed_messages_since_a_time()
    {
        var (receiver, endpointId, _) = await Endpoint(new { eventTypes = new[] { "reward.blocked" } });
        await using var _ = receiver;
        var healthy = false;
        receiver.Respond = (_, _) => healthy ? new Reply() : new Reply(500);

        var before = await app.Publish(EventTypes.RewardBlocked);
        await app.WaitForDelivery(_client, before, endpointId, d => (int)d["attemptCount"]! == 1);
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var since = app.Clock.GetUtcNow();
        var first = await app.Publish(EventTypes.RewardBlocked);
        var second = await app.Publish(EventTypes.RewardBlocked);
        foreach (var messageId in new[] { before, first, second })
        {
            await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! >= 1);
        }
        for (var step = 0; step < 8; step++)
        {
            app.Clock.Advance(TimeSpan.FromHours(12));
            foreach (var messageId in new[] { before, first, second })
            {
                await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! >= Math.Min(step + 2, 8));
            }
        }
        foreach (var messageId in new[] { before, first, second })
        {
            await app.WaitForDelivery(_client, messageId, endpointId, d => (string)d["status"]! == "failed");
        }
        var sent = receiver.Requests.Count;

        healthy = true;
        // Given in another time zone: the same instant (PostgreSQL's driver writes UTC only).
        var recovered = await _client.PostOk($"/api/v1/webhook-endpoints/{endpointId}/recover",
            new { since = since.ToOffset(TimeSpan.FromHours(2)) }, HttpStatusCode.OK);
        Assert.Equal(2, (int)recovered["recovered"]!);
        await app.WaitForDelivery(_client, first, endpointId, d => (string)d["status"]! == "succeeded");
        await app.WaitForDelivery(_client, second, endpointId, d => (string)d["status"]! == "succeeded");
        await receiver.AssertStillAsync(sent + 2);
        Assert.Equal("failed", (string)(await app.Delivery(_client, before, endpointId))["status"]!);

        var missing = await _client.PostAsJsonAsync($"/api/v1/webhook-endpoints/{endpointId}/recover", new { });
        await missing.AssertValidationProblem("since");
    }

    [Fact]
    public async Task Test_messages_of_any_type_are_sent_at_once_and_answered_with_the_attempt()
    {
        var (receiver, endpointId, _) = await Endpoint(new { eventTypes = new[] { "conversion" } });
        await using var _ = receiver;

        foreach (var type in EventTypes.All)
        {
            var response = await _client.PostOk($"/api/v1/webhook-endpoints/{endpointId}/test", new { eventType = type }, HttpStatusCode.OK);
            Assert.Equal("succeeded", (string)response["status"]!);
            Assert.True((bool)response["test"]!);
            Assert.Equal(200, (int)response["attempts"]![0]!["statusCode"]!);
            var received = JsonNode.Parse(receiver.Requests[^1].Body)!;
            Assert.Equal(type, (string)received["type"]!);
            Assert.Equal((string)response["messageId"]!, receiver.Requests[^1].Header("webhook-id"));
        }
        Assert.Equal(EventTypes.All.Length, receiver.Requests.Count);

        var bad = await _client.PostAsJsonAsync($"/api/v1/webhook-endpoints/{endpointId}/test", new { eventType = "nope" });
        await bad.AssertValidationProblem("eventType");
    }

    // PostgreSQL's text refuses NUL: a binary answer's attempt was never recorded, and the delivery was sent again at
    // every lease, for ever.
    [Fact]
    public async Task A_binary_answer_is_recorded_with_its_excerpt()
    {
        var (receiver, endpointId, _) = await Endpoint();
        await using var _ = receiver;
        receiver.Respond = (_, _) => new Reply(Body: "\u0089PNG\0\0\0\rIHDR");

        var response = await _client.PostOk($"/api/v1/webhook-endpoints/{endpointId}/test", new { eventType = "conversion" }, HttpStatusCode.OK);

        Assert.Equal("succeeded", (string)response["status"]!);
        Assert.Equal("\u0089PNG\uFFFD\uFFFD\uFFFD\rIHDR", (string)response["attempts"]![0]!["responseExcerpt"]!);
    }

    [Fact]
    public async Task A_2xx_to_referral_approved_releases_what_waits_for_the_acknowledgement()
    {
        var (receiver, endpointId, _) = await Endpoint(new { eventTypes = new[] { "referral.approved" } });
        await using var _ = receiver;
        receiver.Respond = (n, _) => n == 1 ? new Reply(500) : new Reply();
        var referralId = "ref_ack_" + Guid.NewGuid().ToString("N");

        var messageId = await app.PublishData(EventTypes.ReferralApproved,
            $$$"""{"referral":{"id":"{{{referralId}}}","status":"approved"}}""");
        await app.WaitForDelivery(_client, messageId, endpointId, d => (int)d["attemptCount"]! == 1);
        lock (app.AcknowledgedReferrals)
        {
            Assert.DoesNotContain(referralId, app.AcknowledgedReferrals);
        }

        app.Clock.Advance(TimeSpan.FromSeconds(6));
        await app.WaitForDelivery(_client, messageId, endpointId, d => (string)d["status"]! == "succeeded");
        lock (app.AcknowledgedReferrals)
        {
            Assert.Single(app.AcknowledgedReferrals, referralId);
        }

        // A test message of the same type acknowledges nothing.
        var count = app.AcknowledgedReferrals.Count;
        await _client.PostOk($"/api/v1/webhook-endpoints/{endpointId}/test", new { eventType = "referral.approved" }, HttpStatusCode.OK);
        Assert.Equal(count, app.AcknowledgedReferrals.Count);
    }

    [Fact]
    public async Task The_message_log_pages_and_filters_by_status()
    {
        var (receiver, endpointId, _) = await Endpoint(new { eventTypes = new[] { "referral.voided" } });
        await using var _ = receiver;
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add(await app.Publish(EventTypes.ReferralVoided));
        }
        await receiver.WaitForAsync(5);
        foreach (var id in ids)
        {
            await app.WaitForDelivery(_client, id, endpointId, d => (string)d["status"]! == "succeeded");
        }

        var first = await _client.GetOk($"/api/v1/webhook-endpoints/{endpointId}/messages?limit=3");
        Assert.Equal(3, first["data"]!.AsArray().Count);
        var second = await _client.GetOk($"/api/v1/webhook-endpoints/{endpointId}/messages?limit=3&cursor={first["nextCursor"]}");
        Assert.Equal(2, second["data"]!.AsArray().Count);
        Assert.Null(second["nextCursor"]);
        // Deliveries made in the same millisecond are in no particular order among themselves.
        Assert.Equal(ids.Order(), first["data"]!.AsArray().Concat(second["data"]!.AsArray()).Select(d => (string)d!["messageId"]!).Order());
        Assert.All(first["data"]!.AsArray(), d => Assert.Single(d!["attempts"]!.AsArray()));

        Assert.Empty((await _client.GetOk($"/api/v1/webhook-endpoints/{endpointId}/messages?status=failed"))["data"]!.AsArray());
        var bad = await _client.GetAsync($"/api/v1/webhook-endpoints/{endpointId}/messages?status=lost");
        await bad.AssertValidationProblem("status");
    }

    [Fact]
    public async Task Participants_joining_through_the_api_reach_the_endpoint()
    {
        var campaign = await _client.CreateCampaign();
        var (receiver, _, _) = await Endpoint(new { campaignId = campaign });
        await using var _ = receiver;

        var joined = await _client.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "zoe@example.com", name = "Zoe" });

        var request = await receiver.WaitForAsync(1);
        var envelope = JsonNode.Parse(request.Body)!;
        Assert.Equal("participant.joined", (string)envelope["type"]!);
        Assert.Equal((string)joined["id"]!, (string)envelope["data"]!["participant"]!["id"]!);
    }
}
