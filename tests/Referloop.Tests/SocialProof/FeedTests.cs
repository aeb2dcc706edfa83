using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Referloop.Tests.InboundHooks;
using Referloop.Tests.Support;

namespace Referloop.Tests.SocialProof;

public sealed class ShopOriginApp : ReferloopApp
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["SocialProof:AllowedOrigins:0"] = "https://shop.example.com",
    };
}

public class FeedTests(ShopOriginApp app) : IClassFixture<ShopOriginApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();
    private readonly HttpClient _browser = app.CreateAnonymousClient();

    private async Task<(string Campaign, string PublishableKey)> CampaignWithItems()
    {
        var created = await _admin.PostOk("/api/v1/campaigns", Api.SpringCampaign);
        var campaign = (string)created["id"]!;
        var stream = await _admin.CreateHook(campaign, "stream");
        var now = app.Clock.GetUtcNow();
        var threeMinutesAgo = now.AddMinutes(-3).ToUnixTimeSeconds();
        var yesterday = now.AddDays(-1).ToString("O");
        (await _browser.PostJson(stream.Path, $$"""
            {"email": "john.smith@example.com", "lastName": "Smith", "ip": "198.51.100.20", "city": "Miami", "countryCode": "US",
             "stateCode": "FL", "productName": "Sneakers", "productLink": "https://sneakers.com/sneakers", "timestamp": {{threeMinutesAgo}}}
            """)).EnsureStatus(HttpStatusCode.OK);
        (await _browser.PostJson(stream.Path, $$"""{"email": "ann@example.com", "timestamp": "{{yesterday}}"}""")).EnsureStatus(HttpStatusCode.OK);
        return (campaign, (string)created["publishableKey"]!);
    }

    [Fact]
    public async Task The_feed_shows_recent_items_newest_first_with_only_public_fields()
    {
        var (campaign, key) = await CampaignWithItems();

        var response = await _browser.GetAsync($"/api/v1/campaigns/{campaign}/social-proof?key={key}");
        response.EnsureStatus(HttpStatusCode.OK);
        var text = await response.Content.ReadAsStringAsync();
        var feed = JsonNode.Parse(text)!;

        var items = feed["data"]!.AsArray();
        Assert.Equal(2, items.Count);
        var john = items[0]!;
        Assert.Equal("John", (string)john["firstName"]!);
        Assert.Equal("S.", (string)john["lastInitial"]!);
        Assert.Equal("Miami", (string)john["city"]!);
        Assert.Equal("United States", (string)john["country"]!);
        Assert.Equal("Sneakers", (string)john["product"]!["name"]!);
        Assert.Equal("3 minutes ago", (string)john["relativeTime"]!);
        Assert.Equal("1 day ago", (string)items[1]!["relativeTime"]!);
        foreach (var secret in new[] { "john.smith@example.com", "ann@example.com", "198.51.100.20", "Smith", "lastName", "email" })
        {
            Assert.DoesNotContain(secret, text);
        }
    }

    [Fact]
    public async Task The_feed_shows_the_us_state_sent_or_derived_from_its_code()
    {
        var created = await _admin.PostOk("/api/v1/campaigns", Api.SpringCampaign);
        var campaign = (string)created["id"]!;
        var stream = await _admin.CreateHook(campaign, "stream");
        (await _browser.PostJson(stream.Path, """{"email": "ann@example.com", "city": "Austin", "state": "Texas"}"""))
            .EnsureStatus(HttpStatusCode.OK);
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        (await _browser.PostForm(stream.Path, "email=john%40example.com&city=Miami&stateCode=fl")).EnsureStatus(HttpStatusCode.OK);

        var feed = await _browser.GetOk($"/api/v1/campaigns/{campaign}/social-proof?key={created["publishableKey"]}");

        var items = feed["data"]!.AsArray();
        Assert.Equal(("Miami", "Florida", "FL", "United States"),
            ((string)items[0]!["city"]!, (string)items[0]!["state"]!, (string)items[0]!["stateCode"]!, (string)items[0]!["country"]!));
        Assert.Equal(("Austin", "Texas", "TX", "US"),
            ((string)items[1]!["city"]!, (string)items[1]!["state"]!, (string)items[1]!["stateCode"]!, (string)items[1]!["countryCode"]!));
    }

    [Fact]
    public async Task The_feed_counts_conversions_of_the_last_week()
    {
        var (campaign, key) = await CampaignWithItems();
        var conversions = await _admin.CreateHook(campaign, "conversion");
        await _browser.PostRaw(conversions.Path, "", null);
        app.Clock.Advance(TimeSpan.FromDays(8));
        await _browser.PostRaw(conversions.Path, "", null);
        await _browser.PostRaw(conversions.Path, "", null);

        var feed = await _browser.GetOk($"/api/v1/campaigns/{campaign}/social-proof?key={key}&limit=1");

        Assert.Equal(3, (int)feed["conversions"]!["total"]!);
        Assert.Equal(2, (int)feed["conversions"]!["lastWeek"]!);
        Assert.Single(feed["data"]!.AsArray());
    }

    [Fact]
    public async Task The_feed_needs_the_campaigns_publishable_key_or_an_admin_key()
    {
        var (campaign, key) = await CampaignWithItems();
        var (_, otherKey) = await CampaignWithItems();

        Assert.Equal(HttpStatusCode.Unauthorized, (await _browser.GetAsync($"/api/v1/campaigns/{campaign}/social-proof")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _browser.GetAsync($"/api/v1/campaigns/{campaign}/social-proof?key={otherKey}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _browser.GetAsync($"/api/v1/campaigns/cmp_missing/social-proof?key={key}")).StatusCode);
        var withHeader = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/campaigns/{campaign}/social-proof");
        withHeader.Headers.Add("X-Referloop-Key", key);
        (await _browser.SendAsync(withHeader)).EnsureStatus(HttpStatusCode.OK);
        (await _admin.GetAsync($"/api/v1/campaigns/{campaign}/social-proof")).EnsureStatus(HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.NotFound, (await _admin.GetAsync("/api/v1/campaigns/cmp_missing/social-proof")).StatusCode);
        await (await _admin.GetAsync($"/api/v1/campaigns/{campaign}/social-proof?limit=500")).AssertValidationProblem("limit");
    }

    [Fact]
    public async Task Cors_allows_only_the_configured_merchant_origins()
    {
        var (campaign, key) = await CampaignWithItems();

        var allowed = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/campaigns/{campaign}/social-proof?key={key}");
        allowed.Headers.Add("Origin", "https://shop.example.com");
        var other = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/campaigns/{campaign}/social-proof?key={key}");
        other.Headers.Add("Origin", "https://evil.example");
        var preflight = new HttpRequestMessage(HttpMethod.Options, $"/api/v1/campaigns/{campaign}/social-proof");
        preflight.Headers.Add("Origin", "https://shop.example.com");
        preflight.Headers.Add("Access-Control-Request-Method", "GET");
        preflight.Headers.Add("Access-Control-Request-Headers", "x-referloop-key");

        var allowedResponse = await _browser.SendAsync(allowed);
        var otherResponse = await _browser.SendAsync(other);
        var preflightResponse = await _browser.SendAsync(preflight);

        Assert.Equal("https://shop.example.com", allowedResponse.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.False(otherResponse.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.True(preflightResponse.IsSuccessStatusCode, $"preflight answered {(int)preflightResponse.StatusCode}");
        Assert.Equal("https://shop.example.com", preflightResponse.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    [Fact]
    public async Task A_campaign_with_its_own_allowed_origins_answers_cors_with_those_instead_of_the_server_default()
    {
        var (campaign, key) = await CampaignWithItems();
        var (defaulted, defaultKey) = await CampaignWithItems();
        var body = JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(Api.SpringCampaign))!.AsObject();
        body["socialProof"] = new JsonObject
        {
            ["allowedOrigins"] = new JsonArray("https://Other-Shop.example/", "http://localhost:8080"),
        };
        var updated = await (await _admin.PutAsJsonAsync($"/api/v1/campaigns/{campaign}", body)).ReadJson();
        Assert.Equal(["https://other-shop.example", "http://localhost:8080"],
            updated["socialProof"]!["allowedOrigins"]!.AsArray().Select(o => (string)o!));
        var untouched = await _admin.GetOk($"/api/v1/campaigns/{defaulted}");
        Assert.Empty(untouched["socialProof"]!["allowedOrigins"]!.AsArray());

        Assert.Equal("https://other-shop.example", await AllowedOrigin(campaign, key, "https://other-shop.example"));
        Assert.Equal("https://other-shop.example", await AllowedOrigin(campaign, null, "https://other-shop.example"));
        Assert.Null(await AllowedOrigin(campaign, key, "https://shop.example.com"));
        Assert.Equal("https://shop.example.com", await AllowedOrigin(defaulted, defaultKey, "https://shop.example.com"));
        Assert.Null(await AllowedOrigin(defaulted, defaultKey, "https://other-shop.example"));

        body["socialProof"] = new JsonObject { ["allowedOrigins"] = new JsonArray("https://shop.example.com/path") };
        var invalid = await _admin.PutAsJsonAsync($"/api/v1/campaigns/{campaign}", body);
        invalid.EnsureStatus(HttpStatusCode.BadRequest);
        Assert.Contains("socialProof.allowedOrigins[0]", await invalid.Content.ReadAsStringAsync());
    }

    /// <summary>The <c>Access-Control-Allow-Origin</c> answered to a GET (with a key) or, without one, to a preflight.</summary>
    private async Task<string?> AllowedOrigin(string campaign, string? key, string origin)
    {
        using var request = key is null
            ? new HttpRequestMessage(HttpMethod.Options, $"/api/v1/campaigns/{campaign}/social-proof")
            : new HttpRequestMessage(HttpMethod.Get, $"/api/v1/campaigns/{campaign}/social-proof?key={key}");
        request.Headers.Add("Origin", origin);
        if (key is null)
        {
            request.Headers.Add("Access-Control-Request-Method", "GET");
            request.Headers.Add("Access-Control-Request-Headers", "x-referloop-key");
        }
        using var response = await _browser.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, $"answered {(int)response.StatusCode}");
        return response.Headers.TryGetValues("Access-Control-Allow-Origin", out var values) ? values.Single() : null;
    }

    [Fact]
    public async Task The_widget_script_builds_text_nodes_only()
    {
        var response = await _browser.GetAsync("/js/social-proof.js");

        response.EnsureStatus(HttpStatusCode.OK);
        Assert.Equal("application/javascript", response.Content.Headers.ContentType?.MediaType);
        var script = await response.Content.ReadAsStringAsync();
        Assert.Contains("textContent", script);
        Assert.DoesNotContain("innerHTML", script);
        Assert.DoesNotContain("insertAdjacentHTML", script);
        Assert.DoesNotContain("document.write", script);
    }
}

public sealed class NoGeoIpApp : ReferloopApp
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["SocialProof:GeoIp"] = "false",
    };
}

public class WithoutGeoIpTests(NoGeoIpApp app) : IClassFixture<NoGeoIpApp>
{
    [Fact]
    public async Task Without_the_geoip_database_items_are_kept_without_ip_location()
    {
        var admin = app.CreateAdminClient();
        var campaign = await admin.CreateCampaign();
        var hook = await admin.CreateHook(campaign, "stream");

        var response = await app.CreateAnonymousClient().PostJson(hook.Path, """{"email": "ann@example.com", "ip": "8.8.8.8"}""");

        response.EnsureStatus(HttpStatusCode.OK);
        var item = (await response.ReadJson())["result"]!["item"]!;
        Assert.Equal("Ann", (string)item["firstName"]!);
        Assert.Null(item["country"]);
        Assert.Null((await admin.GetOk($"/api/v1/campaigns/{campaign}/social-proof"))["attribution"]);
    }
}
