using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;

namespace Referloop.Tests.Dashboard;

/// <summary>
/// What an audit of the dashboard found, checked one by one in a real Chromium: the keyboard reaches the content and
/// a referral's decision at once, the referrals table is whole on a desktop and readable on a phone, every control has
/// a name, and people can be found from the navigation.
/// </summary>
[Trait("Category", "Browser")]
[Collection("Browser")]
public class DashboardKeyboardAndLayoutTests(SeededDashboardApp app) : IClassFixture<SeededDashboardApp>
{
    private SeededDashboard Seed => app.Seed;

    [Fact]
    public async Task The_skip_link_is_the_first_tab_stop_and_the_decision_follows_the_title()
    {
        var page = await app.SignedInPage();
        await page.GotoAsync($"{app.BaseUrl}/admin/referrals/{Seed.QualifiedReferral}");

        await page.Keyboard.PressAsync("Tab");
        Assert.Equal("Skip to content", await page.EvaluateAsync<string>("document.activeElement.textContent"));
        await page.Keyboard.PressAsync("Enter");
        Assert.Equal("main", await page.EvaluateAsync<string>("document.activeElement.id"));

        // From the content: the two crumbs, then the approval's note and its button.
        var stops = new List<string>();
        for (var i = 0; i < 6 && !stops.Contains("approve"); i++)
        {
            await page.Keyboard.PressAsync("Tab");
            stops.Add(await page.EvaluateAsync<string>("document.activeElement.id || document.activeElement.textContent.trim()"));
        }
        Assert.Equal(["Referrals", "Spring referral", "approve-reason", "approve"], stops);
        await page.Keyboard.PressAsync("Tab");
        Assert.Equal("void-reason", await page.EvaluateAsync<string>("document.activeElement.id"));
    }

    [Fact]
    public async Task The_referrals_table_is_whole_at_1280_px_and_readable_with_every_status_tab_at_390_px()
    {
        var page = await app.SignedInPage();
        await page.GotoAsync($"{app.BaseUrl}/admin/referrals");
        Assert.Equal(5, await page.Locator("table.referrals tbody tr").CountAsync());

        var clipped = await ClippedCells(page, "table.referrals");
        Assert.True(clipped.Length == 0, "cut off at 1280 px: " + string.Join(", ", clipped));
        var lastColumn = await page.Locator("table.referrals tbody tr:first-child td:last-child").BoundingBoxAsync();
        var region = await page.Locator(".table-wrap").BoundingBoxAsync();
        Assert.True(lastColumn!.X + lastColumn.Width <= region!.X + region.Width, "the Created column ends outside the table's box");
        Assert.Matches(@"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$", await page.InnerTextAsync("table.referrals tbody tr:first-child td:last-child"));
        await BrowserApp.Screenshot(page, "a11y-referrals-desktop");

        await page.SetViewportSizeAsync(390, 844);
        foreach (var tab in await page.Locator("nav.tabs a").AllAsync())
        {
            var box = await tab.BoundingBoxAsync();
            Assert.True(box is not null && box.X >= 0 && box.X + box.Width <= 390, $"the {await tab.InnerTextAsync()} tab is off screen");
        }
        Assert.True(await page.Locator("nav.tabs a", new() { HasText = "Flagged" }).IsVisibleAsync());
        clipped = await ClippedCells(page, "table.referrals");
        Assert.True(clipped.Length == 0, "cut off at 390 px: " + string.Join(", ", clipped));
        // Rows stack: each cell takes the row's width and names its column.
        var cell = page.Locator("table.referrals tbody tr:first-child td:last-child");
        Assert.Equal("Created", await cell.GetAttributeAsync("data-label"));
        Assert.NotEqual("table-cell", await cell.EvaluateAsync<string>("td => getComputedStyle(td).display"));
        Assert.False(await page.EvaluateAsync<bool>("document.documentElement.scrollWidth > window.innerWidth"));
        Assert.Empty(await DashboardAccessibilityTests.UnnamedScrollBoxes(page));
        await BrowserApp.Screenshot(page, "a11y-referrals-phone");
    }

    [Fact]
    public async Task The_share_link_has_a_name_and_links_in_text_are_underlined()
    {
        var page = await app.SignedInPage();
        await page.GotoAsync($"{app.BaseUrl}/admin/campaigns/{Seed.Campaign}/participants/{Seed.Advocate}");
        var share = page.GetByRole(AriaRole.Textbox, new() { Name = "Share link", Exact = true });
        Assert.EndsWith("/r/" + Seed.AdvocateCode, await share.InputValueAsync());

        await page.GotoAsync($"{app.BaseUrl}/admin/coupon-pools?campaign={Seed.OtherCampaign}");
        Assert.Contains("underline", await page.Locator("a", new() { HasText = "add a reward rule" }).EvaluateAsync<string>("a => getComputedStyle(a).textDecorationLine"));
        await page.GotoAsync($"{app.BaseUrl}/admin/analytics?campaign={Seed.OtherCampaign}");
        Assert.Contains("underline", await page.Locator("a", new() { HasText = "Add an endpoint" }).EvaluateAsync<string>("a => getComputedStyle(a).textDecorationLine"));
    }

    [Fact]
    public async Task Participants_are_in_the_navigation_and_found_by_email_name_or_code_across_campaigns()
    {
        var page = await app.SignedInPage();
        await page.ClickAsync("nav[aria-label=Main] >> text=Participants");
        await page.WaitForSelectorAsync("h1:has-text('Participants')");
        Assert.Equal("page", await page.GetAttributeAsync("nav[aria-label=Main] a.active", "aria-current"));
        Assert.Contains("dana@example.org", await page.InnerTextAsync("table.participants"));
        Assert.Contains("cy@example.com", await page.InnerTextAsync("table.participants"));

        await page.FillAsync("#search", "Dana");
        await page.ClickAsync("form[role=search] button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("search=Dana"));
        await Assertions.Expect(page.Locator("table.participants tbody tr")).ToHaveCountAsync(1);
        Assert.Contains("Autumn friends", await page.InnerTextAsync("table.participants"));

        await page.FillAsync("#search", Seed.AdvocateCode);
        await page.ClickAsync("form[role=search] button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(new Regex($"search={Seed.AdvocateCode}"));
        await page.ClickAsync("table.participants tbody tr >> nth=0 >> a >> nth=0");
        await page.WaitForSelectorAsync("#share");
        Assert.Equal("Ann Lee", await page.InnerTextAsync("h1"));
    }

    /// <summary>Cells whose content is wider or taller than the cell shows.</summary>
    private static Task<string[]> ClippedCells(IPage page, string table) => page.EvaluateAsync<string[]>("""
        table => [...document.querySelectorAll(table + ' th, ' + table + ' td')]
            .filter(cell => cell.scrollWidth > cell.clientWidth + 1)
            .map(cell => cell.textContent.trim().slice(0, 40))
        """, table);
}

/// <summary>A browser-test server filled by <see cref="DashboardSeed"/> before the first test of its class.</summary>
public sealed class SeededDashboardApp : HooksBrowserApp
{
    private Receiver? _receiver;

    public SeededDashboard Seed { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _receiver = await DashboardSeed.ReceiverAsync();
        Seed = await DashboardSeed.FillAsync(this, _receiver);
    }

    protected override async Task DisposeResourcesAsync()
    {
        if (_receiver is not null)
        {
            await _receiver.DisposeAsync();
        }
        await base.DisposeResourcesAsync();
    }
}
