using System.Net;
using System.Net.Http.Json;
using Referloop.Tests.Support;

namespace Referloop.Tests.Webhooks;

public class WebhookEndpointsApiTests(WebhookApp app) : IClassFixture<WebhookApp>
{
    private readonly HttpClient _client = app.CreateAdminClient();

    [Fact]
    public async Task Creating_an_endpoint_returns_201_with_a_whsec_secret_shown_once()
    {
        var created = await _client.PostOk("/api/v1/webhook-endpoints", new
        {
            url = "http://127.0.0.1:9/hooks/referrals",
            description = "CRM",
            eventTypes = new[] { "referral.approved", "reward.issued" },
            format = "form",
            rateLimitPerSecond = 5,
            headers = new Dictionary<string, string> { ["X-Api-Key"] = "abc" },
            enabled = false,
        });

        Assert.StartsWith("whe_", (string)created["id"]!);
        Assert.StartsWith("whsec_", (string)created["secret"]!);
        Assert.Equal("form", (string)created["format"]!);
        Assert.Equal(["referral.approved", "reward.issued"], created["eventTypes"]!.AsArray().Select(t => (string)t!));
        Assert.Equal(5, (int)created["rateLimitPerSecond"]!);
        Assert.Equal("abc", (string)created["headers"]!["X-Api-Key"]!);
        Assert.False((bool)created["enabled"]!);

        var fetched = await _client.GetOk($"/api/v1/webhook-endpoints/{created["id"]}");
        Assert.Null(fetched["secret"]);
        Assert.Equal("CRM", (string)fetched["description"]!);
        var secret = await _client.GetOk($"/api/v1/webhook-endpoints/{created["id"]}/secret");
        Assert.Equal((string)created["secret"]!, (string)secret["secret"]!);
    }

    [Fact]
    public async Task Defaults_are_json_every_event_every_campaign_enabled()
    {
        var created = await _client.PostOk("/api/v1/webhook-endpoints", new { url = "http://127.0.0.1:9/hook" });

        Assert.Equal("json", (string)created["format"]!);
        Assert.Empty(created["eventTypes"]!.AsArray());
        Assert.Null(created["campaignId"]);
        Assert.True((bool)created["enabled"]!);
    }

    [Fact]
    public async Task Invalid_endpoint_input_is_a_400_naming_each_field()
    {
        var response = await _client.PostAsJsonAsync("/api/v1/webhook-endpoints", new
        {
            url = "ftp://example.com/x",
            eventTypes = new[] { "referral.approved", "referral.exploded" },
            format = "xml",
            rateLimitPerSecond = 0,
            headers = new Dictionary<string, string> { ["webhook-signature"] = "forged", ["Bad Header"] = "x" },
        });
        await response.AssertValidationProblem("url", "eventTypes[1]", "format", "rateLimitPerSecond",
            "headers.webhook-signature", "headers.Bad Header");

        var unknownCampaign = await _client.PostAsJsonAsync("/api/v1/webhook-endpoints",
            new { url = "http://127.0.0.1:9/hook", campaignId = "cmp_nope" });
        await unknownCampaign.AssertValidationProblem("campaignId");

        var missing = await _client.PostAsJsonAsync("/api/v1/webhook-endpoints", new { description = "no url" });
        await missing.AssertValidationProblem("url");

        // A header value HTTP cannot carry (it would fail every delivery), and a host name no resolver takes (a 500).
        var unsendable = await _client.PostAsJsonAsync("/api/v1/webhook-endpoints", new
        {
            url = "http://127.0.0.1:9/hook",
            headers = new Dictionary<string, string> { ["X-Greeting"] = "Grüße" },
        });
        await unsendable.AssertValidationProblem("headers.X-Greeting");
        var longHost = await _client.PostAsJsonAsync("/api/v1/webhook-endpoints",
            new { url = $"https://{string.Join('.', Enumerable.Repeat(new string('a', 63), 5))}/hook" });
        await longHost.AssertValidationProblem("url");
        var metadata = await _client.PostAsJsonAsync("/api/v1/webhook-endpoints", new { url = "http://169.254.169.254/latest/meta-data" });
        await metadata.AssertValidationProblem("url");
    }

    [Fact]
    public async Task Endpoints_can_be_listed_updated_disabled_enabled_and_deleted()
    {
        var campaign = await _client.CreateCampaign();
        var id = (string)(await _client.PostOk("/api/v1/webhook-endpoints", new { url = "http://127.0.0.1:9/a" }))["id"]!;

        var updated = await _client.PutAsJsonAsync($"/api/v1/webhook-endpoints/{id}", new
        {
            url = "http://127.0.0.1:9/b",
            campaignId = campaign,
            format = "query",
            eventTypes = new[] { "conversion" },
        });
        updated.EnsureStatus(HttpStatusCode.OK);
        var endpoint = await updated.ReadJson();
        Assert.Equal("http://127.0.0.1:9/b", (string)endpoint["url"]!);
        Assert.Equal(campaign, (string)endpoint["campaignId"]!);
        Assert.Equal("query", (string)endpoint["format"]!);

        var disabled = await _client.PostOk($"/api/v1/webhook-endpoints/{id}/disable", new { }, HttpStatusCode.OK);
        Assert.False((bool)disabled["enabled"]!);
        Assert.NotNull(disabled["disabledReason"]);
        var enabled = await _client.PostOk($"/api/v1/webhook-endpoints/{id}/enable", new { }, HttpStatusCode.OK);
        Assert.True((bool)enabled["enabled"]!);
        Assert.Null(enabled["disabledReason"]);

        var list = await _client.GetOk("/api/v1/webhook-endpoints?limit=200");
        Assert.Contains(list["data"]!.AsArray(), e => (string)e!["id"]! == id);

        (await _client.DeleteAsync($"/api/v1/webhook-endpoints/{id}")).EnsureStatus(HttpStatusCode.NoContent);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync($"/api/v1/webhook-endpoints/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.DeleteAsync($"/api/v1/webhook-endpoints/{id}")).StatusCode);
    }

    [Fact]
    public async Task Rotating_the_secret_keeps_the_old_one_for_the_overlap()
    {
        var created = await _client.PostOk("/api/v1/webhook-endpoints", new { url = "http://127.0.0.1:9/hook" });
        var id = (string)created["id"]!;

        var rotated = await _client.PostOk($"/api/v1/webhook-endpoints/{id}/rotate-secret", new { overlapHours = 2 }, HttpStatusCode.OK);

        Assert.StartsWith("whsec_", (string)rotated["secret"]!);
        Assert.NotEqual((string)created["secret"]!, (string)rotated["secret"]!);
        Assert.Equal((string)created["secret"]!, (string)rotated["previousSecret"]!);
        Assert.Equal(app.Clock.GetUtcNow().AddHours(2), (DateTimeOffset)rotated["previousSecretExpiresAt"]!);

        var withoutBody = await _client.PostAsync($"/api/v1/webhook-endpoints/{id}/rotate-secret", null);
        withoutBody.EnsureStatus(HttpStatusCode.OK);
        var again = await withoutBody.ReadJson();
        Assert.Equal(app.Clock.GetUtcNow().AddHours(24), (DateTimeOffset)again["previousSecretExpiresAt"]!);
    }

    [Fact]
    public async Task Unknown_ids_are_404()
    {
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync("/api/v1/webhook-endpoints/whe_nope")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync("/api/v1/webhook-endpoints/whe_nope/messages")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync("/api/v1/messages/msg_nope")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.PostAsync("/api/v1/messages/dlv_nope/replay", null)).StatusCode);
    }

    [Fact]
    public async Task Requests_without_the_admin_key_are_refused()
    {
        var anonymous = app.CreateAnonymousClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/webhook-endpoints")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/messages/msg_x")).StatusCode);
    }
}
