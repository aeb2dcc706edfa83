using System.Net;
using System.Net.Http.Json;
using Referloop.HostedPages;
using Referloop.Tests.Support;

namespace Referloop.Tests.HostedPages;

/// <summary>The campaign API's <c>slug</c> and <c>page</c> settings, and the pure rules behind the pages.</summary>
public sealed class CampaignPageSettingsTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task Page_settings_are_stored_and_answered_with_the_join_url()
    {
        var created = await _admin.PostOk("/api/v1/campaigns", new
        {
            name = "Settings",
            landingUrl = "https://shop.example.com/",
            slug = "summer-friends",
            page = new
            {
                shareLink = "page",
                headline = "  Bring a friend  ",
                description = "Both of you win.",
                advocateOffer = "$10",
                friendOffer = "10% off",
                brandColor = "#AA3300",
                logoUrl = "https://shop.example.com/logo.png",
                termsUrl = "https://shop.example.com/terms",
                language = "de",
                leaderboard = true,
            },
        });

        var page = created["page"]!;
        Assert.Equal("summer-friends", (string)created["slug"]!);
        Assert.Equal("http://referloop.test/join/summer-friends", (string)created["joinUrl"]!);
        Assert.Equal("page", (string)page["shareLink"]!);
        Assert.Equal("Bring a friend", (string)page["headline"]!);
        Assert.Equal("#aa3300", (string)page["brandColor"]!);
        Assert.Equal("de", (string)page["language"]!);
        Assert.True((bool)page["leaderboard"]!);
        var read = await _admin.GetOk($"/api/v1/campaigns/{created["id"]}");
        Assert.Equal(page.ToJsonString(), read["page"]!.ToJsonString());
    }

    [Fact]
    public async Task A_campaign_without_page_settings_redirects_and_has_no_leaderboard()
    {
        var created = await _admin.PostOk("/api/v1/campaigns", new { name = "Plain", landingUrl = "https://shop.example.com/" });

        Assert.Equal("redirect", (string)created["page"]!["shareLink"]!);
        Assert.False((bool)created["page"]!["leaderboard"]!);
        Assert.Null(created["slug"]);
        Assert.Equal($"http://referloop.test/join/{created["id"]}", (string)created["joinUrl"]!);
    }

    [Fact]
    public async Task Bad_page_settings_are_named_by_field_and_rule()
    {
        var response = await _admin.PostAsJsonAsync("/api/v1/campaigns", new
        {
            name = "Bad",
            landingUrl = "https://shop.example.com/",
            slug = "Not a slug",
            page = new
            {
                shareLink = "popup",
                brandColor = "red",
                logoUrl = "javascript:alert(1)",
                termsUrl = "/terms",
                language = "fr",
                headline = new string('h', 121)
            },
        });

        await response.AssertValidationProblem("slug", "page.shareLink", "page.brandColor", "page.logoUrl", "page.termsUrl",
            "page.language", "page.headline");
    }

    [Fact]
    public async Task A_slug_belongs_to_one_campaign()
    {
        var first = await _admin.PostOk("/api/v1/campaigns", new { name = "One", landingUrl = "https://shop.example.com/", slug = "taken" });
        var second = await _admin.PostAsJsonAsync("/api/v1/campaigns", new { name = "Two", landingUrl = "https://shop.example.com/", slug = "taken" });
        (await second.AssertValidationProblem("slug"))["errors"]!["slug"]![0]!.GetValue<string>().Contains("another campaign");

        // Saving the campaign that has it keeps it.
        var again = await _admin.PutAsJsonAsync($"/api/v1/campaigns/{first["id"]}", new { name = "One", landingUrl = "https://shop.example.com/", slug = "taken" });
        again.EnsureStatus(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData(null, null, "en")]
    [InlineData(null, "de-DE,de;q=0.9,en;q=0.8", "de")]
    [InlineData(null, "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "en")]
    [InlineData(null, "fr, de;q=0.9", "de")]
    [InlineData(null, "de;q=0, en;q=0.1", "en")]
    [InlineData("de", "en-US", "de")]
    [InlineData("en", "de", "en")]
    public void The_language_is_the_campaigns_else_the_browsers_best_supported(string? campaign, string? accept, string expected) =>
        Assert.Equal(expected, PageLanguage.Choose(campaign, accept));

    [Fact]
    public void Every_text_is_translated()
    {
        var english = PageText.Names();
        Assert.Contains("JoinButton", english);
        Assert.Equal(english, PageText.NamesIn(PageLanguage.German));
        Assert.Equal("Meinen Empfehlungslink holen", new PageText("de")["JoinButton"]);
    }

    [Theory]
    [InlineData("#ffd500", "#000000")]
    [InlineData("#1f5fbf", "#ffffff")]
    [InlineData("#777777", "#000000")]
    [InlineData("#000000", "#ffffff")]
    public void Text_on_the_brand_colour_reads_at_4_5_to_1(string brand, string ink)
    {
        Assert.Equal(ink, Brand.Ink(brand));
        Assert.True(Brand.Contrast(brand, ink) >= 4.5);
    }
}
