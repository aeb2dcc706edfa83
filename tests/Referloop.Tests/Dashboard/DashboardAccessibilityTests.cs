using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;
using Referloop.Tests.Support;

namespace Referloop.Tests.Dashboard;

/// <summary>
/// Every dashboard page, empty and filled, with its forms, errors and confirmations, checked by axe-core in a real
/// Chromium against WCAG 2.1 A and AA at a desktop (1280 px) and a phone (390 px) width. One page is reused and only
/// its viewport changes between the two passes, which keeps the whole walk to a couple of seconds per page.
/// </summary>
[Trait("Category", "Browser")]
[Collection("Browser")]
public class DashboardAccessibilityTests(HooksBrowserApp app) : IClassFixture<HooksBrowserApp>
{
    public static readonly (int Width, int Height)[] Widths = [(1280, 900), (390, 844)];

    private static readonly AxeRunOptions WcagAa = new()
    {
        RunOnly = new RunOnlyOptions { Type = "tag", Values = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
        ResultTypes = [ResultType.Violations],
        // The one frame in the dashboard is the e-mail preview: the merchant's own HTML in a sandbox without scripts,
        // where axe cannot run (evaluating in it never returns). Its title is checked on the page that holds it.
        Iframes = false,
    };

    private readonly List<string> _problems = [];

    [Fact]
    public async Task Every_page_empty_and_filled_passes_axe_at_desktop_and_phone_widths()
    {
        var page = await app.SignedInPage();
        page.Dialog += (_, dialog) => dialog.AcceptAsync();

        // A fresh server: every list shows its empty state.
        foreach (var (name, path) in new[]
        {
            ("overview, empty", "/admin"), ("campaigns, empty", "/admin/campaigns"), ("participants, empty", "/admin/participants"),
            ("referrals, empty", "/admin/referrals"), ("events, empty", "/admin/events"), ("rewards, empty", "/admin/rewards"),
            ("coupon pools, no campaign", "/admin/coupon-pools"), ("analytics, no campaign", "/admin/analytics"),
            ("webhooks, empty", "/admin/webhooks"), ("inbound hooks, no campaign", "/admin/inbound-hooks"),
            ("new campaign", "/admin/campaigns/new"), ("new webhook endpoint", "/admin/webhooks/new"),
            ("sent e-mails, empty", "/admin/email"),
        })
        {
            await Visit(page, name, path);
        }

        await using var receiver = await DashboardSeed.ReceiverAsync();
        var s = await DashboardSeed.FillAsync(app, receiver);
        await DashboardSeed.EmailSendsAsync(app, s);
        foreach (var (name, path) in new[]
        {
            ("overview", "/admin"),
            ("campaigns", "/admin/campaigns"),
            ("campaigns, archived tab (none)", "/admin/campaigns?status=archived"),
            ("campaign", $"/admin/campaigns/{s.Campaign}"),
            ("campaign without rules", $"/admin/campaigns/{s.OtherCampaign}"),
            ("campaign search, no match", $"/admin/campaigns/{s.Campaign}?search=nobody"),
            ("edit campaign", $"/admin/campaigns/{s.Campaign}/edit"),
            ("import participants", $"/admin/campaigns/{s.Campaign}/import"),
            ("participants", "/admin/participants"),
            ("participants, searched", "/admin/participants?search=friend"),
            ("participants, no match", "/admin/participants?search=nobody-at-all"),
            ("advocate", $"/admin/campaigns/{s.Campaign}/participants/{s.Advocate}"),
            ("friend", $"/admin/campaigns/{s.Campaign}/participants/{s.Friend}"),
            ("referrals", "/admin/referrals"),
            ("referrals, review queue", "/admin/referrals?status=flagged"),
            ("referrals, empty status", $"/admin/referrals?campaign={s.OtherCampaign}&status=approved"),
            ("referral, pending", $"/admin/referrals/{s.PendingReferral}"),
            ("referral, qualified", $"/admin/referrals/{s.QualifiedReferral}"),
            ("referral, approved", $"/admin/referrals/{s.ApprovedReferral}"),
            ("referral, voided", $"/admin/referrals/{s.VoidedReferral}"),
            ("referral, flagged", $"/admin/referrals/{s.FlaggedReferral}"),
            ("events", "/admin/events"),
            ("rewards", "/admin/rewards"),
            ("rewards to pay", "/admin/rewards?paid=unpaid"),
            ("coupon pools", $"/admin/coupon-pools?campaign={s.Campaign}"),
            ("coupon pools, none yet", $"/admin/coupon-pools?campaign={s.OtherCampaign}"),
            ("analytics", $"/admin/analytics?campaign={s.Campaign}"),
            ("analytics, quiet campaign", $"/admin/analytics?campaign={s.OtherCampaign}&period=7d"),
            ("webhooks", "/admin/webhooks"),
            ("webhook endpoint", $"/admin/webhooks/{s.Endpoint}"),
            ("webhook endpoint, disabled", $"/admin/webhooks/{s.DownEndpoint}"),
            ("edit webhook endpoint", $"/admin/webhooks/{s.Endpoint}/edit"),
            ("webhook message, delivered", $"/admin/webhooks/{s.Endpoint}/messages/{s.DeliveredMessage}"),
            ("webhook message, failed", $"/admin/webhooks/{s.DownEndpoint}/messages/{s.FailedMessage}"),
            ("inbound hooks", "/admin/inbound-hooks"),
            ("sent e-mails", "/admin/email"),
            ("sent e-mails, filtered", $"/admin/email?campaign={s.Campaign}&kind=reward&status=failed"),
            ("sent e-mails, no match", $"/admin/email?campaign={s.OtherCampaign}&status=failed"),
            ("e-mail templates", $"/admin/campaigns/{s.Campaign}/email"),
            ("e-mail template, default", $"/admin/campaigns/{s.Campaign}/email/welcome"),
            ("e-mail template, magic link", $"/admin/campaigns/{s.Campaign}/email/magic_link"),
        })
        {
            await Visit(page, name, path);
        }

        // An inbound hook's requests, opened.
        await page.GotoAsync($"{app.BaseUrl}/admin/inbound-hooks/{s.Hook}");
        foreach (var details in await page.Locator("details").AllAsync())
        {
            await details.EvaluateAsync("d => d.open = true");
        }
        await Audit(page, "inbound hook, requests opened");

        // Forms, their errors and what they answer with.
        await page.GotoAsync($"{app.BaseUrl}/admin/campaigns/new");
        await page.FillAsync("#Name", "Broken rules");
        await page.FillAsync("#LandingUrl", "https://shop.example.com/");
        await page.FillAsync("#RewardsJson", """[{ "recipient": "nobody", "trigger": "converted", "kind": "standard" }]""");
        await Submit(page, "form.form button[type=submit]");
        await page.WaitForSelectorAsync(".error-summary");
        await Audit(page, "new campaign, with errors");

        await page.GotoAsync($"{app.BaseUrl}/admin/campaigns/{s.Campaign}");
        await page.FillAsync("input[name=email]", "new.advocate@example.com");
        await Submit(page, "button:has-text('Add advocate')");
        await page.WaitForSelectorAsync(".notice");
        await Audit(page, "participant, just joined");

        await page.GotoAsync($"{app.BaseUrl}/admin/referrals/{s.QualifiedReferral}");
        await Submit(page, "#approve");
        await page.WaitForSelectorAsync(".notice");
        await Audit(page, "referral, just approved");

        await page.GotoAsync($"{app.BaseUrl}/admin/coupon-pools?campaign={s.Campaign}");
        await page.FillAsync("#pool", "not a pool name!");
        await page.EvaluateAsync("document.querySelector('#pool').removeAttribute('pattern')");
        await Submit(page, "button:has-text('Upload codes')");
        await page.WaitForSelectorAsync(".error-summary");
        await Audit(page, "coupon pools, upload refused");

        await page.GotoAsync($"{app.BaseUrl}/admin/webhooks/new");
        await page.FillAsync("#EndpointUrl", receiver.Url("/new"));
        await page.CheckAsync("input[name=EventTypes][value='referral.approved']");
        await Submit(page, "button:has-text('Create endpoint')");
        await page.WaitForSelectorAsync("#secret");
        await Audit(page, "webhook endpoint, secret shown once");

        await page.ClickAsync("text=Send test message");
        await page.WaitForSelectorAsync("#test-result [data-test-code]:has-text('200')");
        await Audit(page, "webhook endpoint, test message answered");

        await page.GotoAsync($"{app.BaseUrl}/admin/inbound-hooks");
        await page.SelectOptionAsync("#Kind", "conversion");
        await page.FillAsync("#Name", "Form tool");
        await page.CheckAsync("#Signed");
        await Submit(page, "button:has-text('Create hook')");
        await page.WaitForSelectorAsync("#hook-url");
        await Audit(page, "inbound hook, URL shown once");

        await page.GotoAsync($"{app.BaseUrl}/admin/campaigns/{s.Campaign}/email/reward");
        await page.FillAsync("#Subject", "{firstName}, a {prize} for you");
        await Submit(page, "button:has-text('Save')");
        await page.WaitForSelectorAsync(".error-summary");
        await Audit(page, "e-mail template, with errors");

        await page.FillAsync("#Subject", "{firstName}, {rewardDescription} for you");
        await page.FillAsync("#Html", "<h1>Thank you, {firstName}</h1><p>You earned {rewardDescription}.</p>");
        await Submit(page, "button:has-text('Preview')");
        await page.WaitForSelectorAsync("text=of what you typed, not saved");
        await Audit(page, "e-mail template, draft previewed");

        await Submit(page, "button:has-text('Save')");
        await page.WaitForSelectorAsync(".notice");
        await Audit(page, "e-mail template, saved with HTML");

        await Submit(page, "button:has-text('Reset to default')");
        await page.WaitForSelectorAsync(".notice:has-text('back to the default')");
        await Audit(page, "e-mail template, reset");

        Assert.True(_problems.Count == 0, string.Join("\n", _problems));
        Assert.True(app.PolicyViolations.IsEmpty, string.Join("\n", app.PolicyViolations));
    }

    [Fact]
    public async Task The_sign_in_page_and_its_error_pass_axe()
    {
        var page = await app.Browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });
        await Visit(page, "sign in", "/admin/sign-in");
        await page.FillAsync("#key", "rl_admin_not_a_key_of_this_server_000000");
        await Submit(page, "button[type=submit]");
        await page.WaitForSelectorAsync(".error");
        await Audit(page, "sign in, refused");
        await page.CloseAsync();

        Assert.True(_problems.Count == 0, string.Join("\n", _problems));
    }

    private async Task Visit(IPage page, string name, string path)
    {
        var response = await page.GotoAsync(app.BaseUrl + path);
        Assert.True(response?.Ok == true, $"{path} answered {response?.Status}");
        await Audit(page, name);
    }

    /// <summary>Clicks a submit button; the caller then waits for what only the answer page shows.</summary>
    private static Task Submit(IPage page, string selector) => page.ClickAsync(selector);

    /// <summary>axe at both widths, and the layout rules axe cannot see: nothing scrolls sideways, scroll boxes are named stops.</summary>
    private async Task Audit(IPage page, string name)
    {
        await page.WaitForLoadStateAsync(LoadState.DOMContentLoaded);
        foreach (var (width, height) in Widths)
        {
            await page.SetViewportSizeAsync(width, height);
            var result = await page.RunAxe(WcagAa);
            foreach (var violation in result.Violations)
            {
                var nodes = string.Join("; ", violation.Nodes.Take(3).Select(n => $"{n.Target} {n.Html}"));
                _problems.Add($"{name} at {width} px: {violation.Id} ({violation.Impact}) {violation.Help}: {nodes}");
            }
            foreach (var box in await UnnamedScrollBoxes(page))
            {
                _problems.Add($"{name} at {width} px: a scroll box is not a named, focusable region: {box}");
            }
            var sticking = await page.EvaluateAsync<string[]>("""
                () => document.documentElement.scrollWidth <= window.innerWidth ? [] : [...document.querySelectorAll('body *')]
                    .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1 && el.children.length === 0)
                    .map(el => el.outerHTML.slice(0, 120)).slice(0, 3)
                """);
            if (sticking.Length > 0)
            {
                _problems.Add($"{name} at {width} px: the page scrolls sideways, past its edge: {string.Join("; ", sticking)}");
            }
        }
        await page.SetViewportSizeAsync(Widths[0].Width, Widths[0].Height);
    }

    /// <summary>Elements that scroll (content larger than the box, overflow auto or scroll) without role, name and tabindex; form fields are stops of their own.</summary>
    public static Task<string[]> UnnamedScrollBoxes(IPage page) => page.EvaluateAsync<string[]>("""
        () => [...document.querySelectorAll('main *:not(textarea, select)')].filter(el => {
            const style = getComputedStyle(el);
            const scrolls = (/auto|scroll/.test(style.overflowX) && el.scrollWidth > el.clientWidth + 1)
                || (/auto|scroll/.test(style.overflowY) && el.scrollHeight > el.clientHeight + 1);
            const named = el.getAttribute('role') === 'region' && el.getAttribute('tabindex') === '0'
                && (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby'));
            return scrolls && !named;
        }).map(el => el.outerHTML.slice(0, 160))
        """);
}
