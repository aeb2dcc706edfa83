using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Json.Schema;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;

namespace Referloop.Tests.Hosting;

/// <summary>
/// Real answers of the server, success and error paths across every tag, checked against <c>/openapi/v1.json</c>: the
/// status is one the operation documents, and the body validates against the schema documented for it.
/// </summary>
public class OpenApiContractTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    [Fact]
    public async Task Every_answer_has_a_documented_status_and_matches_its_documented_schema()
    {
        var contract = new Contract(await app.CreateAnonymousClient().GetOk("/openapi/v1.json"));
        var admin = app.CreateAdminClient();
        var anonymous = app.CreateAnonymousClient();

        // Campaigns
        var campaign = await contract.Json(admin, HttpMethod.Post, "/api/v1/campaigns", Api.SpringCampaign, HttpStatusCode.Created);
        var campaignId = (string)campaign["id"]!;
        var publishableKey = (string)campaign["publishableKey"]!;
        await contract.Check(admin, HttpMethod.Post, "/api/v1/campaigns", new { landingUrl = "ftp://x" }, HttpStatusCode.BadRequest);
        await contract.Check(admin, HttpMethod.Post, "/api/v1/campaigns", Text("name=x"), HttpStatusCode.UnsupportedMediaType);
        await contract.Check(anonymous, HttpMethod.Get, "/api/v1/campaigns", null, HttpStatusCode.Unauthorized);
        await contract.Check(admin, HttpMethod.Get, "/api/v1/campaigns?limit=201", null, HttpStatusCode.BadRequest);
        await contract.Check(admin, HttpMethod.Get, "/api/v1/campaigns?status=active&limit=1", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/campaigns/{campaignId}", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, "/api/v1/campaigns/cmp_missing", null, HttpStatusCode.NotFound);
        await contract.Check(admin, HttpMethod.Put, $"/api/v1/campaigns/{campaignId}", Api.SpringCampaign, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/campaigns/{campaignId}/pause", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/campaigns/{campaignId}/resume", null, HttpStatusCode.OK);
        var archived = (string)(await contract.Json(admin, HttpMethod.Post, "/api/v1/campaigns",
            Api.AutoApprovedRebateCampaign("Old"), HttpStatusCode.Created))["id"]!;
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/campaigns/{archived}/archive", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/campaigns/{archived}/resume", null, HttpStatusCode.Conflict);

        // Participants and share links
        var ann = await contract.Json(admin, HttpMethod.Post, $"/api/v1/campaigns/{campaignId}/participants",
            new { email = "ann@example.com", name = "Ann Lee" }, HttpStatusCode.Created);
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/campaigns/{campaignId}/participants", new { email = "ann@example.com" }, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/campaigns/{campaignId}/participants", new { name = "No mail" }, HttpStatusCode.BadRequest);
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/campaigns/{campaignId}/participants", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/campaigns/{campaignId}/participants/{ann["id"]}", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/campaigns/{campaignId}/participants/{ann["id"]}/export", null, HttpStatusCode.OK);
        await contract.Check(anonymous, HttpMethod.Get, $"/r/{ann["code"]}", null, HttpStatusCode.Found);
        await contract.Check(anonymous, HttpMethod.Get, "/r/nobody", null, HttpStatusCode.NotFound);

        // Events, referrals, rewards
        var purchase = new
        {
            campaignId,
            type = "purchase",
            email = "bob@example.net",
            name = "Bob Stone",
            referralCode = (string)ann["code"]!,
            orderId = "ORD-1",
            purchaseValue = 120.5,
            currency = "USD",
        };
        var outcome = await contract.Json(admin, HttpMethod.Post, "/api/v1/events", purchase, HttpStatusCode.Accepted);
        await contract.Check(anonymous, HttpMethod.Post, "/api/v1/events", purchase, HttpStatusCode.Unauthorized);
        var browser = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events") { Content = JsonContent.Create(purchase with { orderId = "ORD-2" }) };
        browser.Headers.Add("X-Referloop-Key", publishableKey);
        await contract.Check(anonymous, browser, HttpStatusCode.Accepted);
        await contract.Check(admin, HttpMethod.Post, "/api/v1/events", new { campaignId, type = "signup" }, HttpStatusCode.BadRequest);
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/events?campaignId={campaignId}", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/events/{outcome["eventId"]}", null, HttpStatusCode.OK);
        var referralId = (string)outcome["referral"]!["id"]!;
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/referrals?campaignId={campaignId}", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/referrals/{referralId}", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/referrals/{referralId}/void", new { }, HttpStatusCode.BadRequest);
        await contract.Check(admin, HttpMethod.Post, "/api/v1/referrals/qualify", new { code = "nobody" }, HttpStatusCode.NotFound);
        var rewards = await contract.Json(admin, HttpMethod.Get, $"/api/v1/rewards?campaignId={campaignId}&status=issued", null, HttpStatusCode.OK);
        var rewardId = (string)rewards["data"]![0]!["id"]!;
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/rewards/{rewardId}", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/rewards/{rewardId}/paid", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/referrals/{referralId}/void", new { reason = "chargeback" }, HttpStatusCode.OK);

        // Idempotency-Key: replay, another body, a key that is not valid
        await contract.Check(admin, Keyed("/api/v1/campaigns", "k-1", Api.AutoApprovedRebateCampaign("Keyed")), HttpStatusCode.Created);
        await contract.Check(admin, Keyed("/api/v1/campaigns", "k-1", Api.AutoApprovedRebateCampaign("Keyed")), HttpStatusCode.Created);
        await contract.Check(admin, Keyed("/api/v1/campaigns", "k-1", Api.AutoApprovedRebateCampaign("Other")), HttpStatusCode.UnprocessableEntity);
        await contract.Check(admin, Keyed("/api/v1/campaigns", new string('k', 201), Api.SpringCampaign), HttpStatusCode.BadRequest);

        // Coupon pools
        var pool = $"/api/v1/campaigns/{campaignId}/coupon-pools/welcome10";
        await contract.Check(admin, HttpMethod.Put, pool, new { }, HttpStatusCode.Created);
        await contract.Check(admin, HttpMethod.Post, pool + "/coupons", new { codes = new[] { "W-1", "W-2" } }, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, pool + "/coupons?status=available", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/campaigns/{campaignId}/coupon-pools", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/campaigns/{campaignId}/coupon-pools/none", null, HttpStatusCode.NotFound);

        // Webhook endpoints and messages
        var endpoint = await contract.Json(admin, HttpMethod.Post, "/api/v1/webhook-endpoints",
            new { url = "https://crm.example.com/hooks/referrals", eventTypes = new[] { "referral.approved" } }, HttpStatusCode.Created);
        var endpointUrl = $"/api/v1/webhook-endpoints/{endpoint["id"]}";
        await contract.Check(admin, HttpMethod.Post, "/api/v1/webhook-endpoints", new { url = "https://crm.example.com/hooks/referrals", format = "xml" }, HttpStatusCode.BadRequest);
        await contract.Check(admin, HttpMethod.Get, "/api/v1/webhook-endpoints", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, endpointUrl, null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, endpointUrl + "/secret", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Post, endpointUrl + "/rotate-secret", new { overlapHours = 0 }, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, endpointUrl + "/secret", null, HttpStatusCode.OK);
        var test = await contract.Json(admin, HttpMethod.Post, endpointUrl + "/test", new { eventType = "referral.approved" }, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, endpointUrl + "/messages", null, HttpStatusCode.OK);
        Assert.True((bool)endpoint["retryUntilAcknowledged"]!);
        Assert.Equal("pending", (string)test["status"]!);
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/messages/{test["id"]}/cancel", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/messages/{test["messageId"]}/cancel", null, HttpStatusCode.Conflict);
        await contract.Check(admin, HttpMethod.Post, "/api/v1/messages/msg_missing/cancel", null, HttpStatusCode.NotFound);
        var cancelled = await contract.Json(admin, HttpMethod.Get, $"/api/v1/messages/{test["messageId"]}", null, HttpStatusCode.OK);
        Assert.Equal("cancelled", (string)cancelled["deliveries"]![0]!["status"]!);
        await contract.Check(admin, HttpMethod.Get, endpointUrl + "/messages?status=cancelled", null, HttpStatusCode.OK);
        // A cancelled delivery replays like a failed one; a message whose body was purged (as the retention sweep or an
        // erasure leaves it) shows dataPurgedAt and is not replayed.
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/messages/{test["id"]}/replay", null, HttpStatusCode.Accepted);
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/messages/{test["id"]}/cancel", null, HttpStatusCode.OK);
        var testMessageId = (string)test["messageId"]!;
        await app.WithDb(db => db.Outbox.Where(m => m.Id == testMessageId)
            .ExecuteUpdateAsync(s => s.SetProperty(m => m.Data, "{}").SetProperty(m => m.DataPurgedAt, app.Clock.GetUtcNow())));
        var purged = await contract.Json(admin, HttpMethod.Get, $"/api/v1/messages/{testMessageId}", null, HttpStatusCode.OK);
        Assert.NotNull(purged["dataPurgedAt"]);
        await contract.Check(admin, HttpMethod.Post, $"/api/v1/messages/{testMessageId}/replay", null, HttpStatusCode.Conflict);
        await contract.Check(admin, HttpMethod.Post, endpointUrl + "/recover", new { since = "2026-01-01T00:00:00Z" }, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Put, endpointUrl,
            new { url = "https://crm.example.com/hooks/referrals", eventTypes = new[] { "referral.approved" }, retryUntilAcknowledged = false },
            HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Post, endpointUrl + "/disable", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Post, endpointUrl + "/test", new { eventType = "referral.approved" }, HttpStatusCode.Conflict);
        await contract.Check(admin, HttpMethod.Post, endpointUrl + "/recover", new { }, HttpStatusCode.BadRequest);
        await contract.Check(admin, HttpMethod.Delete, endpointUrl, null, HttpStatusCode.NoContent);

        // Inbound hooks, received and refused
        var hook = await contract.Json(admin, HttpMethod.Post, "/api/v1/inbound-hooks", new { campaignId, kind = "track" }, HttpStatusCode.Created);
        var hookPath = new Uri((string)hook["url"]!).AbsolutePath;
        await contract.Check(anonymous, HttpMethod.Post, hookPath, new { email = "cy@example.org", type = "signup" }, HttpStatusCode.OK);
        await contract.Check(anonymous, HttpMethod.Post, hookPath, Text("{"), HttpStatusCode.UnsupportedMediaType);
        await contract.Check(anonymous, HttpMethod.Post, "/hooks/not-a-real-token", new { }, HttpStatusCode.Unauthorized);
        await contract.Check(admin, HttpMethod.Get, "/api/v1/inbound-hooks", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/inbound-hooks/{hook["id"]}", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/inbound-hooks/{hook["id"]}/requests", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Post, "/api/v1/inbound-hooks", new { campaignId, kind = "other" }, HttpStatusCode.BadRequest);

        // Social proof and scripts
        var feed = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/campaigns/{campaignId}/social-proof?limit=5");
        feed.Headers.Add("X-Referloop-Key", publishableKey);
        await contract.Check(anonymous, feed, HttpStatusCode.OK);
        await contract.Check(anonymous, HttpMethod.Get, $"/api/v1/campaigns/{campaignId}/social-proof", null, HttpStatusCode.Unauthorized);
        await contract.Check(admin, HttpMethod.Get, $"/api/v1/campaigns/{campaignId}/social-proof?limit=51", null, HttpStatusCode.BadRequest);
        await contract.Check(anonymous, HttpMethod.Get, "/js/referloop.js", null, HttpStatusCode.OK);
        await contract.Check(anonymous, HttpMethod.Get, "/js/social-proof.js", null, HttpStatusCode.OK);

        // API keys
        var key = await contract.Json(admin, HttpMethod.Post, "/api/v1/api-keys", new { name = "ci" }, HttpStatusCode.Created);
        await contract.Check(admin, HttpMethod.Post, "/api/v1/api-keys", new { name = " " }, HttpStatusCode.BadRequest);
        await contract.Check(admin, HttpMethod.Get, "/api/v1/api-keys", null, HttpStatusCode.OK);
        await contract.Check(admin, HttpMethod.Delete, $"/api/v1/api-keys/{key["id"]}", null, HttpStatusCode.NoContent);

        // API key scopes: what each allows, and 403 for the rest
        await contract.Check(admin, HttpMethod.Post, "/api/v1/api-keys", new { name = "bad", scope = "admin" }, HttpStatusCode.BadRequest);
        var reader = await ScopedClient(contract, admin, "read-only");
        var reporter = await ScopedClient(contract, admin, "events-only");
        var secretEndpoint = await contract.Json(admin, HttpMethod.Post, "/api/v1/webhook-endpoints",
            new { url = "https://crm.example.com/hooks/rewards", eventTypes = new[] { "reward.issued" } }, HttpStatusCode.Created);
        await contract.Check(reader, HttpMethod.Get, $"/api/v1/campaigns/{campaignId}", null, HttpStatusCode.OK);
        await contract.Check(reader, HttpMethod.Get, $"/api/v1/events?campaignId={campaignId}", null, HttpStatusCode.OK);
        await contract.Check(reader, HttpMethod.Post, "/api/v1/campaigns", Api.SpringCampaign, HttpStatusCode.Forbidden);
        await contract.Check(reader, HttpMethod.Post, "/api/v1/events", purchase with { orderId = "ORD-3" }, HttpStatusCode.Forbidden);
        await contract.Check(reader, HttpMethod.Get, $"/api/v1/webhook-endpoints/{secretEndpoint["id"]}/secret", null, HttpStatusCode.Forbidden);
        await contract.Check(reader, HttpMethod.Get, "/api/v1/api-keys", null, HttpStatusCode.Forbidden);
        await contract.Check(reader, HttpMethod.Post, "/api/v1/messages/msg_missing/cancel", null, HttpStatusCode.Forbidden);
        await contract.Check(reporter, HttpMethod.Post, "/api/v1/events", purchase with { orderId = "ORD-4" }, HttpStatusCode.Accepted);
        await contract.Check(reporter, HttpMethod.Get, $"/api/v1/events/{outcome["eventId"]}", null, HttpStatusCode.OK);
        await contract.Check(reporter, HttpMethod.Get, $"/api/v1/campaigns/{campaignId}/social-proof", null, HttpStatusCode.Forbidden);
        await contract.Check(reporter, HttpMethod.Delete, $"/api/v1/webhook-endpoints/{secretEndpoint["id"]}", null, HttpStatusCode.Forbidden);
        await contract.Check(admin, HttpMethod.Delete, $"/api/v1/webhook-endpoints/{secretEndpoint["id"]}", null, HttpStatusCode.NoContent);

        // Participant erasure last: it changes what the rest reads.
        await contract.Check(admin, HttpMethod.Delete, $"/api/v1/campaigns/{campaignId}/participants/{ann["id"]}", null, HttpStatusCode.NoContent);
    }

    [Theory]
    [InlineData("/api/v1/campaigns/cmp_x/pause", "POST")]
    [InlineData("/api/v1/referrals/rfl_x/approve", "POST")]
    [InlineData("/hooks/some-token-value", "POST")]
    public async Task A_wrong_method_on_a_route_answers_405_with_Allow(string path, string allowed)
    {
        var response = await app.CreateAdminClient().GetAsync(path);

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal(allowed, string.Join(", ", response.Content.Headers.Allow));
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Required_members_enums_and_bounds_are_in_the_document()
    {
        var document = await app.CreateAnonymousClient().GetOk("/openapi/v1.json");
        var schemas = document["components"]!["schemas"]!;
        var paths = document["paths"]!;

        Assert.Equal(["name", "landingUrl"], schemas["CampaignInput"]!["required"]!.AsArray().Select(n => (string)n!));
        Assert.Equal("string", (string?)schemas["CampaignInput"]!["properties"]!["name"]!["type"]);
        Assert.Equal(["reason"], schemas["VoidReferral"]!["required"]!.AsArray().Select(n => (string)n!));
        Assert.Contains("friend", schemas["RewardRule"]!["properties"]!["recipient"]!["enum"]!.AsArray().Select(n => (string?)n));
        var limit = paths["/api/v1/campaigns"]!["get"]!["parameters"]!.AsArray().Single(p => (string?)p!["name"] == "limit")!["schema"]!;
        Assert.Equal(1, (int)limit["minimum"]!);
        Assert.Equal(200, (int)limit["maximum"]!);
        Assert.DoesNotContain("previousSecret", schemas["EndpointSecretResponse"]!["required"]!.AsArray().Select(n => (string?)n));
        var post = paths["/api/v1/campaigns"]!["post"]!;
        Assert.Contains(post["parameters"]!.AsArray(), p => (string?)p!["name"] == "Idempotency-Key" && (string?)p["in"] == "header");
        foreach (var status in new[] { "400", "401", "409", "415", "422" })
        {
            Assert.NotNull(post["responses"]![status]!["content"]!["application/problem+json"]);
        }
        Assert.Empty(paths["/r/{code}"]!["get"]!["security"]!.AsArray());

        Assert.Contains("retryUntilAcknowledged", schemas["WebhookEndpointInput"]!["properties"]!.AsObject().Select(p => p.Key));
        Assert.Contains("cancelled", schemas["DeliveryResponse"]!["properties"]!["status"]!["enum"]!.AsArray().Select(n => (string?)n));
        Assert.Contains("cancelled", paths["/api/v1/webhook-endpoints/{id}/messages"]!["get"]!["parameters"]!.AsArray()
            .Single(p => (string?)p!["name"] == "status")!["schema"]!["enum"]!.AsArray().Select(n => (string?)n));
        Assert.Equal(["full", "read-only", "events-only"], schemas["CreateApiKey"]!["properties"]!["scope"]!["enum"]!.AsArray()
            .Select(n => (string?)n).Where(n => n is not null));
        var cancel = paths["/api/v1/messages/{id}/cancel"]!["post"]!["responses"]!;
        Assert.NotNull(cancel["404"]!["content"]!["application/problem+json"]);
        Assert.NotNull(cancel["409"]!["content"]!["application/problem+json"]);
        // 403 wherever some scope is refused; reading events is open to every scope.
        Assert.Equal("#/components/schemas/ScopeProblemDetails",
            (string?)post["responses"]!["403"]!["content"]!["application/problem+json"]!["schema"]!["$ref"]);
        Assert.NotNull(paths["/api/v1/campaigns"]!["get"]!["responses"]!["403"]);
        Assert.Null(paths["/api/v1/events"]!["get"]!["responses"]!["403"]);
        Assert.Null(paths["/r/{code}"]!["get"]!["responses"]!["403"]);
        Assert.Equal(["full", "events-only"], paths["/api/v1/events"]!["post"]!["x-referloop-scopes"]!.AsArray().Select(n => (string?)n));
    }

    /// <summary>A client holding a new admin key of the given scope, created through the documented operation.</summary>
    private async Task<HttpClient> ScopedClient(Contract contract, HttpClient admin, string scope)
    {
        var created = await contract.Json(admin, HttpMethod.Post, "/api/v1/api-keys", new { name = $"{scope} key", scope }, HttpStatusCode.Created);
        Assert.Equal(scope, (string)created["scope"]!);
        var client = app.CreateAnonymousClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (string)created["key"]!);
        return client;
    }

    private static StringContent Text(string body) => new(body, Encoding.UTF8, "text/plain");

    private static HttpRequestMessage Keyed(string url, string key, object body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", key);
        return request;
    }

    /// <summary>The OpenAPI document, able to say whether an answer is one it describes.</summary>
    private sealed class Contract
    {
        private readonly JsonObject _document;
        private readonly List<(Regex Path, string Template)> _paths;
        private readonly JsonObject _definitions;

        public Contract(JsonObject document)
        {
            _document = document;
            _paths = [.. document["paths"]!.AsObject()
                .OrderBy(p => p.Key.Count(c => c == '{')) // a literal segment wins over a parameter
                .Select(p => (new Regex("^" + Regex.Replace(p.Key, @"\{[^}]+\}", "[^/]+") + "$"), p.Key))];
            _definitions = JsonNode.Parse(document["components"]!["schemas"]!.ToJsonString()
                .Replace("#/components/schemas/", "#/$defs/", StringComparison.Ordinal))!.AsObject();
        }

        public async Task<JsonObject> Json(HttpClient client, HttpMethod method, string url, object? body, HttpStatusCode expected) =>
            JsonNode.Parse(await Check(client, method, url, body, expected))!.AsObject();

        public Task<string> Check(HttpClient client, HttpMethod method, string url, object? body, HttpStatusCode expected) =>
            Check(client, new HttpRequestMessage(method, url)
            {
                Content = body switch { null => null, HttpContent content => content, _ => JsonContent.Create(body) },
            }, expected);

        public async Task<string> Check(HttpClient client, HttpRequestMessage request, HttpStatusCode expected)
        {
            var what = $"{request.Method} {request.RequestUri}";
            var response = await client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == expected, $"{what} answered {(int)response.StatusCode}, not {(int)expected}: {text}");

            var path = request.RequestUri!.AbsolutePath;
            var template = _paths.FirstOrDefault(p => p.Path.IsMatch(path) && _document["paths"]![p.Template]![request.Method.Method.ToLowerInvariant()] is not null).Template;
            Assert.True(template is not null, $"{what}: no documented operation");
            var operation = _document["paths"]![template]![request.Method.Method.ToLowerInvariant()]!;
            var status = ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var documented = operation["responses"]![status]!;
            Assert.True(operation["responses"]![status] is not null, $"{what} answered {status}, which the document does not list for {template}");

            var mediaType = response.Content.Headers.ContentType?.MediaType;
            if (text.Length == 0)
            {
                return text;
            }
            var content = documented["content"]?.AsObject();
            Assert.True(content is not null && mediaType is not null && content.ContainsKey(mediaType),
                $"{what} answered {status} as {mediaType}, which the document does not list: {content?.ToJsonString()}");
            if (mediaType is "application/json" or "application/problem+json")
            {
                var schema = content![mediaType]!["schema"]!.DeepClone().AsObject();
                var root = JsonNode.Parse(schema.ToJsonString().Replace("#/components/schemas/", "#/$defs/", StringComparison.Ordinal))!.AsObject();
                root["$defs"] = _definitions.DeepClone();
                var results = JsonSchema.FromText(root.ToJsonString()).Evaluate(JsonNode.Parse(text),
                    new EvaluationOptions { OutputFormat = OutputFormat.List, RequireFormatValidation = true });
                Assert.True(results.IsValid, $"{what} answered {status} with a body that breaks its schema: " + string.Join("; ",
                    (results.Details ?? []).Where(d => d.Errors is { Count: > 0 })
                        .Select(d => $"{d.InstanceLocation} ({d.EvaluationPath}): {string.Join(", ", d.Errors!.Values)}")) + $"\n{text}");
            }
            return text;
        }
    }
}
