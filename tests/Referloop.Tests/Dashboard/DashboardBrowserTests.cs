using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using Referloop.Tests.Support;

namespace Referloop.Tests.Dashboard;

/// <summary>The dashboard driven by a real headless Chromium, as an operator would use it.</summary>
[Trait("Category", "Browser")]
[Collection("Browser")] // one browser class at a time: side by side, page waits time out on a 2-core machine
public class DashboardBrowserTests(BrowserApp app) : IClassFixture<BrowserApp>
{
    [Fact]
    public async Task Operator_signs_in_creates_a_campaign_adds_an_advocate_and_signs_out()
    {
        var page = await app.SignedInPage();
        Assert.Equal("Overview", await page.InnerTextAsync("h1"));
        await BrowserApp.Screenshot(page, "overview");

        await page.ClickAsync("text=New campaign");
        await page.FillAsync("#Name", "Browser spring");
        await page.FillAsync("#LandingUrl", "https://shop.example.com/spring");
        await page.SelectOptionAsync("#SameIp", "Flag");
        await page.FillAsync("#RewardsJson", """
            [{ "recipient": "both", "trigger": "converted", "kind": "standard",
               "incentive": { "type": "rebate", "amount": 15, "currency": "EUR" }, "limits": { "perMonth": 3 } }]
            """);
        await BrowserApp.Screenshot(page, "campaign-new");
        await page.ClickAsync("form.form button[type=submit]");

        await page.WaitForSelectorAsync(".notice");
        Assert.Contains("Browser spring", await page.InnerTextAsync("h1"));
        Assert.Contains("Advocate and friend each get 15 EUR rebate when a friend converts (at most 3 a month).", await page.InnerTextAsync(".rules"));

        await page.FillAsync("input[name=email]", "ann@example.com");
        await page.FillAsync("input[name=name]", "Ann Lee");
        await page.ClickAsync("text=Add advocate");
        await page.WaitForSelectorAsync("#share");
        var shareUrl = await page.InputValueAsync("#share");
        Assert.Matches($"^{app.BaseUrl}/r/[A-Za-z0-9]{{8}}$", shareUrl);
        await BrowserApp.Screenshot(page, "participant");

        await page.ClickAsync(".crumbs a >> nth=1");
        Assert.Equal(1, await page.Locator("table tbody tr").CountAsync());
        await BrowserApp.Screenshot(page, "campaign");

        var campaign = await app.WithDb(db => db.Campaigns.AsNoTracking().SingleAsync(c => c.Name == "Browser spring"));
        Assert.Equal(Referloop.Campaigns.FraudAction.Flag, campaign.Fraud.SameIp);

        await page.ClickAsync("text=Sign out");
        await Assertions.Expect(page).ToHaveURLAsync($"{app.BaseUrl}/admin/sign-in");
    }

    [Fact]
    public async Task Confirmations_and_filters_work_under_the_content_security_policy()
    {
        var admin = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        admin.DefaultRequestHeaders.Authorization = new("Bearer", ReferloopApp.AdminKey);
        var campaign = await admin.CreateCampaign(Api.AutoApprovedRebateCampaign("Policy week"));
        var participant = (string)(await admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "bo@example.com" }))["id"]!;
        var page = await app.SignedInPage();

        // A filter that submits itself when an option is chosen.
        await page.GotoAsync($"{app.BaseUrl}/admin/referrals");
        await page.SelectOptionAsync("#campaign", campaign);
        await Assertions.Expect(page).ToHaveURLAsync(new Regex($"campaign={campaign}"));

        // A form that asks first: declining keeps the participant, accepting deletes them.
        await page.GotoAsync($"{app.BaseUrl}/admin/campaigns/{campaign}/participants/{participant}");
        var asked = new List<string>();
        var answers = new Queue<bool>([false, true]);
        page.Dialog += async (_, dialog) =>
        {
            asked.Add(dialog.Message);
            await (answers.Dequeue() ? dialog.AcceptAsync() : dialog.DismissAsync());
        };
        await page.ClickAsync("form[data-confirm] button[type=submit]");
        Assert.Equal(["Delete bo@example.com and every record of them? This cannot be undone."], asked);
        await page.ClickAsync("form[data-confirm] button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync($"{app.BaseUrl}/admin/campaigns/{campaign}");
        Assert.Contains("were deleted", await page.InnerTextAsync(".notice"));
        Assert.Equal(2, asked.Count);
        Assert.False(await app.WithDb(db => db.Participants.AnyAsync(p => p.Id == participant)));

        Assert.Empty(app.PolicyViolations);
    }

    [Fact]
    public async Task The_dashboard_fits_a_phone_screen()
    {
        var page = await app.SignedInPage();
        await page.SetViewportSizeAsync(390, 844);
        await page.GotoAsync($"{app.BaseUrl}/admin/campaigns");

        var overflow = await page.EvaluateAsync<bool>("document.documentElement.scrollWidth > window.innerWidth");
        Assert.False(overflow, "the page scrolls sideways on a phone");
        await BrowserApp.Screenshot(page, "campaigns-phone");
    }
}
