using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using Referloop.Tests.InboundHooks;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;

namespace Referloop.Tests.Dashboard;

/// <summary>A browser-test server whose webhooks may call receivers on loopback, polling often so retries show promptly.</summary>
public class HooksBrowserApp : BrowserApp
{
    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["Webhooks:AllowPrivateNetworks"] = "true";
            settings["Webhooks:PollInterval"] = "00:00:00.050";
            settings["Webhooks:Timeout"] = "00:00:10";
            return settings;
        }
    }
}

/// <summary>Webhook endpoints and inbound hooks in the dashboard, driven by a real headless Chromium.</summary>
[Trait("Category", "Browser")]
[Collection("Browser")]
public class HooksBrowserTests(HooksBrowserApp app) : IClassFixture<HooksBrowserApp>
{
    // The server listens on a real port here, so the API is called over it like any client would.
    private readonly HttpClient _admin = new()
    {
        BaseAddress = new Uri(app.BaseUrl),
        DefaultRequestHeaders = { Authorization = new("Bearer", ReferloopApp.AdminKey) },
    };

    [Fact]
    public async Task Operator_creates_an_endpoint_and_sees_a_test_message_answered_live()
    {
        await using var receiver = await Receiver.StartAsync();
        receiver.Respond = (_, _) => new Reply(200, """{"received":true}""");
        var page = await app.SignedInPage();

        await page.ClickAsync("nav >> text=Webhooks");
        await page.WaitForSelectorAsync("h1:has-text('Webhooks')");
        if (await page.Locator(".card.empty").CountAsync() > 0)
        {
            await BrowserApp.Screenshot(page, "webhooks-empty");
        }
        await page.ClickAsync("text=New endpoint");
        await page.FillAsync("#EndpointUrl", receiver.Url("/crm"));
        await page.FillAsync("#Description", "CRM");
        await page.CheckAsync("input[name=EventTypes][value='referral.approved']");
        await page.CheckAsync("input[name=EventTypes][value='reward.issued']");
        await BrowserApp.Screenshot(page, "webhook-new");
        await page.ClickAsync("text=Create endpoint");

        var secret = await page.InputValueAsync("#secret");
        Assert.StartsWith("whsec_", secret);
        Assert.Contains("shown only", await page.InnerTextAsync(".notice"));
        await BrowserApp.Screenshot(page, "webhook-endpoint-created");

        await page.SelectOptionAsync("select[name=eventType]", "referral.approved");
        await page.ClickAsync("text=Send test message");
        await page.WaitForSelectorAsync("#test-result [data-test-code]:has-text('200')");
        Assert.Equal("succeeded", await Text(page, "[data-test-status]"));
        Assert.Contains("\"received\":true", await page.InnerTextAsync("#test-result"));
        await page.WaitForSelectorAsync("table.log >> text=referral.approved");
        await BrowserApp.Screenshot(page, "webhook-test-sent");

        var request = await receiver.WaitForAsync(1);
        Assert.Equal("/crm", request.Path);
        Assert.Equal("referral.approved", (string)JsonNode.Parse(request.Body)!["type"]!);
        var signed = $"{request.Header("webhook-id")}.{request.Header("webhook-timestamp")}.{request.Body}";
        var expected = "v1," + Convert.ToBase64String(HMACSHA256.HashData(Convert.FromBase64String(secret["whsec_".Length..]), Encoding.UTF8.GetBytes(signed)));
        Assert.Equal(expected, request.Header("webhook-signature"));

        // The secret is not shown again, and the test message is in the log.
        await page.ReloadAsync();
        Assert.Equal(0, await page.Locator("#secret").CountAsync());
        Assert.Contains("referral.approved", await page.InnerTextAsync("table.log"));
        await BrowserApp.Screenshot(page, "webhook-endpoint");
    }

    [Fact]
    public async Task Operator_replays_a_failed_delivery_and_sees_the_new_attempt()
    {
        await using var receiver = await Receiver.StartAsync();
        var down = true;
        receiver.Respond = (_, _) => down ? new Reply(503, "down for maintenance") : new Reply(200, "thanks");
        var endpoint = await _admin.PostOk("/api/v1/webhook-endpoints",
            new { url = receiver.Url("/replay"), description = "Replay shop", eventTypes = new[] { "participant.joined" } });
        var endpointId = (string)endpoint["id"]!;
        var campaign = await _admin.CreateCampaign();
        await _admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "replay@example.com", name = "Rita Play" });
        var first = await receiver.WaitForAsync(1);
        await WaitUntil(() => app.WithDb(db => db.WebhookDeliveries.AnyAsync(d => d.EndpointId == endpointId && d.Attempts == 1)));

        // The receiver stays down long enough for the operator to switch the endpoint off: the message fails.
        var page = await app.SignedInPage();
        page.Dialog += (_, dialog) => dialog.AcceptAsync();
        await page.GotoAsync($"{app.BaseUrl}/admin/webhooks/{endpointId}");
        await page.ClickAsync("button:has-text('Disable')");
        await page.WaitForSelectorAsync(".badge.disabled");
        Assert.Equal("failed", await Text(page, "table.log .badge.failed"));
        down = false;
        await page.ClickAsync("button:has-text('Enable')");
        await page.WaitForSelectorAsync("h1 .badge.enabled");

        await page.ClickAsync("table.log tbody tr >> nth=0 >> a");
        await page.WaitForSelectorAsync("#attempt-1");
        Assert.Contains("503", await page.InnerTextAsync("#attempt-1 summary"));
        Assert.Contains("down for maintenance", await page.InnerTextAsync("#attempt-1 .response"));
        Assert.Contains(first.Header("webhook-id"), await page.InnerTextAsync("#attempt-1 table.headers"));
        Assert.Contains("participant.joined", await page.InnerTextAsync("#attempt-1 .code-block"));
        await BrowserApp.Screenshot(page, "webhook-message-failed");

        await page.ClickAsync("button:has-text('Replay')");
        await page.WaitForSelectorAsync("#attempt-2", new() { Timeout = 20_000 });
        await page.WaitForSelectorAsync("#delivery-status:has-text('succeeded')");
        Assert.Contains("200", await page.InnerTextAsync("#attempt-2 summary"));
        Assert.Contains("thanks", await page.InnerTextAsync("#attempt-2 .response"));
        Assert.Equal(2, await page.Locator("li.attempt").CountAsync());
        await BrowserApp.Screenshot(page, "webhook-message-replayed");

        var second = await receiver.WaitForAsync(2);
        Assert.Equal(first.Header("webhook-id"), second.Header("webhook-id"));
        Assert.Equal(first.Body, second.Body);
    }

    [Fact]
    public async Task Operator_creates_an_inbound_hook_and_sees_each_request_with_its_outcome()
    {
        var campaign = await _admin.CreateCampaign();
        var page = await app.SignedInPage();
        await page.ClickAsync("nav >> text=Inbound hooks");
        await page.WaitForSelectorAsync("h1:has-text('Inbound hooks')");
        await BrowserApp.Screenshot(page, "inbound-hooks-new");

        await page.SelectOptionAsync("#CampaignId", campaign);
        await page.SelectOptionAsync("#Kind", "stream");
        await page.FillAsync("#Name", "Shop orders");
        await page.ClickAsync("text=Create hook");

        var url = await page.InputValueAsync("#hook-url");
        Assert.Matches($"^{app.BaseUrl}/hooks/hk_", url);
        Assert.Contains("Nothing received yet", await page.InnerTextAsync(".empty-inline"));
        await BrowserApp.Screenshot(page, "inbound-hook-created");

        using var sender = new HttpClient();
        var processed = await sender.PostJson(url, """{"email": "john.smith@example.com", "city": "Miami", "countryCode": "US", "productName": "Sneakers"}""");
        Assert.True(processed.IsSuccessStatusCode, await processed.Content.ReadAsStringAsync());
        var refused = await sender.PostRaw(url, "email=x", "text/plain");
        Assert.Equal(System.Net.HttpStatusCode.UnsupportedMediaType, refused.StatusCode);

        await page.ReloadAsync();
        Assert.Equal(0, await page.Locator("#hook-url").CountAsync());
        Assert.Equal(2, await page.Locator("li.request").CountAsync());
        Assert.Equal("rejected", await Text(page, "li.request >> nth=0 >> .badge"));
        Assert.Equal("processed", await Text(page, "li.request >> nth=1 >> .badge"));
        Assert.Contains("text/plain", await page.InnerTextAsync("li.request >> nth=0 >> .reason"));
        await page.ClickAsync("li.request >> nth=1 >> summary");
        Assert.Contains("john.smith@example.com", await page.InnerTextAsync("li.request >> nth=1 >> .exchange"));
        Assert.Contains("Sneakers", await page.InnerTextAsync("li.request >> nth=1 >> .exchange"));
        await BrowserApp.Screenshot(page, "inbound-hook");

        await page.ClickAsync(".crumbs a");
        Assert.Contains("Shop orders", await page.InnerTextAsync("table"));
        await BrowserApp.Screenshot(page, "inbound-hooks");
    }

    [Fact]
    public async Task Every_webhook_and_inbound_hook_page_fits_a_phone_screen()
    {
        await using var receiver = await Receiver.StartAsync();
        receiver.Respond = (_, _) => new Reply(500, """{"error":"a rather long explanation from the receiver that goes on and on without any spaces: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}""");
        var endpoint = await _admin.PostOk("/api/v1/webhook-endpoints", new
        {
            url = receiver.Url("/a/very/long/path/that/goes/on/for/quite/a/while/to/test/wrapping?token=0123456789abcdef0123456789abcdef"),
            headers = new Dictionary<string, string> { ["X-Api-Key"] = "key_0123456789abcdef0123456789abcdef0123456789" },
        });
        var endpointId = (string)endpoint["id"]!;
        await _admin.PostOk($"/api/v1/webhook-endpoints/{endpointId}/rotate-secret", new { overlapHours = 24 }, System.Net.HttpStatusCode.OK);
        var test = await _admin.PostOk($"/api/v1/webhook-endpoints/{endpointId}/test", new { eventType = "reward.issued" }, System.Net.HttpStatusCode.OK);
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "stream");
        using var sender = new HttpClient();
        await sender.PostJson(app.BaseUrl + hook.Path, """{"email": "phone@example.com", "productName": "A product with a name long enough to wrap on a phone screen"}""");
        await sender.PostJson(app.BaseUrl + hook.Path, """{"nothing": "useful"}""");

        var page = await app.SignedInPage();
        var pages = new (string Name, string Path)[]
        {
            ("webhooks", "/admin/webhooks"),
            ("webhook-new", "/admin/webhooks/new"),
            ("webhook-endpoint", $"/admin/webhooks/{endpointId}"),
            ("webhook-edit", $"/admin/webhooks/{endpointId}/edit"),
            ("webhook-message", $"/admin/webhooks/{endpointId}/messages/{test["id"]}"),
            ("inbound-hooks", "/admin/inbound-hooks"),
            ("inbound-hook", $"/admin/inbound-hooks/{hook.Id}"),
        };
        foreach (var (name, path) in pages)
        {
            await page.SetViewportSizeAsync(1280, 900);
            await page.GotoAsync(app.BaseUrl + path);
            await page.WaitForSelectorAsync("h1");
            await BrowserApp.Screenshot(page, name + "-desktop");

            await page.SetViewportSizeAsync(375, 812);
            await page.GotoAsync(app.BaseUrl + path);
            await page.WaitForSelectorAsync("h1");
            foreach (var details in await page.Locator("details").AllAsync())
            {
                await details.EvaluateAsync("d => d.open = true");
            }
            var overflow = await page.EvaluateAsync<bool>("document.documentElement.scrollWidth > window.innerWidth");
            await BrowserApp.Screenshot(page, name + "-phone");
            Assert.False(overflow, $"{path} scrolls sideways on a 375 px phone");
        }
    }

    /// <summary>The text as written (badges are upper-cased by CSS, which InnerText applies).</summary>
    private static async Task<string> Text(IPage page, string selector) => ((await page.TextContentAsync(selector)) ?? "").Trim();

    private static async Task WaitUntil(Func<Task<bool>> condition, int seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition was not met in time");
            await Task.Delay(50);
        }
    }
}
