using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Referloop.Email;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;

namespace Referloop.Tests.Dashboard;

/// <summary>The dashboard's e-mail pages in a real Chromium: the sends list at desktop and phone widths, and a template previewed and saved.</summary>
[Trait("Category", "Browser")]
[Collection("Browser")]
public class DashboardEmailBrowserTests(HooksBrowserApp app) : IClassFixture<HooksBrowserApp>
{
    private readonly HttpClient _admin = new()
    {
        BaseAddress = new Uri(app.BaseUrl),
        DefaultRequestHeaders = { Authorization = new("Bearer", ReferloopApp.AdminKey) },
    };

    [Fact]
    public async Task The_sends_list_is_in_the_navigation_whole_at_1280_px_stacked_at_390_px_and_filtered_from_the_keyboard()
    {
        var campaign = await _admin.CreateCampaign(new { name = "Browser mail", landingUrl = "https://shop.example.com/" });
        var (advocate, _) = await _admin.Advocate(campaign, "rosa.long.address.for.a.table@example.com", "Rosa Vance");
        await app.WithDb(async db =>
        {
            var now = app.Clock.GetUtcNow();
            foreach (var (kind, status, error) in new[]
            {
                (EmailKind.Welcome, EmailStatus.Sent, (string?)null),
                (EmailKind.Reward, EmailStatus.Failed, "550 5.1.1 <rosa.long.address.for.a.table@example.com>: Recipient address rejected: User unknown"),
                (EmailKind.MagicLink, EmailStatus.Pending, "451 4.3.0 Mail system busy, try again later"),
            })
            {
                var send = EmailOutbox.New(campaign, advocate, kind, "rosa.long.address.for.a.table@example.com", now);
                send.Status = status;
                send.Subject = $"A {kind} mail for Rosa with a subject of some length";
                send.Attempts = 1;
                send.LastError = error;
                db.Add(send);
            }
            return await db.SaveChangesAsync();
        });
        var page = await app.SignedInPage();

        await page.ClickAsync("nav[aria-label=Main] >> text=E-mails");
        await page.WaitForSelectorAsync("h1:has-text('Sent e-mails')");
        Assert.Equal("page", await page.GetAttributeAsync("nav[aria-label=Main] a.active", "aria-current"));
        Assert.Equal(3, await page.Locator("table.emails tbody tr").CountAsync());
        Assert.Empty(await page.EvaluateAsync<string[]>("""
            () => [...document.querySelectorAll('table.emails th, table.emails td')]
                .filter(cell => cell.scrollWidth > cell.clientWidth + 1).map(cell => cell.textContent.trim().slice(0, 40))
            """));
        Assert.True(await page.EvaluateAsync<bool>("() => { const w = document.querySelector('.table-wrap'); return w.scrollWidth <= w.clientWidth; }"),
            "the e-mails table scrolls sideways at 1280 px");
        await BrowserApp.Screenshot(page, "email-sends-desktop");

        // Every cell of a row is on screen at a phone's width, with its column's name before it.
        await page.SetViewportSizeAsync(390, 844);
        var outside = await page.EvaluateAsync<string[]>("""
            () => [...document.querySelectorAll('table.emails td')]
                .filter(td => td.getBoundingClientRect().right > window.innerWidth + 1 || !getComputedStyle(td, '::before').content.includes('"'))
                .map(td => td.dataset.label)
            """);
        Assert.Empty(outside);
        await BrowserApp.Screenshot(page, "email-sends-phone");
        await page.SetViewportSizeAsync(1280, 900);

        // The filters from the keyboard: focus the status, choose, and submit with Enter.
        await page.FocusAsync("#status");
        await page.SelectOptionAsync("#status", "failed");
        await page.FocusAsync("button:has-text('Show')");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page).ToHaveURLAsync(new Regex(@"/admin/email\?.*status=failed"));
        await Assertions.Expect(page.Locator("table.emails tbody tr")).ToHaveCountAsync(1);
        Assert.Contains("User unknown", await page.InnerTextAsync("table.emails"));
        Assert.DoesNotContain(app.PolicyViolations, v => v.StartsWith($"{app.BaseUrl}/admin/email", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_template_is_previewed_in_a_sandboxed_frame_that_runs_no_script_and_saved()
    {
        var campaign = await _admin.CreateCampaign(new { name = "Frame mail", landingUrl = "https://shop.example.com/" });
        var page = await app.SignedInPage();
        await page.GotoAsync($"{app.BaseUrl}/admin/campaigns/{campaign}");
        await page.ClickAsync("a:has-text('E-mail templates')");
        await page.ClickAsync("td >> a:has-text('Welcome')");
        await page.WaitForSelectorAsync("h1:has-text('Welcome mail')");

        await page.FillAsync("#Subject", "Hello {firstName}, welcome to {campaignName}");
        await page.FillAsync("#Html", "<h1>Hello {firstName}</h1><p><a href=\"{shareUrl}\">Your link</a></p><script>parent.document.title = 'taken'</script>");
        await page.ClickAsync("button:has-text('Preview')");
        await page.WaitForSelectorAsync("text=of what you typed, not saved");
        Assert.Equal("Hello Alex, welcome to Frame mail", await page.InnerTextAsync("[data-preview=subject]"));
        var frame = page.FrameLocator("iframe.mail-html");
        Assert.Equal("Hello Alex", await frame.Locator("h1").InnerTextAsync());
        Assert.Equal("", await page.GetAttributeAsync("iframe.mail-html", "sandbox"));
        Assert.DoesNotContain("taken", await page.TitleAsync());
        await BrowserApp.Screenshot(page, "email-template-preview");

        await page.ClickAsync("button:has-text('Save')");
        await page.WaitForSelectorAsync(".notice");
        Assert.Equal("Hello {firstName}, welcome to {campaignName}", await page.InputValueAsync("#Subject"));
        Assert.Contains("as saved", await page.InnerTextAsync("#preview-heading"));
        await page.ClickAsync("a:has-text('E-mail templates')");
        Assert.Contains("custom", (await page.InnerTextAsync("tr[data-kind=welcome]")).ToLowerInvariant());
        Assert.Contains("default", (await page.InnerTextAsync("tr[data-kind=reward]")).ToLowerInvariant());
        // The frame inherits the page's policy: the template's script is refused by it (and by the sandbox), nothing else is.
        Assert.All(app.PolicyViolations, v => Assert.True(v.Contains("script", StringComparison.Ordinal), v));
    }
}
