using System.Net;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;

namespace Referloop.Tests.InboundHooks;

/// <summary>Bodies that do not match their Content-Type, broken or oversized bodies: refused with a message, kept, never half-processed.</summary>
public class HostileInputTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();
    private readonly HttpClient _sender = app.CreateAnonymousClient();

    public static TheoryData<string, string?, HttpStatusCode, string> Refused => new()
    {
        { """{"email": "ann@example.com"}""", "text/plain", HttpStatusCode.UnsupportedMediaType, "Content-Type 'text/plain' is not accepted" },
        { """{"email": "ann@example.com"}""", null, HttpStatusCode.UnsupportedMediaType, "Content-Type '(none)' is not accepted" },
        { """{"email": "ann@example.com"}""", "application/x-www-form-urlencoded", HttpStatusCode.UnsupportedMediaType, "looks like JSON" },
        { "email=ann%40example.com&firstName=Ann", "application/json", HttpStatusCode.UnsupportedMediaType, "looks like form data" },
        { """{"email": "ann@example.com",""", "application/json", HttpStatusCode.BadRequest, "not valid JSON (line 1" },
        { """["ann@example.com"]""", "application/json", HttpStatusCode.BadRequest, "not an object" },
        { "products[0][name]=T&products[5000][name]=U", "application/x-www-form-urlencoded", HttpStatusCode.BadRequest, "index above 999" },
        { "email=a%40b.co&products[0=1", "application/x-www-form-urlencoded", HttpStatusCode.BadRequest, "malformed" },
        { """{"email": "ann@example.com", "email": "bob@example.com"}""", "application/json", HttpStatusCode.BadRequest, "not valid JSON" },
        { """{"email": "ann@example.com", "firstName": "A\u0000"}""", "application/json", HttpStatusCode.BadRequest, "'firstName' holds a NUL character" },
        { """{"email": "ann@example.com", "products": [{"n\u0000": 1}]}""", "application/json", HttpStatusCode.BadRequest, "'products[0].n\\u0000' holds a NUL" },
        { "email=ann%40example.com&products[0][name]=a%00b", "application/x-www-form-urlencoded", HttpStatusCode.BadRequest, "'products[0].name' holds a NUL" },
    };

    [Fact]
    public async Task A_body_with_a_NUL_byte_is_refused_and_kept_with_the_replacement_character_in_its_place()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "stream");

        var response = await _sender.PostForm(hook.Path, "email=ann%40example.com&firstName=A\0nn");

        response.EnsureStatus(HttpStatusCode.BadRequest);
        var problem = await response.ReadJson();
        Assert.Contains("'firstName' holds a NUL character", (string)problem["detail"]!);
        var requestId = (string)problem["requestId"]!;
        var stored = await app.WithDb(db => db.InboundRequests.AsNoTracking().SingleAsync(r => r.Id == requestId));
        Assert.Equal("email=ann%40example.com&firstName=A\uFFFDnn", stored.Body);
        Assert.Equal("rejected", stored.Outcome);
    }

    [Fact]
    public async Task A_stream_item_with_an_email_longer_than_any_address_is_refused_naming_the_field()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "stream");

        var response = await _sender.PostJson(hook.Path, $$"""{"email": "{{new string('a', 300)}}@example.com"}""", idempotencyKey: "long-1");

        response.EnsureStatus(HttpStatusCode.BadRequest);
        var errors = (await response.ReadJson())["errors"]!;
        Assert.Contains("254", (string)errors["email"]![0]!);
    }

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task A_body_that_does_not_match_its_content_type_is_refused_with_a_clear_message_and_kept(string body,
        string? contentType, HttpStatusCode status, string message)
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "stream");

        var response = await _sender.PostRaw(hook.Path, body, contentType);

        response.EnsureStatus(status);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.ReadJson();
        Assert.Contains(message, (string)problem["detail"]!);
        var requestId = (string)problem["requestId"]!;
        var stored = await app.WithDb(db => db.InboundRequests.AsNoTracking().SingleAsync(r => r.Id == requestId));
        Assert.Equal("rejected", stored.Outcome);
        Assert.Equal(body, stored.Body);
        Assert.False(await app.WithDb(db => db.SocialProofItems.AnyAsync(i => i.CampaignId == campaign)));
    }

    [Fact]
    public async Task A_body_over_1_MiB_gets_413_and_only_its_size_is_kept()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "stream");
        var huge = "{\"email\": \"ann@example.com\", \"padding\": \"" + new string('x', 2 * 1024 * 1024) + "\"}";

        var response = await _sender.PostJson(hook.Path, huge);

        response.EnsureStatus(HttpStatusCode.RequestEntityTooLarge);
        Assert.Contains("at most 1 MiB", (string)(await response.ReadJson())["detail"]!);
        var stored = await app.WithDb(db => db.InboundRequests.AsNoTracking().SingleAsync(r => r.HookId == hook.Id));
        Assert.Equal("rejected", stored.Outcome);
        Assert.Null(stored.Body);
        Assert.True(stored.BodyBytes > 1024 * 1024);
        Assert.False(await app.WithDb(db => db.SocialProofItems.AnyAsync(i => i.CampaignId == campaign)));
    }

    [Fact]
    public async Task A_body_just_under_1_MiB_is_accepted()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "stream");
        var prefix = "{\"email\": \"ann@example.com\", \"padding\": \"";
        var body = prefix + new string('x', 1024 * 1024 - prefix.Length - 2) + "\"}";

        (await _sender.PostJson(hook.Path, body)).EnsureStatus(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_stream_request_without_any_email_is_refused_naming_the_field()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "stream");

        var response = await _sender.PostJson(hook.Path, """{"firstName": "Ann", "timestamp": "yesterday", "ip": "999.1.1.1", "products": [{"price": 5}]}""");

        var problem = await response.AssertValidationProblem("email", "timestamp", "ip", "products[0].name", "products[0].link");
        var requestId = ((string)problem["detail"]!).Split(' ')[^1].TrimEnd('.');
        var stored = await app.WithDb(db => db.InboundRequests.AsNoTracking().SingleAsync(r => r.Id == requestId));
        Assert.Equal("rejected", stored.Outcome);
        Assert.Contains("email", stored.Reason);
        Assert.False(await app.WithDb(db => db.SocialProofItems.AnyAsync(i => i.CampaignId == campaign)));
    }

    [Fact]
    public async Task Script_tags_stay_text_and_javascript_links_are_dropped()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "stream");
        var body = new JsonObject
        {
            ["email"] = "mallory@example.com",
            ["firstName"] = "<script>alert(1)</script>",
            ["lastName"] = "<img src=x onerror=alert(2)>",
            ["city"] = "<b>Miami</b>",
            ["productName"] = "<script>steal()</script>",
            ["productLink"] = "javascript:alert(3)",
            ["productImage"] = "data:image/svg+xml,<svg onload=alert(4)>",
        }.ToJsonString();

        var response = await _sender.PostJson(hook.Path, body);
        response.EnsureStatus(HttpStatusCode.OK);
        var result = (await response.ReadJson())["result"]!;
        Assert.Contains("productLink was dropped: only absolute http or https links are shown.", result["warnings"]!.AsArray().Select(w => (string)w!));

        var feed = await _admin.GetAsync($"/api/v1/campaigns/{campaign}/social-proof");
        var text = await feed.Content.ReadAsStringAsync();
        Assert.Equal("nosniff", feed.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.DoesNotContain("<script>", text);
        Assert.Contains("\\u003Cscript\\u003E", text);
        Assert.DoesNotContain("javascript:", text);
        Assert.DoesNotContain("data:image", text);
        var item = JsonNode.Parse(text)!["data"]![0]!;
        Assert.Equal("<script>alert(1)</script>", (string)item["firstName"]!);
        Assert.Equal("I.", (string)item["lastInitial"]!);
        Assert.Equal("<script>steal()</script>", (string)item["product"]!["name"]!);
        Assert.Null(item["product"]!["link"]);
        Assert.Null(item["product"]!["image"]);
    }

    [Fact]
    public async Task Javascript_links_in_products_are_dropped_but_the_product_is_kept()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "stream");

        var response = await _sender.PostForm(hook.Path, Hooks.Form(("email", "eve@example.com"),
            ("products[0][name]", "Hat"), ("products[0][link]", "javascript:alert(1)"), ("products[0][image]", "JAVASCRIPT:alert(2)")));

        response.EnsureStatus(HttpStatusCode.OK);
        var item = (await response.ReadJson())["result"]!["item"]!;
        Assert.Equal("Hat", (string)item["product"]!["name"]!);
        Assert.Null(item["product"]!["link"]);
        Assert.Null(item["product"]!["image"]);
    }
}
