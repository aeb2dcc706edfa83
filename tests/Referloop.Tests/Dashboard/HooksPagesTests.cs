using System.Net;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.InboundHooks;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;
using Referloop.Storage;
using Referloop.Webhooks;

namespace Referloop.Tests.Dashboard;

/// <summary>The webhook and inbound-hook pages as forms: the API's rules apply, and the API's state changes happen.</summary>
public class HooksPagesTests(WebhookApp app) : IClassFixture<WebhookApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task An_invalid_endpoint_form_shows_the_api_errors_and_saves_nothing()
    {
        var client = await DashboardClient.SignedIn(app);
        var response = await client.Submit("/admin/webhooks/new", new()
        {
            ["EndpointUrl"] = "ftp://crm.example.com/hook",
            ["EventTypes"] = "referral.exploded",
            ["Format"] = "xml",
            ["Headers"] = "webhook-signature: forged\nno colon here",
            ["CampaignId"] = "cmp_missing",
            ["RateLimitPerSecond"] = "3000000000",
        });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var html = WebUtility.HtmlDecode(await response.Content.ReadAsStringAsync());
        Assert.Contains("The endpoint was not saved", html);
        Assert.Contains("must be an absolute http or https URL.", html);
        Assert.Contains("eventTypes[0]", html);
        Assert.Contains("must be one of: json, form, query (got 'xml').", html);
        Assert.Contains("line 2 must read 'Name: value'.", html);
        Assert.Contains("is set by Referloop and cannot be replaced.", html);
        Assert.Contains("must be a whole number of requests per second.", html);
        Assert.False(await app.WithDb(db => db.WebhookEndpoints.AnyAsync(e => e.Url == "ftp://crm.example.com/hook")));
    }

    [Fact]
    public async Task An_endpoint_for_a_campaign_that_does_not_exist_is_refused()
    {
        var client = await DashboardClient.SignedIn(app);
        var response = await client.Submit("/admin/webhooks/new", new()
        {
            ["EndpointUrl"] = "https://crm.example.com/hook",
            ["CampaignId"] = "cmp_missing",
        });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("must be the id of an existing campaign", WebUtility.HtmlDecode(await response.Content.ReadAsStringAsync()));
    }

    [Fact]
    public async Task Creating_editing_and_rotating_an_endpoint_shows_the_secret_once_each_time()
    {
        var client = await DashboardClient.SignedIn(app);
        var campaign = await _admin.CreateCampaign();
        var created = await client.Submit("/admin/webhooks/new", new()
        {
            ["EndpointUrl"] = "http://127.0.0.1:9/crm",
            ["Description"] = "CRM",
            ["EventTypes"] = "reward.issued",
            ["CampaignId"] = campaign,
            ["Format"] = "form",
            ["RateLimitPerSecond"] = "5",
            ["Headers"] = "X-Api-Key: abc\n",
            ["Enabled"] = "true",
        });
        Assert.Equal(HttpStatusCode.Redirect, created.StatusCode);
        var page = created.Headers.Location!.OriginalString;
        var endpoint = await app.WithDb(db => db.WebhookEndpoints.AsNoTracking().SingleAsync(e => e.Description == "CRM"));
        Assert.Equal($"/admin/webhooks/{endpoint.Id}", page);
        Assert.Equal(["reward.issued"], endpoint.EventTypes);
        Assert.Equal(campaign, endpoint.CampaignId);
        Assert.Equal("form", endpoint.Format);
        Assert.Equal(5, endpoint.RateLimitPerSecond);
        Assert.Equal("abc", endpoint.Headers["X-Api-Key"]);

        var first = WebUtility.HtmlDecode(await client.Page(page));
        Assert.Contains(endpoint.Secret, first);
        Assert.DoesNotContain(endpoint.Secret, WebUtility.HtmlDecode(await client.Page(page)));

        var edit = await client.Page($"{page}/edit");
        Assert.Contains("X-Api-Key: abc", edit);
        var saved = await client.Submit($"{page}/edit", new()
        {
            ["EndpointUrl"] = "http://127.0.0.1:9/crm2",
            ["Description"] = "CRM",
            ["Format"] = "json",
            ["Headers"] = "X-Api-Key: abc",
            ["Enabled"] = "false",
        });
        Assert.Equal(HttpStatusCode.Redirect, saved.StatusCode);
        endpoint = await app.Endpoint(endpoint.Id);
        Assert.Equal("http://127.0.0.1:9/crm2", endpoint.Url);
        Assert.Empty(endpoint.EventTypes);
        Assert.Null(endpoint.CampaignId);
        Assert.False(endpoint.Enabled);
        Assert.Equal("abc", endpoint.Headers["X-Api-Key"]);

        var rotated = await client.Submit(page, new() { ["overlapHours"] = "12" }, $"{page}?handler=Rotate");
        Assert.Equal(HttpStatusCode.Redirect, rotated.StatusCode);
        var after = await app.Endpoint(endpoint.Id);
        Assert.Equal(endpoint.Secret, after.PreviousSecret);
        Assert.Equal(app.Clock.GetUtcNow().AddHours(12), after.PreviousSecretExpiresAt);
        var shown = WebUtility.HtmlDecode(await client.Page(page));
        Assert.Contains(after.Secret, shown);
        Assert.Contains("Both secrets sign every message until", shown);
        Assert.Contains($"{app.Clock.GetUtcNow().AddHours(12).UtcDateTime:yyyy-MM-dd HH:mm}", shown);
        Assert.DoesNotContain(after.Secret, WebUtility.HtmlDecode(await client.Page(page)));
    }

    [Fact]
    public async Task Recover_since_a_utc_time_requeues_the_failed_messages_of_an_endpoint()
    {
        await using var receiver = await Receiver.StartAsync();
        var endpoint = await app.CreateEndpoint(_admin, new { url = receiver.Url(), eventTypes = new[] { "referral.voided" } });
        var id = (string)endpoint["id"]!;
        var client = await DashboardClient.SignedIn(app);
        Assert.Equal(HttpStatusCode.Redirect, (await client.Submit($"/admin/webhooks/{id}", [], $"/admin/webhooks/{id}?handler=Disable")).StatusCode);
        var old = await app.WithDb(async db =>
        {
            var message = Outbox.Add(db, EventTypes.ReferralVoided, null, new { }, app.Clock.GetUtcNow().AddHours(-3));
            message.DispatchedAt = app.Clock.GetUtcNow();
            db.WebhookDeliveries.Add(new WebhookDelivery
            {
                Id = Ids.New("dlv"),
                MessageId = message.Id,
                EndpointId = id,
                Status = DeliveryStatus.Failed,
                CreatedAt = app.Clock.GetUtcNow().AddHours(-3),
                UpdatedAt = app.Clock.GetUtcNow(),
            });
            var recent = Outbox.Add(db, EventTypes.ReferralVoided, null, new { }, app.Clock.GetUtcNow().AddMinutes(-10));
            recent.DispatchedAt = app.Clock.GetUtcNow();
            db.WebhookDeliveries.Add(new WebhookDelivery
            {
                Id = Ids.New("dlv"),
                MessageId = recent.Id,
                EndpointId = id,
                Status = DeliveryStatus.Failed,
                CreatedAt = app.Clock.GetUtcNow().AddMinutes(-10),
                UpdatedAt = app.Clock.GetUtcNow(),
            });
            await db.SaveChangesAsync();
            return message.Id;
        });

        // Disabled: recovering is refused with the API's reason.
        var since = app.Clock.GetUtcNow().AddHours(-1).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm");
        await client.Submit($"/admin/webhooks/{id}", new() { ["since"] = since }, $"/admin/webhooks/{id}?handler=Recover");
        Assert.Contains("enable it before recovering", WebUtility.HtmlDecode(await client.Page($"/admin/webhooks/{id}")));

        await client.Submit($"/admin/webhooks/{id}", [], $"/admin/webhooks/{id}?handler=Enable");
        var recovered = await client.Submit($"/admin/webhooks/{id}", new() { ["since"] = since }, $"/admin/webhooks/{id}?handler=Recover");
        Assert.Equal(HttpStatusCode.Redirect, recovered.StatusCode);
        Assert.Contains($"1 failed message since {since.Replace('T', ' ')} UTC queued", WebUtility.HtmlDecode(await client.Page($"/admin/webhooks/{id}")));
        await receiver.WaitForAsync(1);
        Assert.Equal(DeliveryStatus.Failed, await app.WithDb(db => db.WebhookDeliveries.Where(d => d.MessageId == old).Select(d => d.Status).SingleAsync()));
    }

    [Fact]
    public async Task A_test_message_asked_for_as_json_answers_with_the_attempt_and_its_status_endpoint()
    {
        await using var receiver = await Receiver.StartAsync();
        receiver.Respond = (_, _) => new Reply(202, "queued");
        var endpoint = await app.CreateEndpoint(_admin, new { url = receiver.Url() });
        var id = (string)endpoint["id"]!;
        var client = await DashboardClient.SignedIn(app);
        var html = await client.Page($"/admin/webhooks/{id}");
        var token = System.Text.RegularExpressions.Regex.Match(html, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/admin/webhooks/{id}?handler=Test")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["eventType"] = "conversion", ["__RequestVerificationToken"] = token }),
        };
        request.Headers.Accept.ParseAdd("application/json");

        var answer = await (await client.Http.SendAsync(request)).ReadJson();

        Assert.Equal("succeeded", (string)answer["delivery"]!["status"]!);
        Assert.Equal(202, (int)answer["delivery"]!["attempts"]![0]!["statusCode"]!);
        Assert.Equal("queued", (string)answer["delivery"]!["attempts"]![0]!["responseExcerpt"]!);
        var status = await client.Http.GetAsync((string)answer["status"]!);
        Assert.Equal("application/json", status.Content.Headers.ContentType?.MediaType);
        Assert.Equal((string)answer["delivery"]!["id"]!, (string)(await status.ReadJson())["id"]!);
        var message = WebUtility.HtmlDecode(await client.Page((string)answer["page"]!));
        Assert.Contains("queued", message);
        Assert.Contains("webhook-id", message);
    }

    [Fact]
    public async Task Another_endpoints_delivery_is_not_found_under_this_one()
    {
        var a = (string)(await app.CreateEndpoint(_admin, new { url = "http://127.0.0.1:9/a" }))["id"]!;
        var b = (string)(await app.CreateEndpoint(_admin, new { url = "http://127.0.0.1:9/b", enabled = false }))["id"]!;
        var messageId = await app.Publish(EventTypes.ReferralApproved);
        var delivery = await WaitForDelivery(a, messageId);
        var client = await DashboardClient.SignedIn(app);

        Assert.Equal(HttpStatusCode.NotFound, (await client.Http.GetAsync($"/admin/webhooks/{b}/messages/{delivery}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.Submit($"/admin/webhooks/{b}", new() { ["deliveryId"] = delivery }, $"/admin/webhooks/{b}?handler=Replay")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.Http.GetAsync("/admin/webhooks/whe_nope")).StatusCode);
    }

    [Fact]
    public async Task Inbound_hook_form_creates_a_hook_shows_its_url_once_and_revokes_it()
    {
        var campaign = await _admin.CreateCampaign();
        var client = await DashboardClient.SignedIn(app);

        var invalid = await client.Submit("/admin/inbound-hooks", new() { ["CampaignId"] = "cmp_missing", ["Kind"] = "stream" });
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Contains("must be the id of an existing campaign", WebUtility.HtmlDecode(await invalid.Content.ReadAsStringAsync()));

        var created = await client.Submit("/admin/inbound-hooks", new()
        {
            ["CampaignId"] = campaign,
            ["Kind"] = "conversion",
            ["Name"] = "Form tool",
            ["Signed"] = "true",
        });
        Assert.Equal(HttpStatusCode.Redirect, created.StatusCode);
        var page = created.Headers.Location!.OriginalString;
        var hook = await app.WithDb(db => db.InboundHooks.AsNoTracking().SingleAsync(h => h.Name == "Form tool"));
        Assert.Equal("conversion", hook.Kind);
        Assert.StartsWith("whsec_", hook.SigningSecret);

        var first = WebUtility.HtmlDecode(await client.Page(page));
        var url = System.Text.RegularExpressions.Regex.Match(first, "id=\"hook-url\" readonly value=\"([^\"]+)\"").Groups[1].Value;
        Assert.StartsWith("http://referloop.test/hooks/hk_", url);
        Assert.Contains(hook.SigningSecret!, first);
        var second = WebUtility.HtmlDecode(await client.Page(page));
        Assert.DoesNotContain(url, second);
        Assert.Contains("shown once", second);

        // Unsigned, the request is refused and kept with the reason; the page lists it.
        var refused = await app.CreateAnonymousClient().PostRaw(new Uri(url).AbsolutePath, "", null);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        var withRequest = WebUtility.HtmlDecode(await client.Page(page));
        Assert.Contains("rejected", withRequest);

        Assert.Equal(HttpStatusCode.Redirect, (await client.Submit(page, [], $"{page}?handler=Revoke")).StatusCode);
        Assert.NotNull(await app.WithDb(db => db.InboundHooks.Where(h => h.Id == hook.Id).Select(h => h.RevokedAt).SingleAsync()));
        Assert.Contains("revoked", await client.Page("/admin/inbound-hooks"));
    }

    [Fact]
    public async Task Hook_pages_refuse_forms_without_an_antiforgery_token()
    {
        var client = await DashboardClient.SignedIn(app);
        var response = await client.Http.PostAsync("/admin/webhooks/new",
            new FormUrlEncodedContent(new Dictionary<string, string> { ["EndpointUrl"] = "http://127.0.0.1:9/forged" }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.False(await app.WithDb(db => db.WebhookEndpoints.AnyAsync(e => e.Url == "http://127.0.0.1:9/forged")));
    }

    private async Task<string> WaitForDelivery(string endpointId, string messageId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var id = await app.WithDb(db => db.WebhookDeliveries.Where(d => d.EndpointId == endpointId && d.MessageId == messageId)
                .Select(d => d.Id).FirstOrDefaultAsync());
            if (id is not null)
            {
                return id;
            }
            Assert.True(DateTime.UtcNow < deadline, "the message was not fanned out in time");
            await Task.Delay(30);
        }
    }
}
