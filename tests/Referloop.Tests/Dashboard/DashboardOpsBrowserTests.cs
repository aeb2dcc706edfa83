using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;

namespace Referloop.Tests.Dashboard;

/// <summary>Approving a referral and reading the funnel in a real headless Chromium, at desktop and phone widths.</summary>
[Trait("Category", "Browser")]
[Collection("Browser")]
public class DashboardOpsBrowserTests(BrowserApp app) : IClassFixture<BrowserApp>
{
    private static readonly object[] AdvocateTenDollars =
    [
        new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = EngineKit.Rebate(10) },
        new { recipient = "friend", trigger = "invited", kind = "standard", incentive = new { type = "discount_coupon", pool = "welcome10" } },
    ];

    // The server listens on a real port: plain clients reach it there, and a visitor's client stops at the share
    // link's redirect instead of following it to the (unreachable) shop.
    private HttpClient Admin()
    {
        var client = Visitor();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", ReferloopApp.AdminKey);
        return client;
    }

    private HttpClient Visitor() => new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(app.BaseUrl) };

    [Fact]
    public async Task Operator_approves_a_referral_and_sees_its_reward_issued()
    {
        var admin = Admin();
        var (campaign, _) = await admin.Campaign(AdvocateTenDollars, new { name = "Approval desk", approval = "manual" });
        await admin.PostOk($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10/coupons", new { codes = new[] { "WELCOME-1", "WELCOME-2" } },
            HttpStatusCode.OK);
        var (_, code) = await admin.Advocate(campaign, "ann@example.com", "Ann Lee");
        await admin.Track(campaign, "signup", "bob@example.net", code, name: "Bob");
        await admin.Track(campaign, "purchase", "bob@example.net", orderId: "B-1", purchaseValue: 80);

        var page = await app.SignedInPage();
        await page.ClickAsync("nav >> text=Referrals");
        await page.ClickAsync("nav.tabs >> text=Qualified");
        var row = page.Locator("tr", new() { HasText = "bob@example.net" });
        Assert.Contains("qualified", await row.InnerTextAsync(), StringComparison.OrdinalIgnoreCase);
        await BrowserApp.Screenshot(page, "referrals");

        await row.Locator("a", new() { HasText = "bob@example.net" }).ClickAsync();
        await page.WaitForSelectorAsync("#approve");
        Assert.Equal("qualified", await page.TextContentAsync("#referral-status"));
        Assert.Contains("pending", await page.InnerTextAsync("table.rewards"), StringComparison.OrdinalIgnoreCase);
        await page.FillAsync("#approve-reason", "order B-1 checked");
        await page.ClickAsync("#approve");

        await page.WaitForSelectorAsync(".notice");
        Assert.Equal("approved", await page.TextContentAsync("#referral-status"));
        Assert.Equal("order B-1 checked", await page.InnerTextAsync("#referral-reason"));
        var advocateReward = page.Locator("table.rewards tr", new() { HasText = "10 USD rebate" });
        Assert.Contains("issued", await advocateReward.InnerTextAsync(), StringComparison.OrdinalIgnoreCase);
        Assert.Contains("ann@example.com", await advocateReward.InnerTextAsync());
        Assert.Equal(0, await page.Locator("#approve").CountAsync());
        await BrowserApp.Screenshot(page, "referral-approved");

        await page.ClickAsync("nav >> text=Rewards");
        await page.ClickAsync("nav.tabs >> text=To pay");
        var toPay = page.Locator("table.rewards tr", new() { HasText = "Approval desk" }).Filter(new() { HasText = "10 USD rebate" });
        await toPay.Locator("button", new() { HasText = "Mark paid" }).ClickAsync();
        await page.WaitForSelectorAsync(".notice");
        Assert.Contains("marked paid", await page.InnerTextAsync(".notice"));
        await page.ClickAsync("nav.tabs >> text=Paid");
        Assert.Contains("10 USD rebate", await page.InnerTextAsync("table.rewards"));
        await BrowserApp.Screenshot(page, "rewards");

        await page.ClickAsync("nav >> text=Coupon pools");
        // The filter submits itself through the page's deferred script: choose once the page is there and that has
        // run, or nothing happens.
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/admin/coupon-pools$"));
        await page.WaitForLoadStateAsync(LoadState.DOMContentLoaded);
        await page.SelectOptionAsync("#campaign", campaign);
        await page.WaitForSelectorAsync("tr[data-pool=welcome10]");
        Assert.Equal("1", await page.InnerTextAsync("tr[data-pool=welcome10] [data-stock=available]"));
        await BrowserApp.Screenshot(page, "coupon-pools");
    }

    [Fact]
    public async Task Operator_reads_the_funnel_of_a_campaign()
    {
        var admin = Admin();
        var (campaign, _) = await admin.Campaign(AdvocateTenDollars, new { name = "Funnel week" });
        var (_, ann) = await admin.Advocate(campaign, "ann@example.com", "Ann Lee");
        var (_, cy) = await admin.Advocate(campaign, "cy@example.com", "Cy Park");
        var visitor = Visitor();
        for (var i = 0; i < 6; i++)
        {
            // Six visitors: one address following a link again within minutes is one click.
            using var follow = new HttpRequestMessage(HttpMethod.Get, $"/r/{(i < 4 ? ann : cy)}");
            follow.Headers.Add(ClientAddress.Header, $"198.51.100.{i + 1}");
            Assert.Equal(HttpStatusCode.Found, (await visitor.SendAsync(follow)).StatusCode);
        }
        await admin.Track(campaign, "signup", "f1@example.net", ann);
        await admin.Track(campaign, "signup", "f2@example.net", ann);
        await admin.Track(campaign, "signup", "f3@example.net", cy);
        await admin.Track(campaign, "purchase", "f1@example.net", orderId: "F-1", purchaseValue: 30);
        await admin.Track(campaign, "purchase", "f2@example.net", orderId: "F-2", purchaseValue: 45.5m);
        await admin.Track(campaign, "purchase", "f3@example.net", orderId: "F-3", purchaseValue: 20);

        var page = await app.SignedInPage();
        await page.ClickAsync("nav >> text=Analytics");
        // The filter submits itself through the page's deferred script: choose once the page is there and that has
        // run, or nothing happens.
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/admin/analytics$"));
        await page.WaitForLoadStateAsync(LoadState.DOMContentLoaded);
        // Each choice loads another page: wait for that page's address, not for a load event that may already be past.
        await page.SelectOptionAsync("#campaign", campaign);
        await Assertions.Expect(page).ToHaveURLAsync(new Regex($"campaign={campaign}"));
        await page.ClickAsync("nav.tabs >> text=Last 7 days");
        await Assertions.Expect(page).ToHaveURLAsync(new Regex($"campaign={campaign}&period=7d$"));

        Assert.Equal("6", await page.InnerTextAsync("[data-figure=clicks]"));
        Assert.Equal("3", await page.InnerTextAsync("[data-figure=signups]"));
        Assert.Equal("3", await page.InnerTextAsync("[data-figure=conversions]"));
        Assert.Equal("100 %", await page.InnerTextAsync("[data-figure=conversion-rate]"));
        Assert.Equal("1.50", await page.InnerTextAsync("[data-figure=k-factor]"));
        Assert.Equal("95.50", await page.InnerTextAsync("[data-figure=revenue-USD]"));
        var chart = page.Locator("svg[role=img]").First;
        Assert.Equal("Referral funnel, last 7 days", await chart.Locator("title").TextContentAsync());
        Assert.Equal("6 share-link clicks, 3 referred sign-ups, 3 conversions.", await page.Locator("#funnel-desc").TextContentAsync());
        Assert.Equal("ann@example.com", await page.InnerTextAsync("#top-heading ~ .table-wrap tbody tr:first-child td:first-child"));
        await BrowserApp.Screenshot(page, "analytics");
    }

    [Fact]
    public async Task The_new_pages_fit_a_phone_screen()
    {
        var admin = Admin();
        var (campaign, _) = await admin.Campaign(AdvocateTenDollars, new { name = "Phone check" });
        var (advocate, code) = await admin.Advocate(campaign, "phone.advocate.with.a.long.address@example.com", "Pat");
        await Visitor().GetAsync($"/r/{code}");
        var outcome = await admin.Track(campaign, "purchase", "phone.friend.with.a.long.address@example.net", code, orderId: "P-1", purchaseValue: 12);
        var referral = (string)outcome["referral"]!["id"]!;

        var page = await app.SignedInPage();
        var pages = new (string Name, string Url)[]
        {
            ("referrals", "/admin/referrals"),
            ("referral", $"/admin/referrals/{referral}"),
            ("rewards", "/admin/rewards"),
            ("coupon-pools", $"/admin/coupon-pools?campaign={campaign}"),
            ("analytics", $"/admin/analytics?campaign={campaign}"),
            ("participant-detail", $"/admin/campaigns/{campaign}/participants/{advocate}"),
        };
        var overflowing = new List<string>();
        foreach (var (width, height, suffix) in new[] { (1280, 900, "desktop"), (375, 812, "phone") })
        {
            await page.SetViewportSizeAsync(width, height);
            foreach (var (name, url) in pages)
            {
                await page.GotoAsync(app.BaseUrl + url);
                if (await page.EvaluateAsync<bool>("document.documentElement.scrollWidth > window.innerWidth"))
                {
                    overflowing.Add($"{name} at {width} px");
                }
                await BrowserApp.Screenshot(page, $"{name}-{suffix}");
            }
        }
        Assert.Empty(overflowing);
    }
}
