using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;
using ZXing;
using ZXing.Common;
using ZXing.QrCode;

namespace Referloop.Tests.HostedPages;

/// <summary>A browser-test server whose webhooks may reach a loopback receiver, which also plays the shop's landing page.</summary>
public sealed class HostedBrowserApp : BrowserApp
{
    public Receiver Shop { get; private set; } = null!;

    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["Webhooks:AllowPrivateNetworks"] = "true";
            settings["Webhooks:PollInterval"] = "00:00:00.050";
            // E-mail on, so the magic-link and unsubscribe pages exist; this server records mails and sends none.
            settings["Email:Smtp:Host"] = "127.0.0.1";
            settings["Email:Smtp:Security"] = "none";
            settings["Email:From:Address"] = "referrals@shop.example.com";
            settings["Email:SendingEnabled"] = "false";
            return settings;
        }
    }

    public override async Task InitializeAsync()
    {
        Shop = await Receiver.StartAsync();
        await base.InitializeAsync();
    }

    protected override async Task DisposeResourcesAsync()
    {
        await base.DisposeResourcesAsync();
        await Shop.DisposeAsync();
    }
}

/// <summary>
/// The hosted pages in a real Chromium: an advocate registers, lands on the portal, copies and shares the link and
/// scans its QR code; a friend follows the link, fills the invited page and lands on the shop; both
/// <c>participant.joined</c> webhooks arrive. Every page passes axe (WCAG 2.1 AA) at desktop and phone widths.
/// </summary>
[Trait("Category", "Browser")]
[Collection("Browser")]
public sealed class HostedPagesBrowserTests(HostedBrowserApp app) : IClassFixture<HostedBrowserApp>
{
    private static readonly string[] WcagTags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
    private readonly ConcurrentQueue<string> _policyViolations = new();

    [Fact]
    public async Task An_advocate_registers_shares_and_a_friend_joins_through_the_invited_page()
    {
        var admin = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        admin.DefaultRequestHeaders.Authorization = new("Bearer", ReferloopApp.AdminKey);
        var landing = app.Shop.Url("/welcome");
        var campaign = await admin.CreateCampaign(new
        {
            name = "Friends of Fern",
            landingUrl = landing,
            slug = "fern-friends",
            goalConversions = 5,
            page = new
            {
                shareLink = "page",
                headline = "Share Fern with your friends",
                advocateOffer = "$10 for every friend who orders",
                friendOffer = "10% off your first order",
                brandColor = "#0b6e4f",
                termsUrl = "https://fern.example/terms",
                leaderboard = true,
            },
            rewards = new object[]
            {
                new { recipient = "friend", trigger = "invited", kind = "standard", incentive = new { type = "other", description = "Welcome gift" } },
                new { recipient = "advocate", trigger = "invited", kind = "milestone",
                      tiers = new object[] { new { referrals = 3, incentive = new { type = "other", description = "Tote bag" } } } },
            },
        });
        await admin.PostOk("/api/v1/webhook-endpoints", new { url = app.Shop.Url("/hooks"), eventTypes = new[] { "participant.joined" }, campaignId = campaign });

        // The advocate registers on the join page.
        await using var advocateContext = await app.Browser.NewContextAsync(new()
        {
            ViewportSize = new() { Width = 1280, Height = 900 },
            Permissions = ["clipboard-read", "clipboard-write"],
        });
        var page = await Open(advocateContext, $"{app.BaseUrl}/join/fern-friends");
        Assert.Equal("Share Fern with your friends", await page.InnerTextAsync("h1"));
        await AssertAccessible(page, "join");

        await page.FillAsync("#name", "Fern Adler");
        await page.FillAsync("#email", "fern@example.com");
        await page.CheckAsync("#consent");
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/p/pt_"));
        await page.WaitForLoadStateAsync(LoadState.Load);
        Assert.Equal("Hello Fern!", await page.InnerTextAsync("h1"));
        await page.Locator("img#qr").EvaluateAsync("img => img.decode()");
        await AssertAccessible(page, "portal");

        // The copy button puts the share link on the clipboard.
        var shareUrl = await page.InputValueAsync("#share-link");
        Assert.Matches($"^{app.BaseUrl}/r/[A-Za-z0-9]{{8}}$", shareUrl);
        await page.ClickAsync("button[data-copy]");
        await page.WaitForSelectorAsync("#copy-status:has-text('Copied')");
        Assert.Equal(shareUrl, await page.EvaluateAsync<string>("navigator.clipboard.readText()"));

        // Each share button is a plain link that carries the share link.
        var shares = new Dictionary<string, string>();
        foreach (var link in await page.Locator("a[data-share]").AllAsync())
        {
            shares[(await link.GetAttributeAsync("data-share"))!] = (await link.GetAttributeAsync("href"))!;
        }
        var message = $"Join me at Friends of Fern: {shareUrl}";
        Assert.Equal(["E-mail", "SMS", "WhatsApp", "X", "Facebook", "LinkedIn"], shares.Keys);
        Assert.Equal(message, Query(shares["E-mail"])["body"]);
        Assert.Equal(message, Query(shares["SMS"])["body"]);
        Assert.Equal(message, Query(shares["WhatsApp"])["text"]);
        Assert.StartsWith("https://wa.me/?", shares["WhatsApp"]);
        Assert.Equal(shareUrl, Query(shares["X"])["url"]);
        Assert.StartsWith("https://x.com/intent/post?", shares["X"]);
        Assert.Equal(shareUrl, Query(shares["Facebook"])["u"]);
        Assert.StartsWith("https://www.facebook.com/sharer/sharer.php?", shares["Facebook"]);
        Assert.Equal(shareUrl, Query(shares["LinkedIn"])["url"]);
        Assert.StartsWith("https://www.linkedin.com/sharing/share-offsite/?", shares["LinkedIn"]);

        // The QR code, as Chromium draws it, decodes to the share link.
        Assert.Equal(shareUrl, await DecodeQr(page));

        // A friend follows the link, fills the invited page and lands on the shop with the click.
        await using var friendContext = await app.Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });
        var friend = await Open(friendContext, shareUrl);
        await Assertions.Expect(friend).ToHaveURLAsync(new Regex(@"/join\?rl_click=clk_"));
        Assert.Equal("Fern invited you", await friend.InnerTextAsync("h1"));
        Assert.Contains("10% off your first order", await friend.InnerTextAsync("main"));
        await AssertAccessible(friend, "invited");
        await friend.FillAsync("#name", "Gus Moreno");
        await friend.FillAsync("#email", "gus@example.net");
        await friend.ClickAsync("button[type=submit]");
        await Assertions.Expect(friend).ToHaveURLAsync(new Regex("^" + Regex.Escape(landing) + @"\?"));
        var landed = Query(friend.Url);
        Assert.Equal(shareUrl.Split("/r/")[1], landed["ref"]);
        Assert.StartsWith("clk_", landed["rl_click"]);
        Assert.Equal("ok", await friend.InnerTextAsync("body"));

        // The portal now lists the friend by first name.
        await page.ReloadAsync();
        Assert.Contains("Gus", await page.InnerTextAsync("#referrals-heading + table"));
        Assert.DoesNotContain("Moreno", await page.InnerTextAsync("main"));
        Assert.Contains("1 of 3 towards your next reward: Tote bag", await page.InnerTextAsync("main"));
        await BrowserApp.Screenshot(page, "hosted-portal-with-referral");

        // Both participant.joined webhooks arrive with the person's details, the friend's with who referred them.
        var joined = await WebhooksAsync(2);
        var advocate = joined.Single(j => (string)j["data"]!["participant"]!["role"]! == "referrer")["data"]!;
        Assert.Equal("fern@example.com", (string)advocate["participant"]!["email"]!);
        Assert.Equal("Fern Adler", (string)advocate["participant"]!["name"]!);
        Assert.Equal(shareUrl, (string)advocate["participant"]!["shareUrl"]!);
        Assert.Equal(campaign, (string)advocate["campaign"]!["id"]!);
        Assert.Null(advocate["referredBy"]);
        var invited = joined.Single(j => (string)j["data"]!["participant"]!["role"]! == "invited")["data"]!;
        Assert.Equal("gus@example.net", (string)invited["participant"]!["email"]!);
        Assert.Equal("Gus Moreno", (string)invited["participant"]!["name"]!);
        Assert.Equal("fern@example.com", (string)invited["referredBy"]!["email"]!);
        Assert.Equal("Fern Adler", (string)invited["referredBy"]!["name"]!);
        Assert.Equal(shareUrl, (string)invited["referredBy"]!["shareUrl"]!);

        Assert.Empty(_policyViolations);
    }

    [Fact]
    public async Task Form_errors_are_announced_and_pass_axe()
    {
        var admin = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        admin.DefaultRequestHeaders.Authorization = new("Bearer", ReferloopApp.AdminKey);
        var campaign = await admin.CreateCampaign(new { name = "Errors", landingUrl = "https://shop.example.com/", page = new { language = "de" } });
        await using var context = await app.Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });
        var page = await Open(context, $"{app.BaseUrl}/join/{campaign}");

        await page.FillAsync("#email", "not-an-email");
        await page.ClickAsync("button[type=submit]");
        await page.WaitForSelectorAsync(".error-summary");

        Assert.Contains("Gib eine E-Mail-Adresse", await page.InnerTextAsync(".error-summary"));
        Assert.Equal("true", await page.GetAttributeAsync("#email", "aria-invalid"));
        await AssertAccessible(page, "join-errors-de");
        Assert.Empty(_policyViolations);
    }

    [Fact]
    public async Task The_campaign_form_previews_the_join_page_as_it_is_typed_and_saves_the_settings()
    {
        var page = await app.SignedInPage();
        await page.GotoAsync($"{app.BaseUrl}/admin/campaigns/new");
        await page.FillAsync("#Name", "Preview spring");
        await page.FillAsync("#LandingUrl", "https://shop.example.com/spring");
        await page.FillAsync("#Slug", "preview-spring");
        await page.SelectOptionAsync("#PageShareLink", "page");
        await page.FillAsync("#PageHeadline", "Give 10, get 10");
        await page.FillAsync("#PageFriendOffer", "10% off");
        await page.FillAsync("#PageBrandColor", "#ffd500");
        await page.SelectOptionAsync("#PageLanguage", "de");
        await page.CheckAsync("#PageLeaderboard");

        Assert.Equal("Give 10, get 10", await page.InnerTextAsync(".pv-headline"));
        Assert.Equal("10% off", await page.InnerTextAsync("[data-preview-of=friendOffer]"));
        Assert.Equal("rgb(255, 213, 0)", await page.EvalOnSelectorAsync<string>(".pv-button", "e => getComputedStyle(e).backgroundColor"));
        Assert.Equal("rgb(0, 0, 0)", await page.EvalOnSelectorAsync<string>(".pv-button", "e => getComputedStyle(e).color"));
        await BrowserApp.Screenshot(page, "campaign-page-settings");
        await page.ClickAsync("form.form button[type=submit]");
        await page.WaitForSelectorAsync(".notice");

        var campaign = await app.WithDb(db => Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions
            .SingleAsync(Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.AsNoTracking(db.Campaigns), c => c.Name == "Preview spring"));
        Assert.Equal("preview-spring", campaign.Slug);
        Assert.Equal(new Referloop.HostedPages.PageSettings
        {
            ShareLink = "page",
            Headline = "Give 10, get 10",
            FriendOffer = "10% off",
            BrandColor = "#ffd500",
            Language = "de",
            Leaderboard = true,
        }, campaign.Page);
        Assert.Empty(app.PolicyViolations);
    }

    [Fact]
    public async Task The_magic_link_and_unsubscribe_pages_pass_axe_with_their_answers()
    {
        var admin = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        admin.DefaultRequestHeaders.Authorization = new("Bearer", ReferloopApp.AdminKey);
        var campaign = await admin.CreateCampaign(new { name = "Mailing Maple", landingUrl = "https://shop.example.com/", slug = "maple-mail" });
        var advocate = (string)(await admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "maple@example.com", name = "Maple Ortiz" }))["id"]!;
        await using var context = await app.Browser.NewContextAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });

        var page = await Open(context, $"{app.BaseUrl}/join/maple-mail/portal-link");
        Assert.Equal("Get your portal link", await page.InnerTextAsync("h1"));
        await AssertAccessible(page, "portal-link");
        await page.FillAsync("#email", "not-an-address");
        await page.ClickAsync("button[type=submit]");
        await page.WaitForSelectorAsync(".error-summary");
        Assert.Equal("true", await page.GetAttributeAsync("#email", "aria-invalid"));
        await AssertAccessible(page, "portal-link-error");
        await page.FillAsync("#email", "maple@example.com");
        await page.ClickAsync("button[type=submit]");
        await page.WaitForSelectorAsync(".message[role=status]");
        await AssertAccessible(page, "portal-link-sent");

        var link = app.Services.GetRequiredService<Referloop.Email.EmailLinks>().UnsubscribeUrl(advocate);
        var unsubscribe = await Open(context, app.BaseUrl + link[link.IndexOf("/unsubscribe/", StringComparison.Ordinal)..]);
        Assert.Contains("Mailing Maple", await unsubscribe.InnerTextAsync("main"));
        await AssertAccessible(unsubscribe, "unsubscribe");
        await unsubscribe.ClickAsync("button[type=submit]");
        await unsubscribe.WaitForSelectorAsync(".message[role=status]");
        await AssertAccessible(unsubscribe, "unsubscribed");
        Assert.Empty(_policyViolations);
    }

    private async Task<IPage> Open(IBrowserContext context, string url)
    {
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(60_000);
        page.Console += (_, message) =>
        {
            if (message.Type == "error" && message.Text.Contains("Content Security Policy", StringComparison.Ordinal))
            {
                _policyViolations.Enqueue($"{page.Url}: {message.Text}");
            }
        };
        await page.GotoAsync(url);
        return page;
    }

    /// <summary>No WCAG 2.1 A or AA violation at 1280 px and at 390 px; screenshots of both for the README.</summary>
    private static async Task AssertAccessible(IPage page, string name)
    {
        foreach (var (width, height, suffix) in new[] { (1280, 900, ""), (390, 844, "-phone") })
        {
            await page.SetViewportSizeAsync(width, height);
            var result = await page.RunAxe(new AxeRunOptions { RunOnly = new RunOnlyOptions { Type = "tag", Values = [.. WcagTags] } });
            Assert.True(result.Violations.Length == 0, $"{name} at {width} px: " + string.Join("; ", result.Violations
                .Select(v => $"{v.Id} ({v.Impact}): {string.Join(", ", v.Nodes.Select(n => n.Html))}")));
            var overflow = await page.EvaluateAsync<bool>("document.documentElement.scrollWidth > window.innerWidth");
            Assert.False(overflow, $"{name} scrolls sideways at {width} px");
            await BrowserApp.Screenshot(page, $"hosted-{name}{suffix}");
        }
        await page.SetViewportSizeAsync(1280, 900);
    }

    /// <summary>
    /// Draws the portal's QR image onto a canvas in the page, reads its pixels and decodes them with ZXing, an
    /// implementation independent of the one that drew the code.
    /// </summary>
    private static async Task<string?> DecodeQr(IPage page)
    {
        const int size = 480;
        var gray = Convert.FromBase64String(await page.EvaluateAsync<string>("""
            async (size) => {
              const img = document.getElementById("qr");
              await img.decode();
              const canvas = document.createElement("canvas");
              canvas.width = size; canvas.height = size;
              const ctx = canvas.getContext("2d");
              ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, size, size);
              ctx.drawImage(img, 0, 0, size, size);
              const rgba = ctx.getImageData(0, 0, size, size).data;
              let binary = "";
              for (let i = 0; i < rgba.length; i += 4) binary += String.fromCharCode(Math.round((rgba[i] + rgba[i + 1] + rgba[i + 2]) / 3));
              return btoa(binary);
            }
            """, size));
        var bitmap = new BinaryBitmap(new HybridBinarizer(new RGBLuminanceSource(gray, size, size, RGBLuminanceSource.BitmapFormat.Gray8)));
        return new QRCodeReader().decode(bitmap)?.Text;
    }

    private async Task<List<JsonNode>> WebhooksAsync(int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var received = app.Shop.Requests.Where(r => r.Path == "/hooks").Select(r => JsonNode.Parse(r.Body)!).ToList();
            if (received.Count >= count || DateTime.UtcNow > deadline)
            {
                Assert.Equal(count, received.Count);
                Assert.All(received, r => Assert.Equal("participant.joined", (string)r["type"]!));
                return received;
            }
            await Task.Delay(100);
        }
    }

    private static Dictionary<string, string> Query(string url)
    {
        var query = url.Contains('?', StringComparison.Ordinal) ? url[url.IndexOf('?', StringComparison.Ordinal)..] : "";
        return QueryHelpers.ParseQuery(query).ToDictionary(p => p.Key, p => p.Value.ToString());
    }
}
