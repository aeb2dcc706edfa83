using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Referloop.Tests.Support;

namespace Referloop.Tests.Security;

/// <summary>Keys have a scope: full (everything, and only it manages keys), read-only (GET) or events-only.</summary>
public class ApiKeyScopeTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private async Task<HttpClient> ClientWithScope(string scope)
    {
        var created = await _admin.PostOk("/api/v1/api-keys", new { name = $"{scope} key", scope });
        Assert.Equal(scope, (string)created["scope"]!);
        var client = app.CreateAnonymousClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (string)created["key"]!);
        return client;
    }

    private static async Task AssertForbidden(HttpResponseMessage response, string scope)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"expected 403, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(text)!.AsObject();
        Assert.Equal(scope, (string)problem["scope"]!);
        Assert.Contains($"'{scope}'", (string)problem["detail"]!);
    }

    [Fact]
    public async Task The_bootstrap_key_and_keys_made_without_a_scope_are_full()
    {
        var created = await _admin.PostOk("/api/v1/api-keys", new { name = "no scope given" });
        Assert.Equal("full", (string)created["scope"]!);
        var keys = (await (await _admin.GetAsync("/api/v1/api-keys")).Content.ReadFromJsonAsync<JsonArray>())!;
        var bootstrap = keys.Single(k => ((string)k!["name"]!).Contains("REFERLOOP_ADMIN_KEY"))!;
        Assert.Equal("full", (string)bootstrap["scope"]!);
    }

    [Fact]
    public async Task A_read_only_key_reads_but_changes_nothing_and_cannot_manage_keys_or_read_secrets()
    {
        var campaign = await _admin.CreateCampaign();
        var endpoint = await _admin.PostOk("/api/v1/webhook-endpoints", new
        {
            url = "https://crm.example.com/hooks/T0/crm-path-secret?token=crm-query-secret",
            headers = new Dictionary<string, string> { ["Authorization"] = "Bearer crm-secret" },
        });
        var reader = await ClientWithScope("read-only");

        // An endpoint's custom headers are often the receiver's credentials: a reader sees their names only.
        var read = await reader.GetOk($"/api/v1/webhook-endpoints/{endpoint["id"]}");
        Assert.Equal("[redacted]", (string?)read["headers"]!["Authorization"]);
        var listed = (await reader.GetOk("/api/v1/webhook-endpoints"))["data"]!.AsArray().Single(e => (string?)e!["id"] == (string?)endpoint["id"]);
        Assert.Equal("[redacted]", (string?)listed!["headers"]!["Authorization"]);
        Assert.DoesNotContain("crm-secret", (await reader.GetStringAsync("/api/v1/webhook-endpoints")));
        Assert.Equal("Bearer crm-secret", (string?)(await _admin.GetOk($"/api/v1/webhook-endpoints/{endpoint["id"]}"))["headers"]!["Authorization"]);
        // So is the URL's path and query (a chat or automation hook's token): a reader sees its origin.
        Assert.Equal("https://crm.example.com", (string?)read["url"]);
        Assert.DoesNotContain("path-secret", await reader.GetStringAsync("/api/v1/webhook-endpoints"));
        Assert.DoesNotContain("query-secret", await reader.GetStringAsync("/api/v1/webhook-endpoints"));
        Assert.Equal("https://crm.example.com/hooks/T0/crm-path-secret?token=crm-query-secret",
            (string?)(await _admin.GetOk($"/api/v1/webhook-endpoints/{endpoint["id"]}"))["url"]);

        (await reader.GetAsync($"/api/v1/campaigns/{campaign}")).EnsureStatus(HttpStatusCode.OK);
        (await reader.GetAsync("/api/v1/events")).EnsureStatus(HttpStatusCode.OK);
        await AssertForbidden(await reader.PostAsJsonAsync($"/api/v1/campaigns/{campaign}/participants", new { email = "ro@example.com" }), "read-only");
        await AssertForbidden(await reader.DeleteAsync($"/api/v1/webhook-endpoints/{endpoint["id"]}"), "read-only");
        await AssertForbidden(await reader.PostAsJsonAsync("/api/v1/events", new { campaignId = campaign, type = "signup", email = "ro@example.com" }), "read-only");
        await AssertForbidden(await reader.GetAsync($"/api/v1/webhook-endpoints/{endpoint["id"]}/secret"), "read-only");
        await AssertForbidden(await reader.GetAsync("/api/v1/api-keys"), "read-only");
        await AssertForbidden(await reader.PostAsJsonAsync("/api/v1/api-keys", new { name = "escalate" }), "read-only");
        await _admin.DeleteAsync($"/api/v1/webhook-endpoints/{endpoint["id"]}");
    }

    [Fact]
    public async Task An_events_only_key_reports_and_reads_events_and_nothing_else()
    {
        var campaign = await _admin.CreateCampaign();
        var events = await ClientWithScope("events-only");

        var tracked = await events.PostAsJsonAsync("/api/v1/events", new { campaignId = campaign, type = "signup", email = "ev@example.com" });
        Assert.Equal(HttpStatusCode.Accepted, tracked.StatusCode);
        (await events.GetAsync($"/api/v1/events?campaignId={campaign}")).EnsureStatus(HttpStatusCode.OK);
        await AssertForbidden(await events.GetAsync($"/api/v1/campaigns/{campaign}"), "events-only");
        await AssertForbidden(await events.PostAsJsonAsync($"/api/v1/campaigns/{campaign}/participants", new { email = "x@example.com" }), "events-only");
        await AssertForbidden(await events.PostAsJsonAsync("/api/v1/api-keys", new { name = "escalate", scope = "full" }), "events-only");
    }

    [Fact]
    public async Task An_unknown_scope_is_a_validation_problem()
    {
        var response = await _admin.PostAsJsonAsync("/api/v1/api-keys", new { name = "bad", scope = "admin" });
        await response.AssertValidationProblem("scope");
    }

    [Fact]
    public async Task The_openapi_document_names_the_scopes_each_operation_allows()
    {
        var document = await app.CreateAnonymousClient().GetOk("/openapi/v1.json");
        string Description(string path, string method) => (string)document["paths"]![path]![method]!["description"]!;

        Assert.Contains("scopes allowed: full, read-only.", Description("/api/v1/campaigns", "get"));
        Assert.Contains("scopes allowed: full.", Description("/api/v1/campaigns", "post"));
        Assert.Contains("scopes allowed: full, events-only.", Description("/api/v1/events", "post"));
        Assert.Contains("scopes allowed: full, read-only, events-only.", Description("/api/v1/events", "get"));
        Assert.Contains("scopes allowed: full.", Description("/api/v1/api-keys", "get"));
    }
}
