using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Mvc.Testing;
using Referloop.Campaigns;
using Referloop.HostedPages;
using Referloop.Tests.Support;

namespace Referloop.Tests.HostedPages;

/// <summary>
/// Amounts, counts and dates on the hosted pages follow the page's language, not the server's culture: German pages
/// write <c>10,50 €</c>, <c>1.000</c> and <c>02.11.2026</c>, English ones <c>€10.50</c>, <c>1,000</c> and <c>11/2/2026</c>.
/// </summary>
public sealed class PageFormattingTests(HostedPagesApp app) : IClassFixture<HostedPagesApp>
{
    private static int _lastAddress;
    private readonly HttpClient _admin = app.CreateAdminClient();

    private sealed record Pages(string Join, string Invited, string Portal);

    /// <summary>
    /// A campaign with decimal rebates (10.50 EUR per friend who orders, 7.25 USD for the friend who signs up, 1,234.50
    /// EUR at the 1,000th conversion, a goal of 1,200), an advocate with one friend who bought, and its three pages as
    /// a visitor reads them, entities decoded.
    /// </summary>
    private async Task<Pages> Render(string? language, string? acceptLanguage)
    {
        var campaign = await _admin.CreateCampaign(new
        {
            name = "Formats",
            landingUrl = "https://shop.example.com/welcome",
            goalConversions = 1200,
            page = new { language, shareLink = "page", leaderboard = true },
            rewards = new object[]
            {
                new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = new { type = "rebate", amount = 10.5m, currency = "EUR" } },
                new { recipient = "friend", trigger = "invited", kind = "standard", incentive = new { type = "rebate", amount = 7.25m, currency = "USD" } },
                new { recipient = "advocate", trigger = "converted", kind = "milestone",
                      tiers = new object[] { new { referrals = 1000, incentive = new { type = "rebate", amount = 1234.5m, currency = "EUR" } } } },
            },
        });
        var advocate = await _admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = $"ina.{campaign}@example.com", name = "Ina Roth" });
        await _admin.PostOk("/api/v1/events", new
        {
            campaignId = campaign,
            type = "purchase",
            email = $"jo.{campaign}@example.net",
            name = "Jo Weber",
            referralCode = (string)advocate["code"]!,
            orderId = "ORD-1",
            purchaseValue = 80,
            currency = "EUR",
        }, HttpStatusCode.Accepted);
        var link = await _admin.PostOk($"/api/v1/campaigns/{campaign}/participants/{advocate["id"]}/portal-link", new { }, HttpStatusCode.OK);

        var visitor = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        visitor.DefaultRequestHeaders.Add(ClientAddress.Header, $"198.51.100.{100 + Interlocked.Increment(ref _lastAddress)}");
        if (acceptLanguage is not null)
        {
            visitor.DefaultRequestHeaders.Add("Accept-Language", acceptLanguage);
        }
        async Task<string> Read(string path)
        {
            var response = await visitor.GetAsync(path);
            var html = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {path} answered {(int)response.StatusCode}");
            return WebUtility.HtmlDecode(html);
        }
        return new Pages(
            await Read($"/join/{campaign}"),
            await Read($"/r/{advocate["code"]}/join"),
            await Read(new Uri((string)link["portalUrl"]!).PathAndQuery));
    }

    // The portal names every reward's status; a refund leaves revoked and clawback_required ones behind.
    [Fact]
    public void Every_reward_status_has_a_text_in_every_language()
    {
        foreach (var language in PageLanguage.All)
        {
            var text = new PageText(language);
            Assert.All(Referloop.Rewards.RewardStatus.All, status => Assert.False(string.IsNullOrWhiteSpace(text["RewardStatus_" + status])));
        }
    }

    [Fact]
    public async Task A_german_campaign_writes_amounts_counts_and_dates_the_german_way()
    {
        var pages = await Render("de", acceptLanguage: "en-US");

        Assert.Contains("<p>7,25 $ bei deiner Anmeldung</p>", pages.Invited);
        Assert.Contains("<dd>10,50 € für jeden Freund, der bestellt</dd>", pages.Join);
        Assert.Contains("<dd>1.234,50 € bei 1.000 Empfehlungen</dd>", pages.Join);
        Assert.Contains("<dd>7,25 $ bei deiner Anmeldung</dd>", pages.Join);

        Assert.Contains("<td>10,50 €</td>", pages.Portal);
        Assert.Contains("1 von 1.000 bis zu deiner nächsten Belohnung: 1.234,50 €", pages.Portal);
        Assert.Contains("1 von 1.200 erfolgreichen Empfehlungen bis zum Ziel", pages.Portal);
        Assert.Contains("<time datetime=\"2026-11-02\">02.11.2026</time>", pages.Portal);
        Assert.Contains("<progress max=\"1000\" value=\"1\"", pages.Portal);
        Assert.DoesNotContain("EUR", pages.Portal);
        Assert.DoesNotContain("10.5", pages.Portal);
    }

    [Fact]
    public async Task An_english_campaign_writes_them_the_american_way()
    {
        var pages = await Render("en", acceptLanguage: "de-DE");

        Assert.Contains("<p>$7.25 when you sign up</p>", pages.Invited);
        Assert.Contains("<dd>€10.50 for every friend who orders</dd>", pages.Join);
        Assert.Contains("<dd>€1,234.50 at 1,000 referrals</dd>", pages.Join);

        Assert.Contains("<td>€10.50</td>", pages.Portal);
        Assert.Contains("1 of 1,000 towards your next reward: €1,234.50", pages.Portal);
        Assert.Contains("1 of 1,200 successful referrals towards the goal", pages.Portal);
        Assert.Contains("<time datetime=\"2026-11-02\">11/2/2026</time>", pages.Portal);
        Assert.DoesNotContain("10,5", pages.Portal);
    }

    [Fact]
    public async Task Without_a_campaign_language_the_browsers_language_picks_texts_and_formats_together()
    {
        var german = await Render(null, acceptLanguage: "de-DE,de;q=0.9,en;q=0.8");
        var english = await Render(null, acceptLanguage: "fr-FR");

        Assert.Contains("<p>7,25 $ bei deiner Anmeldung</p>", german.Invited);
        Assert.Contains("<td>10,50 €</td>", german.Portal);
        Assert.Contains("02.11.2026", german.Portal);
        Assert.Contains("<p>$7.25 when you sign up</p>", english.Invited);
        Assert.Contains("<td>€10.50</td>", english.Portal);
        Assert.Contains("11/2/2026", english.Portal);
    }

    [Fact]
    public async Task The_settings_offer_texts_replace_the_ones_told_from_the_rules()
    {
        var campaign = await _admin.CreateCampaign(new
        {
            name = "Own words",
            landingUrl = "https://shop.example.com/welcome",
            page = new { language = "de", shareLink = "page", friendOffer = "Ein Geschenk zur ersten Bestellung" },
            rewards = new object[]
            {
                new { recipient = "friend", trigger = "invited", kind = "standard", incentive = new { type = "rebate", amount = 5m, currency = "EUR" } },
            },
        });
        var advocate = await _admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "kai@example.com" });

        var html = WebUtility.HtmlDecode(await app.CreateClient().GetStringAsync($"/r/{advocate["code"]}/join"));

        Assert.Contains("<p>Ein Geschenk zur ersten Bestellung</p>", html);
        Assert.DoesNotContain("5,00 €", html);
    }
}

/// <summary>The one helper every hosted page and e-mail formats with, whatever the process's own culture.</summary>
public sealed class PageCultureTests
{
    private static readonly PageText German = new(PageLanguage.German);
    private static readonly PageText English = new(PageLanguage.English);

    [Theory]
    [InlineData(10, "USD", "10,00 $", "$10.00")]
    [InlineData(10.5, "EUR", "10,50 €", "€10.50")]
    [InlineData(1234567.891, "EUR", "1.234.567,891 €", "€1,234,567.891")]
    [InlineData(0.1234, "GBP", "0,1234 £", "£0.1234")]
    [InlineData(500, "JPY", "500 ¥", "¥500")]
    [InlineData(12.3, "CHF", "12,30 CHF", "CHF 12.30")]
    [InlineData(1.5, "KWD", "1,500 KWD", "KWD 1.500")]
    public void Money_follows_the_language_and_the_currencys_minor_unit(double amount, string currency, string german, string english)
    {
        Assert.Equal(german, German.Money((decimal)amount, currency));
        Assert.Equal(english, English.Money((decimal)amount, currency));
    }

    [Fact]
    public void Counts_dates_and_percentages_follow_the_language_under_any_process_culture()
    {
        var before = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
            var day = new DateTimeOffset(2026, 12, 4, 23, 30, 0, TimeSpan.FromHours(-5)); // 5 December in UTC

            Assert.Equal("1.234.567", German.Number(1_234_567));
            Assert.Equal("1,234,567", English.Number(1_234_567));
            Assert.Equal("05.12.2026", German.Date(day));
            Assert.Equal("12/5/2026", English.Date(day));
            Assert.Equal("12,5 %", 0.125m.ToString("P1", German.Culture));
            Assert.Equal("12.5%", 0.125m.ToString("P1", English.Culture));
            Assert.Equal("Ziel erreicht: 1.200 erfolgreiche Empfehlungen.", German.Format("GoalReached", German.Number(1200)));
        }
        finally
        {
            CultureInfo.CurrentCulture = before;
        }
    }

    [Fact]
    public void Rewards_in_e_mails_and_on_the_portal_are_described_with_the_same_helper()
    {
        var rebate = new Incentive { Type = IncentiveType.Rebate, Amount = 10.5m, Currency = "EUR" };

        Assert.Equal("10,50 €", PortalModel.Describe(rebate, German));
        Assert.Equal("€10.50", PortalModel.Describe(rebate, English));
        // Trailing zeros a stored amount carries are not decimals of its own.
        Assert.Equal("10,50 €", PortalModel.Describe(rebate with { Amount = 10.5000m }, German));
    }
}
