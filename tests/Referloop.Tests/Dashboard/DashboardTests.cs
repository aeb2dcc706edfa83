using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;

namespace Referloop.Tests.Dashboard;

public class DashboardTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    [Fact]
    public async Task Pages_need_a_signed_in_browser()
    {
        var anonymous = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var response = await anonymous.GetAsync("/admin/campaigns");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith("/admin/sign-in", response.Headers.Location!.PathAndQuery);
    }

    [Fact]
    public async Task A_wrong_key_is_refused_with_a_message()
    {
        var client = new DashboardClient(app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false }));
        var response = await client.Submit("/admin/sign-in", new() { ["key"] = "rl_admin_not_a_real_key_at_all" });

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("not an active admin key", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task After_ten_wrong_keys_in_a_minute_an_address_is_refused_until_the_minute_is_over()
    {
        DashboardClient From(string address)
        {
            var http = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
            http.DefaultRequestHeaders.Add(ClientAddress.Header, address);
            return new DashboardClient(http);
        }
        var guesser = From("203.0.113.61");
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await guesser.Submit("/admin/sign-in", new() { ["key"] = $"rl_admin_guess_number_{i:D4}" })).StatusCode);
        }

        var refused = await guesser.Submit("/admin/sign-in", new() { ["key"] = ReferloopApp.AdminKey });
        var elsewhere = await From("203.0.113.62").Submit("/admin/sign-in", new() { ["key"] = ReferloopApp.AdminKey });

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(refused.Headers.RetryAfter is not null);
        Assert.Equal(HttpStatusCode.Redirect, elsewhere.StatusCode);
    }

    [Fact]
    public async Task Forms_without_an_antiforgery_token_are_rejected()
    {
        var client = await DashboardClient.SignedIn(app);
        var response = await client.Http.PostAsync("/admin/campaigns/new",
            new FormUrlEncodedContent(new Dictionary<string, string> { ["Name"] = "Forged", ["LandingUrl"] = "https://a.example" }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.False(await app.WithDb(db => db.Campaigns.AnyAsync(c => c.Name == "Forged")));
    }

    [Fact]
    public async Task Signed_in_operator_creates_a_campaign_adds_an_advocate_and_pauses_it()
    {
        var client = await DashboardClient.SignedIn(app);
        Assert.Contains("Overview", await client.Page("/admin"));

        var created = await client.Submit("/admin/campaigns/new", new()
        {
            ["Name"] = "Dashboard spring",
            ["LandingUrl"] = "https://shop.example.com/spring",
            ["AttributionWindowDays"] = "14",
            ["HoldingPeriodDays"] = "3",
            ["Approval"] = "manual",
            ["AllowRewardsOnAutoApproved"] = "true",
            ["SelfReferral"] = "Block",
            ["SameIp"] = "Flag",
            ["DisposableEmail"] = "Block",
            ["CouponCycling"] = "Allow",
            ["BlockedEmails"] = "*@spam.example\nbad@example.com",
            ["BlockedIps"] = "203.0.113.0/24",
            ["SocialProofOrigins"] = "https://shop.example.com\nhttps://www.shop.example.com/",
            ["RewardsJson"] = """[{"recipient":"advocate","trigger":"converted","kind":"milestone","tiers":[{"referrals":3,"incentive":{"type":"rebate","amount":10,"currency":"usd"}}]}]""",
        });
        Assert.Equal(HttpStatusCode.Redirect, created.StatusCode);
        var campaignUrl = created.Headers.Location!.OriginalString;

        var campaign = await app.WithDb(db => db.Campaigns.AsNoTracking().SingleAsync(c => c.Name == "Dashboard spring"));
        Assert.Equal(14, campaign.AttributionWindowDays);
        Assert.Equal("manual", campaign.Approval);
        Assert.Equal(Referloop.Campaigns.FraudAction.Flag, campaign.Fraud.SameIp);
        Assert.Equal(["*@spam.example", "bad@example.com"], campaign.Fraud.BlockedEmails);
        Assert.Equal("USD", campaign.Rewards.Single().Tiers!.Single().Incentive!.Currency);
        Assert.Equal(["https://shop.example.com", "https://www.shop.example.com"], campaign.SocialProof!.AllowedOrigins);
        Assert.Contains("https://www.shop.example.com", await client.Page($"/admin/campaigns/{campaign.Id}/edit"));

        var details = await client.Page(campaignUrl);
        Assert.Contains("Dashboard spring", details);
        Assert.Contains("Advocate gets at 3 referrals: 10 USD rebate", details);
        Assert.Contains(campaign.PublishableKey, details);

        var joined = await client.Submit(campaignUrl, new() { ["email"] = "Ann@Example.com", ["name"] = "Ann Lee" }, $"{campaignUrl}?handler=Join");
        Assert.Equal(HttpStatusCode.Redirect, joined.StatusCode);
        var participantPage = await client.Page(joined.Headers.Location!.OriginalString);
        Assert.Contains("ann@example.com", participantPage);
        Assert.Contains("http://referloop.test/r/", participantPage);

        var paused = await client.Submit(campaignUrl, new() { ["status"] = "paused" }, $"{campaignUrl}?handler=Status");
        Assert.Equal(HttpStatusCode.Redirect, paused.StatusCode);
        Assert.Equal("paused", await app.WithDb(db => db.Campaigns.Where(c => c.Id == campaign.Id).Select(c => c.Status).SingleAsync()));
    }

    [Fact]
    public async Task An_invalid_campaign_form_shows_each_error_and_saves_nothing()
    {
        var client = await DashboardClient.SignedIn(app);
        var response = await client.Submit("/admin/campaigns/new", new()
        {
            ["Name"] = "",
            ["LandingUrl"] = "ftp://nope",
            ["AttributionWindowDays"] = "900",
            ["SocialProofOrigins"] = "https://shop.example.com/checkout",
            ["RewardsJson"] = """[{"recipient":"nobody","trigger":"converted","kind":"standard","incentive":{"type":"rebate","amount":5}}]""",
        });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var html = WebUtility.HtmlDecode(await response.Content.ReadAsStringAsync());
        Assert.Contains("The campaign was not saved", html);
        Assert.Contains("must be an absolute http or https URL.", html);
        Assert.Contains("must be between 1 and 365.", html);
        Assert.Contains("rewards[0].recipient", html);
        Assert.Contains("rewards[0].incentive.currency", html);
        Assert.Contains("must be an origin such as https://shop.example.com", html);

        var broken = await client.Submit("/admin/campaigns/new", new() { ["Name"] = "x", ["LandingUrl"] = "https://a.example", ["RewardsJson"] = "[{" });
        Assert.Equal(HttpStatusCode.BadRequest, broken.StatusCode);
        Assert.Contains("is not a JSON array of reward rules", await broken.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("MaxReferralsPerHour", "3000000000", "must be a whole number between 1 and 1000000.")]
    [InlineData("MaxReferralsPerHour", "1e3", "must be a whole number between 1 and 1000000.")]
    [InlineData("AttributionWindowDays", "abc", "must be a whole number between 1 and 365.")]
    [InlineData("SameIp", "7", "must be block, flag or allow.")]
    public async Task A_campaign_field_that_does_not_read_as_its_type_is_refused_and_nothing_changes(
        string formField, string value, string message)
    {
        var client = await DashboardClient.SignedIn(app);
        var name = $"Velocity {formField} {value}";
        Dictionary<string, string> Form() => new()
        {
            ["Name"] = name,
            ["LandingUrl"] = "https://shop.example.com/velocity",
            ["AttributionWindowDays"] = "14",
            ["HoldingPeriodDays"] = "3",
            ["Approval"] = "auto",
            ["AllowRewardsOnAutoApproved"] = "true",
            ["SelfReferral"] = "Block",
            ["SameIp"] = "Flag",
            ["DisposableEmail"] = "Block",
            ["CouponCycling"] = "Block",
            ["MaxReferralsPerHour"] = "5",
            ["RewardsJson"] = "[]",
        };
        Assert.Equal(HttpStatusCode.Redirect, (await client.Submit("/admin/campaigns/new", Form())).StatusCode);
        var before = await app.WithDb(db => db.Campaigns.AsNoTracking().SingleAsync(c => c.Name == name));

        var form = Form();
        form["Name"] = name + " renamed";
        form[formField] = value;
        var response = await client.Submit($"/admin/campaigns/{before.Id}/edit", form);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var html = WebUtility.HtmlDecode(await response.Content.ReadAsStringAsync());
        Assert.Contains("The campaign was not saved", html);
        // The message stands beside the field it is about.
        Assert.Matches(new Regex($"id=\"{formField}\"(?:(?!<span class=\"error\">).)*<span class=\"error\">{Regex.Escape(message)}</span>", RegexOptions.Singleline), html);
        var after = await app.WithDb(db => db.Campaigns.AsNoTracking().SingleAsync(c => c.Id == before.Id));
        Assert.Equal(name, after.Name);
        Assert.Equal(14, after.AttributionWindowDays);
        Assert.Equal(5, after.Fraud.MaxReferralsPerHour);
        Assert.Equal(Referloop.Campaigns.FraudAction.Flag, after.Fraud.SameIp);
        Assert.Equal(before.UpdatedAt, after.UpdatedAt);
    }

    [Fact]
    public async Task Participant_page_exports_and_deletes_a_person()
    {
        var admin = app.CreateAdminClient();
        var campaign = await admin.CreateCampaign();
        var ann = await admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "gdpr@example.com" });
        var client = await DashboardClient.SignedIn(app);
        var page = $"/admin/campaigns/{campaign}/participants/{ann["id"]}";

        var export = await client.Http.GetAsync($"{page}/export.json");
        Assert.Equal(HttpStatusCode.OK, export.StatusCode);
        Assert.Contains("gdpr@example.com", await export.Content.ReadAsStringAsync());

        var deleted = await client.Submit(page, [], $"{page}?handler=Delete");
        Assert.Equal(HttpStatusCode.Redirect, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.Http.GetAsync(page)).StatusCode);
    }

    [Fact]
    public async Task Participant_page_issues_a_portal_link_once_replaces_it_and_revokes_it()
    {
        var admin = app.CreateAdminClient();
        var campaign = await admin.CreateCampaign();
        var ann = await admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "portal-admin@example.com" });
        var client = await DashboardClient.SignedIn(app);
        var page = $"/admin/campaigns/{campaign}/participants/{ann["id"]}";
        Assert.Contains("No portal link is active", await client.Http.GetStringAsync(page));

        async Task<string> IssueAsync()
        {
            Assert.Equal(HttpStatusCode.Redirect, (await client.Submit(page, [], $"{page}?handler=PortalLink")).StatusCode);
            var html = await client.Http.GetStringAsync(page);
            var link = System.Text.RegularExpressions.Regex.Match(html, "id=\"portal-link\" readonly value=\"([^\"]+)\"").Groups[1].Value;
            Assert.Contains("/p/pt_", link);
            // Shown once: the next view only says that a link is active.
            var again = await client.Http.GetStringAsync(page);
            Assert.DoesNotContain(link, again);
            Assert.Contains("A portal link is active", again);
            return new Uri(link).PathAndQuery;
        }

        var visitor = app.CreateAnonymousClient();
        var first = await IssueAsync();
        Assert.Equal(HttpStatusCode.OK, (await visitor.GetAsync(first)).StatusCode);
        var second = await IssueAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await visitor.GetAsync(first)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await visitor.GetAsync(second)).StatusCode);

        Assert.Equal(HttpStatusCode.Redirect, (await client.Submit(page, [], $"{page}?handler=RevokePortalLink")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await visitor.GetAsync(second)).StatusCode);
        Assert.Contains("No portal link is active", await client.Http.GetStringAsync(page));
    }

    [Fact]
    public async Task Revoking_the_key_signs_the_browser_out()
    {
        var admin = app.CreateAdminClient();
        var created = await admin.PostOk("/api/v1/api-keys", new { name = "temporary" });
        var client = new DashboardClient(app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false }));
        Assert.Equal(HttpStatusCode.Redirect, (await client.Submit("/admin/sign-in", new() { ["key"] = (string)created["key"]! })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.Http.GetAsync("/admin/campaigns")).StatusCode);

        await admin.DeleteAsync($"/api/v1/api-keys/{created["id"]}");

        var after = await client.Http.GetAsync("/admin/campaigns");
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
        Assert.StartsWith("/admin/sign-in", after.Headers.Location!.PathAndQuery);
    }

    [Fact]
    public async Task The_stylesheet_is_served()
    {
        var response = await app.CreateClient().GetAsync("/admin/admin.css");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/css", response.Content.Headers.ContentType?.MediaType);
    }
}
