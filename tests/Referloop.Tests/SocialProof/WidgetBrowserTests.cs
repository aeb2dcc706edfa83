using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Referloop.Tests.InboundHooks;
using Referloop.Tests.Support;

namespace Referloop.Tests.SocialProof;

/// <summary>Skipped where Debian's chromium is not installed (test.sh installs it).</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public const string ExecutablePath = "/usr/bin/chromium";

    public ChromiumFactAttribute()
    {
        if (!File.Exists(ExecutablePath))
        {
            Skip = $"needs {ExecutablePath} (apt-get install chromium)";
        }
    }
}

public sealed class WidgetApp : ReferloopApp
{
    public const string ShopOrigin = "http://shop.test";

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["SocialProof:AllowedOrigins:0"] = ShopOrigin,
    };
}

/// <summary>
/// The widget on a merchant's page in real headless Chromium. The browser reaches nothing outside: the shop page
/// is served by the test, and requests to Referloop are handed to the in-memory server.
/// </summary>
[Trait("Category", "Browser")]
[Collection("Browser")] // one browser class at a time: side by side, page waits time out on a 2-core machine
public class WidgetBrowserTests(WidgetApp app) : IClassFixture<WidgetApp>
{
    [ChromiumFact]
    public async Task The_widget_rotates_notifications_as_text_with_safe_links_only_and_the_weekly_count()
    {
        var admin = app.CreateAdminClient();
        var created = await admin.PostOk("/api/v1/campaigns", Api.SpringCampaign);
        var campaign = (string)created["id"]!;
        var key = (string)created["publishableKey"]!;
        var hook = await admin.CreateHook(campaign, "stream");
        var sender = app.CreateAnonymousClient();
        var now = app.Clock.GetUtcNow();
        (await sender.PostJson(hook.Path, new JsonObject
        {
            ["email"] = "john.smith@example.com",
            ["city"] = "Miami",
            ["countryCode"] = "US",
            ["productName"] = "Sneakers",
            ["productLink"] = "https://sneakers.example/sneakers",
            ["productImage"] = "https://sneakers.example/sneakers.jpg",
            ["timestamp"] = now.AddMinutes(-3).ToUnixTimeMilliseconds(),
        }.ToJsonString())).EnsureStatus(HttpStatusCode.OK);
        (await sender.PostJson(hook.Path, new JsonObject
        {
            ["email"] = "mallory@example.com",
            ["firstName"] = "<img src=x onerror=\"window.__pwned=1\">",
            ["city"] = "<script>window.__pwned=2</script>",
            ["productName"] = "<b>Hat</b>",
            ["productLink"] = "javascript:window.__pwned=3",
            ["timestamp"] = now.AddMinutes(-1).ToUnixTimeMilliseconds(),
        }.ToJsonString())).EnsureStatus(HttpStatusCode.OK);

        var conversions = await admin.CreateHook(campaign, "conversion");
        (await sender.PostRaw(conversions.Path, "", null)).EnsureStatus(HttpStatusCode.OK);
        (await sender.PostRaw(conversions.Path, "", null)).EnsureStatus(HttpStatusCode.OK);

        var shopPage = $$"""
            <!doctype html><html><head><title>Shop</title></head><body>
            <h1>Shop</h1><div id="proof"></div>
            <script src="http://referloop.test/js/social-proof.js" data-campaign="{{campaign}}" data-key="{{key}}"
                    data-container="#proof" data-interval="1200" data-duration="1000"></script>
            </body></html>
            """;

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = ChromiumFactAttribute.ExecutablePath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"],
        });
        var page = await browser.NewPageAsync();
        var dialogs = new List<string>();
        page.Dialog += (_, dialog) => { dialogs.Add(dialog.Message); _ = dialog.DismissAsync(); };
        var referloop = app.CreateAnonymousClient();
        await page.RouteAsync("**/*", async route =>
        {
            var url = new Uri(route.Request.Url);
            if (url.Host == "shop.test")
            {
                await route.FulfillAsync(new() { Status = 200, ContentType = "text/html; charset=utf-8", Body = shopPage });
                return;
            }
            if (url.Host != "referloop.test")
            {
                await route.FulfillAsync(new() { Status = 404, Body = "" });
                return;
            }
            using var request = new HttpRequestMessage(new HttpMethod(route.Request.Method), url.PathAndQuery);
            foreach (var (name, value) in route.Request.Headers)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
            using var response = await referloop.SendAsync(request);
            var headers = response.Headers.Concat(response.Content.Headers)
                .ToDictionary(h => h.Key, h => string.Join(", ", h.Value));
            await route.FulfillAsync(new()
            {
                Status = (int)response.StatusCode,
                Headers = headers,
                BodyBytes = await response.Content.ReadAsByteArrayAsync(),
            });
        });

        await page.GotoAsync(WidgetApp.ShopOrigin + "/");
        var seen = new HashSet<string>();
        for (var i = 0; i < 60 && seen.Count < 3; i++)
        {
            var notification = page.Locator("#proof .rl-sp-notification");
            if (await notification.CountAsync() == 1)
            {
                seen.Add(await notification.InnerTextAsync());
            }
            await page.WaitForTimeoutAsync(150);
        }

        Assert.Contains(seen, text => text.Contains("John S. from Miami") && text.Contains("bought Sneakers"));
        Assert.Contains(seen, text => text.Contains("<img src=x onerror=\"window.__pwned=1\"> from <script>window.__pwned=2</script>")
            && text.Contains("bought <b>Hat</b>"));
        Assert.Contains("2 people signed up this week", seen);
        Assert.Null(await page.EvaluateAsync<int?>("window.__pwned"));
        Assert.Empty(dialogs);
        Assert.Equal(0, await page.Locator("#proof img[src='x'], #proof script, #proof b").CountAsync());
        var hrefs = await page.EvaluateAsync<string[]>("Array.from(document.querySelectorAll('#proof a')).map(a => a.getAttribute('href'))");
        Assert.All(hrefs, href => Assert.Matches("^https?://", href));
    }
}
