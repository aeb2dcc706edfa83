using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Referloop.Email;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;

namespace Referloop.Tests.Dashboard;

/// <summary>
/// The dashboard's e-mail pages without a browser: the recorded sends, filtered and paged newest first, and a
/// campaign's templates edited, refused by the API's rules, previewed and reset, as the campaign API then shows them.
/// </summary>
public class DashboardEmailTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task The_sends_list_is_newest_first_filtered_by_campaign_kind_and_status_and_paged_by_cursor()
    {
        var campaign = await _admin.CreateCampaign(new { name = "Mail list", landingUrl = "https://shop.example.com/" });
        var other = await _admin.CreateCampaign(new { name = "Other mail list", landingUrl = "https://shop.example.com/" });
        var (advocate, _) = await _admin.Advocate(campaign, "mia@example.com", "Mia Lind");
        await Sends(campaign, advocate, "mia@example.com", EmailKind.Welcome, EmailStatus.Sent, 52, subject: i => $"Welcome number {i}");
        await Sends(campaign, advocate, "mia@example.com", EmailKind.Reward, EmailStatus.Failed, 1, subject: _ => "Your reward",
            error: "550 5.1.1 mailbox unknown");
        await Sends(other, "par_gone", "erased@example.invalid", EmailKind.MagicLink, EmailStatus.Skipped, 1, error: "the participant was erased");
        var client = await DashboardClient.SignedIn(app);

        var all = await client.Page("/admin/email");
        Assert.Contains("Sent e-mails", all);
        Assert.Contains("E-mail is off on this server", all);
        var ids = SendIds(all);
        Assert.Equal(50, ids.Count);
        Assert.Equal(ids.OrderDescending(StringComparer.Ordinal), ids);
        Assert.Contains("erased@example.invalid", all);
        Assert.DoesNotContain("/participants/par_gone", all);
        Assert.Contains($"/admin/campaigns/{campaign}/participants/{advocate}", all);
        Assert.Contains("550 5.1.1 mailbox unknown", all);

        var older = Cursor(all, "next");
        var second = await client.Page("/admin/email?before=" + Uri.EscapeDataString(older));
        var secondIds = SendIds(second);
        Assert.Equal(4, secondIds.Count);
        Assert.Empty(secondIds.Intersect(ids));
        Assert.Null(CursorOrNull(second, "next"));
        Assert.Equal(ids, SendIds(await client.Page("/admin/email?after=" + Uri.EscapeDataString(Cursor(second, "prev")))));

        var failed = await client.Page($"/admin/email?campaign={campaign}&status=failed");
        Assert.Single(SendIds(failed));
        Assert.Contains("Your reward", failed);
        Assert.Contains($"/admin/campaigns/{campaign}/email", failed);
        var magic = await client.Page("/admin/email?kind=magic_link");
        Assert.Single(SendIds(magic));
        Assert.Contains("the participant was erased", magic);
        Assert.Equal(52, SendIds(await client.Page($"/admin/email?campaign={campaign}&kind=welcome&status=sent")).Count
            + SendIds(await client.Page($"/admin/email?campaign={campaign}&kind=welcome&status=sent&before="
                + Uri.EscapeDataString(Cursor(await client.Page($"/admin/email?campaign={campaign}&kind=welcome&status=sent"), "next")))).Count);
        var none = await client.Page($"/admin/email?campaign={other}&kind=welcome");
        Assert.Empty(SendIds(none));
        Assert.Contains("No recorded e-mail matches these filters", none);

        // A kind or status the list does not know is ignored, as a hand-edited address should be.
        Assert.Equal(50, SendIds(await client.Page("/admin/email?kind=postcard&status=lost")).Count);
    }

    [Fact]
    public async Task An_edited_template_is_saved_seen_by_the_api_previewed_and_reset_to_the_default()
    {
        var campaign = await _admin.CreateCampaign(new
        {
            name = "Template spring",
            landingUrl = "https://shop.example.com/",
            rewards = new object[] { new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = EngineKit.Rebate(15) } },
        });
        var client = await DashboardClient.SignedIn(app);

        var list = await client.Page($"/admin/campaigns/{campaign}/email");
        foreach (var kind in EmailKind.All)
        {
            Assert.Contains($"/admin/campaigns/{campaign}/email/{kind}", list);
        }
        Assert.Equal(4, Count(list, "badge default"));
        Assert.Contains($"/admin/campaigns/{campaign}/email", await client.Page($"/admin/campaigns/{campaign}"));

        // The form starts from the default texts; the preview is the default mail for a made-up advocate.
        var form = await client.Page($"/admin/campaigns/{campaign}/email/reward");
        Assert.Contains("value=\"You earned a reward: {rewardDescription}\"", form);
        Assert.Contains("You earned a reward: $15.00", form);
        Assert.Contains("Hi Alex,", form);

        var saved = await client.Submit($"/admin/campaigns/{campaign}/email/reward", new()
        {
            ["Subject"] = "{firstName}, {rewardDescription} for you",
            ["Text"] = "Thanks for sharing {campaignName}!\r\nCode: {couponCode}\r\n{shareUrl}",
            ["Html"] = "<p>Thanks, {firstName}!</p><script>alert(1)</script>",
        });
        Assert.Equal(HttpStatusCode.Redirect, saved.StatusCode);
        Assert.Equal($"/admin/campaigns/{campaign}/email/reward", saved.Headers.Location!.OriginalString);

        var email = (await _admin.GetOk($"/api/v1/campaigns/{campaign}"))["email"]!;
        Assert.Equal("{firstName}, {rewardDescription} for you", (string)email["reward"]!["subject"]!);
        Assert.Equal("Thanks for sharing {campaignName}!\nCode: {couponCode}\n{shareUrl}", (string)email["reward"]!["text"]!);
        Assert.Equal("<p>Thanks, {firstName}!</p><script>alert(1)</script>", (string)email["reward"]!["html"]!);
        Assert.Null(email["welcome"]);

        var page = await client.Page($"/admin/campaigns/{campaign}/email/reward");
        Assert.Contains("The reward issued mail is saved.", page);
        Assert.Contains("Alex, $15.00 for you", page);
        Assert.Contains("Thanks for sharing Template spring!", page);
        // The coupon line is left out (no code in a rebate), as the sender leaves it out.
        Assert.DoesNotContain("Code:", Between(page, "data-preview=\"text\">", "</pre>"));
        // The HTML goes into a sandboxed frame's srcdoc, encoded: never into the page itself.
        Assert.Contains("sandbox=\"\" srcdoc=\"&lt;p&gt;Thanks, Alex!&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;", page);
        Assert.DoesNotContain("<script>alert(1)", page);
        Assert.Contains("badge custom", await client.Page($"/admin/campaigns/{campaign}/email"));

        // Editing the campaign's other settings keeps its templates.
        var edit = await client.Page($"/admin/campaigns/{campaign}/edit");
        var editFields = new Dictionary<string, string>
        {
            ["Name"] = "Template spring, renamed",
            ["LandingUrl"] = "https://shop.example.com/",
            ["RewardsJson"] = """[{"recipient":"advocate","trigger":"converted","kind":"standard","incentive":{"type":"rebate","amount":15,"currency":"USD"}}]""",
        };
        Assert.Contains("Template spring", edit);
        Assert.Equal(HttpStatusCode.Redirect, (await client.Submit($"/admin/campaigns/{campaign}/edit", editFields)).StatusCode);
        var kept = (await _admin.GetOk($"/api/v1/campaigns/{campaign}"))["email"]!;
        Assert.Equal("{firstName}, {rewardDescription} for you", (string)kept["reward"]!["subject"]!);

        // Preview renders what was typed without saving it.
        var preview = await client.Submit($"/admin/campaigns/{campaign}/email/reward", new()
        {
            ["Subject"] = "Draft for {name}",
            ["Text"] = "Draft body",
            ["Html"] = "",
        }, $"/admin/campaigns/{campaign}/email/reward?handler=Preview");
        Assert.Equal(HttpStatusCode.OK, preview.StatusCode);
        var previewed = await preview.Content.ReadAsStringAsync();
        Assert.Contains("Draft for Alex Sample", previewed);
        Assert.Contains("of what you typed, not saved", previewed);
        Assert.DoesNotContain("srcdoc", previewed);
        Assert.Equal("{firstName}, {rewardDescription} for you",
            (string)(await _admin.GetOk($"/api/v1/campaigns/{campaign}"))["email"]!["reward"]!["subject"]!);

        // A field left as the default text stays the default (and follows the campaign's language).
        Assert.Equal(HttpStatusCode.Redirect, (await client.Submit($"/admin/campaigns/{campaign}/email/welcome", new()
        {
            ["Subject"] = "Welcome to {campaignName}, {firstName}",
            ["Text"] = "Welcome aboard, {firstName}: {shareUrl}",
            ["Html"] = "",
        })).StatusCode);
        var welcome = (await _admin.GetOk($"/api/v1/campaigns/{campaign}"))["email"]!["welcome"]!;
        Assert.Null(welcome["subject"]);
        Assert.Equal("Welcome aboard, {firstName}: {shareUrl}", (string)welcome["text"]!);

        var reset = await client.Submit($"/admin/campaigns/{campaign}/email/reward", [],
            $"/admin/campaigns/{campaign}/email/reward?handler=Reset");
        Assert.Equal(HttpStatusCode.Redirect, reset.StatusCode);
        var after = (await _admin.GetOk($"/api/v1/campaigns/{campaign}"))["email"]!;
        Assert.Null(after["reward"]);
        Assert.Equal("Welcome aboard, {firstName}: {shareUrl}", (string)after["welcome"]!["text"]!);
        var resetPage = await client.Page($"/admin/campaigns/{campaign}/email/reward");
        Assert.Contains("back to the default texts", resetPage);
        Assert.Contains("value=\"You earned a reward: {rewardDescription}\"", resetPage);
    }

    [Fact]
    public async Task Only_a_page_showing_an_html_mail_lets_its_frame_use_inline_styles_and_https_images()
    {
        var campaign = await _admin.CreateCampaign(new { name = "Styled mail", landingUrl = "https://shop.example.com/" });
        var client = await DashboardClient.SignedIn(app);
        static string Policy(HttpResponseMessage response) => string.Join(" ", response.Headers.GetValues("Content-Security-Policy"));

        // Text only: the dashboard's own policy.
        var plain = await client.Http.GetAsync($"/admin/campaigns/{campaign}/email/welcome");
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        Assert.DoesNotContain("unsafe-inline", Policy(plain));

        // A draft with HTML: the mail's inline styles and remote images show in its sandboxed frame; scripts stay off.
        var draft = await client.Submit($"/admin/campaigns/{campaign}/email/welcome", new()
        {
            ["Subject"] = "Hi {firstName}",
            ["Text"] = "Welcome: {shareUrl}",
            ["Html"] = "<p style=\"color:#b00\">Welcome</p><img src=\"https://shop.example.com/logo.png\" alt=\"\">",
        }, $"/admin/campaigns/{campaign}/email/welcome?handler=Preview");
        Assert.Equal(HttpStatusCode.OK, draft.StatusCode);
        var policy = Policy(draft);
        Assert.Contains("style-src 'self' 'unsafe-inline'", policy);
        Assert.Contains("img-src 'self' https: data:", policy);
        Assert.DoesNotContain("script-src", policy);
        Assert.Contains("default-src 'self'", policy);
        Assert.Contains("sandbox=\"\" srcdoc=", await draft.Content.ReadAsStringAsync());

        // Every other dashboard page keeps the strict policy.
        var list = await client.Http.GetAsync($"/admin/campaigns/{campaign}/email");
        Assert.DoesNotContain("unsafe-inline", Policy(list));
    }

    [Fact]
    public async Task Input_the_api_refuses_is_refused_with_the_error_at_its_field_and_nothing_saved()
    {
        var campaign = await _admin.CreateCampaign(new { name = "Refused mail", landingUrl = "https://shop.example.com/" });
        var client = await DashboardClient.SignedIn(app);

        var unknown = await client.Submit($"/admin/campaigns/{campaign}/email/welcome", new()
        {
            ["Subject"] = "Hello {nickname}",
            ["Text"] = "Hi {firstName}",
            ["Html"] = "<p>{unsubscribeUrl}</p>",
        });
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        var html = await unknown.Content.ReadAsStringAsync();
        Assert.Contains("The mail was not saved.", html);
        Assert.Contains("id=\"subject-error\">has the unknown placeholder {nickname}", html);
        Assert.Contains("aria-describedby=\"subject-error\"", html);
        Assert.Contains("value=\"Hello {nickname}\"", html);

        // The magic link must carry the portal link and cannot carry an unsubscribe link: the API's wording, at the field.
        var magic = await client.Submit($"/admin/campaigns/{campaign}/email/magic_link", new()
        {
            ["Subject"] = "Your link\nsecond line",
            ["Text"] = "Here it is: {unsubscribeUrl}",
            ["Html"] = "",
        });
        Assert.Equal(HttpStatusCode.BadRequest, magic.StatusCode);
        var magicHtml = await magic.Content.ReadAsStringAsync();
        Assert.Contains("must be one line.", Between(magicHtml, "id=\"subject-error\">", "</span>"));
        var textError = Between(magicHtml, "id=\"text-error\">", "</span>");
        Assert.Contains("must hold {portalUrl}", textError);
        Assert.Contains("cannot hold {unsubscribeUrl}", textError);

        var tooLong = await client.Submit($"/admin/campaigns/{campaign}/email/reward", new()
        {
            ["Subject"] = new string('s', 201),
            ["Text"] = "ok",
            ["Html"] = "",
        });
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        Assert.Contains("must be at most 200 characters.", await tooLong.Content.ReadAsStringAsync());

        var stored = await app.WithDb(db => db.Campaigns.AsNoTracking().SingleAsync(c => c.Id == campaign));
        Assert.Null(stored.Email);

        // The same rules in the API: one wording for both.
        var api = await _admin.PutAsJsonAsync($"/api/v1/campaigns/{campaign}", new
        {
            name = "Refused mail",
            landingUrl = "https://shop.example.com/",
            email = new { welcome = new { subject = "Hello {nickname}" } },
        });
        var problem = await api.AssertValidationProblem("email.welcome.subject");
        Assert.StartsWith("has the unknown placeholder {nickname}", (string)problem["errors"]!["email.welcome.subject"]![0]!);
    }

    [Fact]
    public async Task Unknown_campaigns_and_kinds_are_not_found_and_forms_need_their_token()
    {
        var campaign = await _admin.CreateCampaign(new { name = "Token mail", landingUrl = "https://shop.example.com/" });
        var client = await DashboardClient.SignedIn(app);

        Assert.Equal(HttpStatusCode.NotFound, (await client.Http.GetAsync("/admin/campaigns/cmp_missing/email")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.Http.GetAsync($"/admin/campaigns/{campaign}/email/postcard")).StatusCode);
        var forged = await client.Http.PostAsync($"/admin/campaigns/{campaign}/email/welcome",
            new FormUrlEncodedContent(new Dictionary<string, string> { ["Subject"] = "Forged {firstName}" }));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Null((await app.WithDb(db => db.Campaigns.AsNoTracking().SingleAsync(c => c.Id == campaign))).Email);
    }

    private Task Sends(string campaign, string participant, string to, string kind, string status, int count,
        Func<int, string?>? subject = null, string? error = null) => app.WithDb(async db =>
        {
            var now = app.Clock.GetUtcNow();
            for (var i = 0; i < count; i++)
            {
                var send = EmailOutbox.New(campaign, participant, kind, to, now);
                send.Status = status;
                send.Subject = subject?.Invoke(i);
                send.Attempts = status == EmailStatus.Skipped ? 0 : 1;
                send.LastError = error;
                send.SentAt = status == EmailStatus.Sent ? now : null;
                db.Add(send);
            }
            return await db.SaveChangesAsync();
        });

    private static List<string> SendIds(string html) =>
        System.Text.RegularExpressions.Regex.Matches(html, "data-send=\"([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();

    private static string? CursorOrNull(string html, string rel)
    {
        var match = System.Text.RegularExpressions.Regex.Match(html, $"rel=\"{rel}\" href=\"[^\"]*(?:before|after)=([^\"&]+)");
        return match.Success ? Uri.UnescapeDataString(WebUtility.HtmlDecode(match.Groups[1].Value)) : null;
    }

    private static string Cursor(string html, string rel) => CursorOrNull(html, rel) ?? throw new Xunit.Sdk.XunitException($"no {rel} link");

    private static int Count(string html, string what) => System.Text.RegularExpressions.Regex.Matches(html, System.Text.RegularExpressions.Regex.Escape(what)).Count;

    private static string Between(string html, string start, string end)
    {
        var from = html.IndexOf(start, StringComparison.Ordinal);
        Assert.True(from >= 0, $"no {start}");
        from += start.Length;
        return html[from..html.IndexOf(end, from, StringComparison.Ordinal)];
    }
}
