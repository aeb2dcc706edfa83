using System.Net;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;

namespace Referloop.Tests.InboundHooks;

public class InboundHookApiTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();
    private readonly HttpClient _sender = app.CreateAnonymousClient();

    [Fact]
    public async Task Creating_a_hook_shows_its_url_once_and_stores_only_the_token_hash()
    {
        var campaign = await _admin.CreateCampaign();
        var created = await _admin.PostOk("/api/v1/inbound-hooks", new { campaignId = campaign, kind = "stream", name = "Shopify orders" });

        Assert.StartsWith("hok_", (string)created["id"]!);
        Assert.Equal("stream", (string)created["kind"]!);
        Assert.Equal(campaign, (string)created["campaignId"]!);
        var url = (string)created["url"]!;
        Assert.Matches("^http://referloop.test/hooks/hk_[A-Za-z0-9_-]{43}$", url);
        var token = url[(url.LastIndexOf('/') + 1)..];
        Assert.Null(created["signingSecret"]);

        var fetched = await _admin.GetOk($"/api/v1/inbound-hooks/{created["id"]}");
        Assert.Null(fetched["url"]);
        Assert.Equal($"http://referloop.test/hooks/{token[..10]}…", (string)fetched["urlPrefix"]!);
        Assert.DoesNotContain(token, fetched.ToJsonString());

        var stored = await app.WithDb(db => db.InboundHooks.AsNoTracking().SingleAsync(h => h.Id == (string)created["id"]!));
        Assert.NotEqual(token, stored.TokenHash);
        Assert.Equal(64, stored.TokenHash.Length);

        var list = await _admin.GetOk($"/api/v1/inbound-hooks?campaignId={campaign}");
        Assert.Single(list["data"]!.AsArray());
    }

    [Fact]
    public async Task Creating_a_hook_names_each_bad_field()
    {
        var response = await _admin.PostAsync("/api/v1/inbound-hooks",
            JsonContent(new JsonObject { ["campaignId"] = null, ["kind"] = "purchase" }));
        await response.AssertValidationProblem("campaignId", "kind");

        var unknown = await _admin.PostAsync("/api/v1/inbound-hooks", JsonContent(new JsonObject { ["campaignId"] = "cmp_nope", ["kind"] = "stream" }));
        await unknown.AssertValidationProblem("campaignId");
    }

    [Fact]
    public async Task Hooks_need_an_admin_key()
    {
        var response = await _sender.GetAsync("/api/v1/inbound-hooks");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Unknown_and_revoked_tokens_get_the_same_401()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "conversion");
        (await _sender.PostRaw(hook.Path, "", null)).EnsureStatus(HttpStatusCode.OK);

        var revoke = await _admin.DeleteAsync($"/api/v1/inbound-hooks/{hook.Id}");
        revoke.EnsureStatus(HttpStatusCode.NoContent);
        var revoked = await _sender.PostRaw(hook.Path, "", null);
        var unknown = await _sender.PostRaw("/hooks/hk_" + new string('x', 43), "", null);

        Assert.Equal(HttpStatusCode.Unauthorized, revoked.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        Assert.Equal("application/problem+json", revoked.Content.Headers.ContentType?.MediaType);
        var revokedBody = await revoked.ReadJson();
        var unknownBody = await unknown.ReadJson();
        revokedBody.Remove("traceId");
        unknownBody.Remove("traceId");
        Assert.Equal(unknownBody.ToJsonString(), revokedBody.ToJsonString());
        Assert.NotNull((await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}"))["revokedAt"]);
    }

    [Fact]
    public async Task A_bare_post_counts_one_conversion_shown_on_the_hook()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "conversion");

        var first = await (await _sender.PostRaw(hook.Path, "", null)).ReadJson();
        var second = await (await _sender.PostJson(hook.Path, """{"anything": "goes"}""")).ReadJson();
        var third = await (await _sender.PostForm(hook.Path, "a=1")).ReadJson();

        Assert.Equal("processed", (string)first["outcome"]!);
        Assert.Equal(1, (int)first["result"]!["conversions"]!);
        Assert.Equal(2, (int)second["result"]!["conversions"]!);
        Assert.Equal(3, (int)third["result"]!["conversions"]!);
        Assert.Equal(3, (int)(await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}"))["conversions"]!);
    }

    [Theory]
    [InlineData("order=1001&total=55", null)]
    [InlineData("""{"order": 1001}""", null)]
    [InlineData("not json { at all", "text/plain")]
    [InlineData("{broken", "application/json")]
    public async Task A_conversion_hook_counts_a_post_whatever_its_body_and_content_type(string body, string? contentType)
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "conversion");

        var response = await _sender.PostRaw(hook.Path, body, contentType);

        response.EnsureStatus(HttpStatusCode.OK);
        var answer = await response.ReadJson();
        Assert.Equal("processed", (string)answer["outcome"]!);
        Assert.Equal(1, (int)answer["result"]!["conversions"]!);
        var stored = await app.WithDb(db => db.InboundRequests.AsNoTracking().SingleAsync(r => r.Id == (string)answer["requestId"]!));
        Assert.Equal(body, stored.Body);
    }

    [Fact]
    public async Task The_same_idempotency_key_is_processed_once_and_answered_again()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "conversion");

        var first = await (await _sender.PostRaw(hook.Path, "", null, idempotencyKey: "order-1001")).ReadJson();
        var again = await _sender.PostRaw(hook.Path, "", null, idempotencyKey: "order-1001");
        again.EnsureStatus(HttpStatusCode.OK);
        var repeat = await again.ReadJson();
        var concurrent = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => _sender.PostRaw(hook.Path, "", null, idempotencyKey: "order-1002")));

        Assert.True((bool)repeat["duplicate"]!);
        Assert.Equal("duplicate", (string)repeat["outcome"]!);
        Assert.Equal(first["result"]!.ToJsonString(), repeat["result"]!.ToJsonString());
        Assert.All(concurrent, r => r.EnsureStatus(HttpStatusCode.OK));
        Assert.Equal(2, (int)(await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}"))["conversions"]!);

        var requests = (await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}/requests"))["data"]!.AsArray();
        Assert.Equal(8, requests.Count);
        Assert.Equal(2, requests.Count(r => (string)r!["outcome"]! == "processed"));
        Assert.Equal(6, requests.Count(r => (string)r!["outcome"]! == "duplicate"));
        Assert.Contains(requests, r => (string?)r!["idempotencyKey"] == "order-1001" && ((string)r["reason"]!).Contains((string)first["requestId"]!));
    }

    [Fact]
    public async Task Requests_are_listed_newest_first_with_raw_body_headers_and_outcome()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "stream");
        await _sender.PostJson(hook.Path, """{"email": "ann@example.com"}""");
        await _sender.PostRaw(hook.Path, "email=ann", "text/plain");

        var page = await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}/requests?limit=1");
        var newest = page["data"]!.AsArray().Single()!;
        Assert.Equal("rejected", (string)newest["outcome"]!);
        Assert.Equal("email=ann", (string)newest["body"]!);
        Assert.Equal("text/plain", (string)newest["contentType"]!);
        Assert.Equal("text/plain", (string)newest["headers"]!["content-type"]!);
        Assert.Contains("Content-Type", (string)newest["reason"]!);

        var older = await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}/requests?limit=1&cursor={page["nextCursor"]}");
        var first = older["data"]!.AsArray().Single()!;
        Assert.Equal("processed", (string)first["outcome"]!);
        Assert.Equal("""{"email": "ann@example.com"}""", (string)first["body"]!);
        Assert.NotNull(first["result"]!["item"]);
        Assert.Null(older["nextCursor"]);

        var rejectedOnly = await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}/requests?outcome=rejected");
        Assert.Single(rejectedOnly["data"]!.AsArray());
    }

    [Fact]
    public async Task The_openapi_document_describes_both_body_formats_of_a_hook()
    {
        var document = await _sender.GetOk("/openapi/v1.json");

        var content = document["paths"]!["/hooks/{token}"]!["post"]!["requestBody"]!["content"]!.AsObject();
        Assert.True(content.ContainsKey("application/json"));
        Assert.True(content.ContainsKey("application/x-www-form-urlencoded"));
    }

    private static StringContent JsonContent(JsonNode body) => new(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json");
}
