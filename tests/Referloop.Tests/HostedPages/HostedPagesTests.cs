using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Referloop.Participants;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.HostedPages;

/// <summary>The join page, the invited page and the portal, as a browser's requests reach them.</summary>
public sealed partial class HostedPagesTests(HostedPagesApp app) : IClassFixture<HostedPagesApp>
{
    private static int _lastAddress;
    private readonly HttpClient _admin = app.CreateAdminClient();

    /// <summary>A visitor from an address of their own (each test stays clear of the others' form limit).</summary>
    private Visitor NewVisitor(string? acceptLanguage = null)
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        client.DefaultRequestHeaders.Add(ClientAddress.Header, $"198.51.100.{Interlocked.Increment(ref _lastAddress)}");
        if (acceptLanguage is not null)
        {
            client.DefaultRequestHeaders.Add("Accept-Language", acceptLanguage);
        }
        return new Visitor(client);
    }

    private async Task<string> Campaign(object? page = null, string? slug = null, string landingUrl = "https://shop.example.com/welcome",
        object[]? rewards = null, int? goalConversions = null) =>
        await _admin.CreateCampaign(new
        {
            name = "Hosted spring",
            landingUrl,
            slug,
            page,
            goalConversions,
            rewards = rewards ?? [],
        });

    [Fact]
    public async Task Joining_on_the_page_creates_the_participant_as_the_api_does_and_opens_the_portal()
    {
        var campaign = await Campaign(new { headline = "Bring a friend", advocateOffer = "$10 per friend", friendOffer = "10% off" }, slug: "bring-a-friend");
        var visitor = NewVisitor();

        var form = await visitor.Page("/join/bring-a-friend");
        Assert.Contains("<h1>Bring a friend</h1>", form);
        Assert.Contains("$10 per friend", form);
        Assert.Contains("<h1>Bring a friend</h1>", await visitor.Page($"/join/{campaign}"));

        var response = await visitor.Submit("/join/bring-a-friend", new() { ["Name"] = "Ann Lee", ["Email"] = " Ann@Example.com ", ["Consent"] = "true" });

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var portal = response.Headers.Location!.OriginalString;
        Assert.Matches("^/p/pt_[A-Za-z0-9_-]{43}$", portal);
        var participant = await app.WithDb(db => db.Participants.AsNoTracking().SingleAsync(p => p.CampaignId == campaign));
        Assert.Equal("ann@example.com", participant.Email);
        Assert.Equal("Ann Lee", participant.Name);
        Assert.True(participant.IsReferrer);
        Assert.NotEqual(portal[3..], participant.PortalTokenHash); // only its hash is kept

        var joined = await app.WithDb(db => db.Outbox.AsNoTracking().Where(m => m.CampaignId == campaign && m.Type == EventTypes.ParticipantJoined).ToListAsync());
        var data = JsonNode.Parse(Assert.Single(joined).Data)!;
        Assert.Equal(participant.Id, (string)data["participant"]!["id"]!);
        Assert.Equal("referrer", (string)data["participant"]!["role"]!);
        Assert.Equal("http://referloop.test/r/" + participant.Code, (string)data["participant"]!["shareUrl"]!);

        var page = await visitor.Page(portal);
        Assert.Contains("Hello Ann!", page);
        Assert.Contains($"value=\"http://referloop.test/r/{participant.Code}\"", page);
    }

    [Fact]
    public async Task The_same_email_again_does_not_open_that_persons_portal()
    {
        var campaign = await Campaign();
        await NewVisitor().Submit($"/join/{campaign}", new() { ["Email"] = "bo@example.com", ["Consent"] = "true" });
        var hash = await app.WithDb(db => db.Participants.Where(p => p.CampaignId == campaign).Select(p => p.PortalTokenHash).SingleAsync());

        var again = await NewVisitor().Submit($"/join/{campaign}", new() { ["Email"] = "bo@example.com", ["Consent"] = "true" });

        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        var html = await again.Content.ReadAsStringAsync();
        Assert.Contains("You have already joined", html);
        Assert.DoesNotContain("/p/pt_", html);
        Assert.Equal(hash, await app.WithDb(db => db.Participants.Where(p => p.CampaignId == campaign).Select(p => p.PortalTokenHash).SingleAsync()));
    }

    [Fact]
    public async Task An_advocates_address_typed_with_another_name_leaves_that_advocate_unchanged()
    {
        // Anyone may post the form with any address: what they type must not rename the advocate (the name is shown
        // to their friends on the invited page, on the leaderboard and in mails and webhooks).
        var campaign = await Campaign();
        var (id, _) = await _admin.Advocate(campaign, "vic@example.com", "Vic Real", "crm-7");
        var before = await app.WithDb(db => db.Participants.AsNoTracking().SingleAsync(p => p.Id == id));

        var again = await NewVisitor().Submit($"/join/{campaign}",
            new() { ["Name"] = "https://evil.example/claim X", ["Email"] = " VIC@example.com ", ["Consent"] = "true" });

        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        var html = await again.Content.ReadAsStringAsync();
        Assert.DoesNotContain("/p/pt_", html);
        Assert.DoesNotContain("Vic", html);
        var after = await app.WithDb(db => db.Participants.AsNoTracking().SingleAsync(p => p.Id == id));
        Assert.Equal(("Vic Real", "crm-7", before.UpdatedAt, before.PortalTokenHash), (after.Name, after.CustomValue, after.UpdatedAt, after.PortalTokenHash));
        Assert.Single(await app.WithDb(db => db.Outbox.AsNoTracking().Where(m => m.CampaignId == campaign && m.Type == EventTypes.ParticipantJoined).ToListAsync()));
    }

    [Fact]
    public async Task An_invited_friend_who_joins_on_the_page_becomes_an_advocate_and_keeps_their_name()
    {
        var campaign = await Campaign();
        var (_, code) = await _admin.Advocate(campaign, "hal@example.com", "Hal Moss");
        await _admin.Track(campaign, "signup", "finn@example.net", code, name: "Finn Friend");
        await _admin.Track(campaign, "signup", "nina@example.net", code);

        var finnJoins = await NewVisitor().Submit($"/join/{campaign}", new() { ["Name"] = "Someone Else", ["Email"] = "finn@example.net", ["Consent"] = "true" });
        var ninaJoins = await NewVisitor().Submit($"/join/{campaign}", new() { ["Name"] = "Nina Page", ["Email"] = "nina@example.net", ["Consent"] = "true" });

        // Whoever typed the address does not get that person's portal; the friend is an advocate now.
        foreach (var response in new[] { finnJoins, ninaJoins })
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.DoesNotContain("/p/pt_", await response.Content.ReadAsStringAsync());
        }
        var finn = await app.WithDb(db => db.Participants.AsNoTracking().SingleAsync(p => p.CampaignId == campaign && p.Email == "finn@example.net"));
        Assert.Equal("Finn Friend", finn.Name);
        Assert.True(finn.IsReferrer && finn.IsInvited);
        // A friend without a name takes the one typed.
        var nina = await app.WithDb(db => db.Participants.AsNoTracking().SingleAsync(p => p.CampaignId == campaign && p.Email == "nina@example.net"));
        Assert.Equal("Nina Page", nina.Name);
        Assert.True(nina.IsReferrer);
        var joined = await app.WithDb(db => db.Outbox.AsNoTracking()
            .Where(m => m.CampaignId == campaign && m.Type == EventTypes.ParticipantJoined && m.Data.Contains("finn@example.net")).ToListAsync());
        var asReferrer = Assert.Single(joined.Select(m => JsonNode.Parse(m.Data)!["participant"]!), p => (string)p["role"]! == "referrer");
        Assert.Equal("Finn Friend", (string)asReferrer["name"]!);
    }

    [Fact]
    public async Task Bad_input_is_shown_at_its_field_and_nothing_is_created()
    {
        var campaign = await Campaign();
        var response = await NewVisitor().Submit($"/join/{campaign}", new() { ["Name"] = new string('x', 201), ["Email"] = "not-an-email" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("id=\"email-error\"", html);
        Assert.Contains("Enter an e-mail address such as ann@example.com.", html);
        Assert.Contains("The name can have at most 200 characters.", html);
        Assert.Contains("Tick the box to agree to the terms.", html);
        Assert.Contains("aria-invalid=\"true\"", html);
        Assert.False(await app.WithDb(db => db.Participants.AnyAsync(p => p.CampaignId == campaign)));
    }

    [Fact]
    public async Task A_filled_honeypot_is_refused_without_creating_anyone()
    {
        var campaign = await Campaign();
        var response = await NewVisitor().Submit($"/join/{campaign}",
            new() { ["Email"] = "bot@example.com", ["Consent"] = "true", ["website"] = "https://spam.example" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("could not be processed", await response.Content.ReadAsStringAsync());
        Assert.False(await app.WithDb(db => db.Participants.AnyAsync(p => p.CampaignId == campaign)));
    }

    [Fact]
    public async Task One_address_posting_many_joins_is_refused_after_the_limit()
    {
        var campaign = await Campaign();
        var visitor = NewVisitor();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < HostedPagesApp.FormsPerMinute + 3; i++)
        {
            var response = await visitor.Submit($"/join/{campaign}", new() { ["Email"] = $"flood{i}@example.com", ["Consent"] = "true" });
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.True(response.Headers.RetryAfter is not null, "a refused post says when to retry");
                Assert.Contains("Too many attempts", await response.Content.ReadAsStringAsync());
            }
        }

        Assert.Equal(Enumerable.Repeat(HttpStatusCode.Redirect, HostedPagesApp.FormsPerMinute), statuses.Take(HostedPagesApp.FormsPerMinute));
        Assert.All(statuses.Skip(HostedPagesApp.FormsPerMinute), s => Assert.Equal(HttpStatusCode.TooManyRequests, s));
        Assert.Equal(HostedPagesApp.FormsPerMinute, await app.WithDb(db => db.Participants.CountAsync(p => p.CampaignId == campaign)));
    }

    [Fact]
    public async Task Script_in_a_name_is_shown_as_text()
    {
        var campaign = await Campaign(new { leaderboard = true });
        var response = await NewVisitor().Submit($"/join/{campaign}",
            new() { ["Name"] = "<script>alert(1)</script> Lee", ["Email"] = "x@example.com", ["Consent"] = "true" });
        var portal = await NewVisitor().Page(response.Headers.Location!.OriginalString);

        Assert.DoesNotContain("<script>alert(1)</script>", portal);
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", portal);
    }

    [Fact]
    public async Task The_pages_speak_the_campaigns_language_or_the_browsers()
    {
        var any = await Campaign();
        var german = await Campaign(new { language = "de" });

        Assert.Contains("<html lang=\"de\">", await NewVisitor("de-DE,de;q=0.9,en;q=0.8").Page($"/join/{any}"));
        Assert.Contains("Meinen Empfehlungslink holen", await NewVisitor("fr-FR, de;q=0.5").Page($"/join/{any}"));
        Assert.Contains("Get my share link", await NewVisitor("fr-FR").Page($"/join/{any}"));
        Assert.Contains("Meinen Empfehlungslink holen", await NewVisitor("en-GB").Page($"/join/{german}"));
    }

    [Fact]
    public async Task Unknown_campaigns_codes_and_tokens_answer_a_not_found_page()
    {
        foreach (var path in new[] { "/join/no-such-campaign", "/r/NOSUCHCODE/join", "/p/pt_unknown-token-0000000000000000000000000000000", "/p/x" })
        {
            var response = await NewVisitor().Http.GetAsync(path);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Contains("Page not found", await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task Share_links_redirect_as_before_unless_the_campaign_shows_the_invited_page()
    {
        var redirecting = await Campaign();
        var advocate = await _admin.PostOk($"/api/v1/campaigns/{redirecting}/participants", new { email = "cy@example.com" });

        var response = await NewVisitor().Http.GetAsync($"/r/{advocate["code"]}");

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.StartsWith("https://shop.example.com/welcome?ref=", response.Headers.Location!.OriginalString);
        // The invited page of a redirecting campaign is the link itself.
        var page = await NewVisitor().Http.GetAsync($"/r/{advocate["code"]}/join");
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.Equal($"/r/{advocate["code"]}", page.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task A_friend_signs_up_on_the_invited_page_is_referred_and_lands_with_the_click()
    {
        var campaign = await Campaign(new { shareLink = "page", friendOffer = "A welcome gift with your first order" }, rewards:
        [
            new { recipient = "friend", trigger = "invited", kind = "standard", incentive = new { type = "other", description = "Welcome gift" } },
        ]);
        var advocate = await _admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "dee@example.com", name = "Dee Moss" });
        var code = (string)advocate["code"]!;
        var friend = NewVisitor();

        var follow = await friend.Http.GetAsync($"/r/{code}");
        Assert.Equal(HttpStatusCode.Found, follow.StatusCode);
        var invited = follow.Headers.Location!.OriginalString;
        Assert.StartsWith($"/r/{code}/join?rl_click=clk_", invited);
        var clickId = QueryHelpers.ParseQuery(new Uri("http://x" + invited).Query)["rl_click"].ToString();

        var html = await friend.Page(invited);
        Assert.Contains("Dee invited you", html);
        Assert.DoesNotContain("dee@example.com", html);
        Assert.Contains("A welcome gift with your first order", html);
        Assert.Contains("form-action 'self' https://shop.example.com", string.Join(" ", friend.LastResponse!.Headers.GetValues("Content-Security-Policy")));

        var submitted = await friend.Submit(invited, new() { ["Name"] = "Eve Stone", ["Email"] = "eve@example.net", ["rl_click"] = clickId });

        Assert.Equal(HttpStatusCode.Redirect, submitted.StatusCode);
        Assert.Equal($"https://shop.example.com/welcome?ref={code}&rl_click={clickId}", submitted.Headers.Location!.OriginalString);
        var eve = await app.WithDb(db => db.Participants.AsNoTracking().SingleAsync(p => p.CampaignId == campaign && p.Email == "eve@example.net"));
        Assert.True(eve.IsInvited);
        Assert.Equal((string)advocate["id"]!, eve.ReferredById);
        var referral = await app.WithDb(db => db.Referrals.AsNoTracking().SingleAsync(r => r.FriendId == eve.Id));
        Assert.Equal(clickId, referral.ClickId);
        var reward = await app.WithDb(db => db.Rewards.AsNoTracking().SingleAsync(r => r.ParticipantId == eve.Id));
        Assert.Equal("issued", reward.Status);

        var joined = await app.WithDb(db => db.Outbox.AsNoTracking()
            .Where(m => m.CampaignId == campaign && m.Type == EventTypes.ParticipantJoined).OrderBy(m => m.CreatedAt).ThenBy(m => m.Id).ToListAsync());
        var friendJoined = JsonNode.Parse(joined.Single(m => m.Data.Contains("eve@example.net")).Data)!;
        Assert.Equal("invited", (string)friendJoined["participant"]!["role"]!);
        Assert.Equal("Eve Stone", (string)friendJoined["participant"]!["name"]!);
        Assert.Equal("dee@example.com", (string)friendJoined["referredBy"]!["email"]!);
    }

    [Fact]
    public async Task The_invited_page_refuses_a_honeypot_and_shows_field_errors()
    {
        var campaign = await Campaign(new { shareLink = "page" });
        var advocate = await _admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "fay@example.com" });
        var path = $"/r/{advocate["code"]}/join";

        var bot = await NewVisitor().Submit(path, new() { ["Email"] = "bot@example.net", ["website"] = "x" });
        var bad = await NewVisitor().Submit(path, new() { ["Email"] = "nope" });

        Assert.Equal(HttpStatusCode.BadRequest, bot.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("A friend invited you", await bad.Content.ReadAsStringAsync());
        Assert.Contains("Enter an e-mail address", await bad.Content.ReadAsStringAsync());
        Assert.Equal(1, await app.WithDb(db => db.Participants.CountAsync(p => p.CampaignId == campaign)));
    }

    [Fact]
    public async Task The_portal_shows_first_names_statuses_rewards_with_coupons_progress_and_the_leaderboard()
    {
        var campaign = await Campaign(new { leaderboard = true }, goalConversions: 3, rewards:
        [
            new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = new { type = "discount_coupon", pool = "thanks" } },
            new { recipient = "advocate", trigger = "converted", kind = "milestone",
                  tiers = new object[] { new { referrals = 2, incentive = new { type = "other", description = "Tote bag" } } } },
        ]);
        await _admin.PostOk($"/api/v1/campaigns/{campaign}/coupon-pools/thanks/coupons", new { codes = new[] { "THANKS-001" } }, HttpStatusCode.OK);
        var visitor = NewVisitor();
        var portal = (await visitor.Submit($"/join/{campaign}", new() { ["Name"] = "Gil Hart", ["Email"] = "gil@example.com", ["Consent"] = "true" }))
            .Headers.Location!.OriginalString;
        var code = await app.WithDb(db => db.Participants.Where(p => p.Email == "gil@example.com").Select(p => p.Code).SingleAsync());
        await _admin.PostOk("/api/v1/events", new
        {
            campaignId = campaign,
            type = "purchase",
            email = "hal@example.net",
            name = "Hal Burton",
            referralCode = code,
            orderId = "ORD-1",
            purchaseValue = 50,
            currency = "USD",
        }, HttpStatusCode.Accepted);

        var html = await visitor.Page(portal);

        Assert.Contains("<td>Hal</td>", html);
        Assert.DoesNotContain("Burton", html);
        Assert.DoesNotContain("hal@example.net", html);
        Assert.Contains("Approved", html);
        Assert.Contains("<code>THANKS-001</code>", html);
        Assert.Contains("1 of 2 towards your next reward: Tote bag", html);
        Assert.Contains("1 of 3 successful referrals towards the goal", html);
        Assert.Contains("Top advocates", html);
        Assert.Contains("Gil H.", html);
        foreach (var share in new[] { "mailto:?subject=", "sms:?&amp;body=", "https://wa.me/?text=", "https://x.com/intent/post?text=",
                     "https://www.facebook.com/sharer/sharer.php?u=", "https://www.linkedin.com/sharing/share-offsite/?url=" })
        {
            Assert.Contains(share, html);
        }
    }

    [Fact]
    public async Task The_leaderboard_is_off_by_default()
    {
        var campaign = await Campaign();
        var portal = (await NewVisitor().Submit($"/join/{campaign}", new() { ["Email"] = "ida@example.com", ["Consent"] = "true" })).Headers.Location!;
        Assert.DoesNotContain("Top advocates", await NewVisitor().Page(portal.OriginalString));
    }

    [Fact]
    public async Task A_portal_link_is_revoked_and_issued_anew_by_the_api()
    {
        var campaign = await Campaign();
        var portal = (await NewVisitor().Submit($"/join/{campaign}", new() { ["Email"] = "jo@example.com", ["Consent"] = "true" })).Headers.Location!.OriginalString;
        var id = await app.WithDb(db => db.Participants.Where(p => p.Email == "jo@example.com").Select(p => p.Id).SingleAsync());

        var issued = await _admin.PostOk($"/api/v1/campaigns/{campaign}/participants/{id}/portal-link", new { }, HttpStatusCode.OK);
        var fresh = new Uri((string)issued["portalUrl"]!).AbsolutePath;
        Assert.Equal(HttpStatusCode.NotFound, (await NewVisitor().Http.GetAsync(portal)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await NewVisitor().Http.GetAsync(fresh)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await NewVisitor().Http.GetAsync(fresh + "/qr.svg")).StatusCode);

        (await _admin.DeleteAsync($"/api/v1/campaigns/{campaign}/participants/{id}/portal-link")).EnsureStatus(HttpStatusCode.NoContent);
        Assert.Equal(HttpStatusCode.NotFound, (await NewVisitor().Http.GetAsync(fresh)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await NewVisitor().Http.GetAsync(fresh + "/qr.svg")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound,
            (await _admin.DeleteAsync($"/api/v1/campaigns/{campaign}/participants/par_none/portal-link")).StatusCode);
    }

    [Fact]
    public async Task The_pages_carry_their_content_security_policy_and_the_brand_colour_comes_from_a_stylesheet()
    {
        var campaign = await Campaign(new { brandColor = "#FFD500" });
        var visitor = NewVisitor();
        var html = await visitor.Page($"/join/{campaign}");

        var policy = string.Join(" ", visitor.LastResponse!.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'self'", policy);
        Assert.Contains("form-action 'self'", policy);
        Assert.DoesNotContain("unsafe-inline", policy);
        Assert.DoesNotContain("style=", html);
        Assert.DoesNotContain("<script>", html);
        var theme = ThemeLink().Match(html).Groups[1].Value;
        var css = await visitor.Http.GetStringAsync(WebUtility.HtmlDecode(theme));
        Assert.Contains("--brand: #ffd500", css);
        Assert.Contains("--brand-ink: #000000", css); // yellow reads with black text
        Assert.Contains("--brand-link: #1d2433", css); // and is too light for links on white
    }

    [GeneratedRegex("<link rel=\"stylesheet\" href=\"(/hosted/theme/[^\"]+)\"")]
    private static partial Regex ThemeLink();
}

/// <summary>A browser-like client of the hosted pages: keeps cookies, reads each form's antiforgery token.</summary>
public sealed partial class Visitor(HttpClient http)
{
    public HttpClient Http => http;

    public HttpResponseMessage? LastResponse { get; private set; }

    public async Task<string> Page(string url)
    {
        LastResponse = await http.GetAsync(url);
        var html = await LastResponse.Content.ReadAsStringAsync();
        Assert.True(LastResponse.StatusCode == HttpStatusCode.OK, $"GET {url} answered {(int)LastResponse.StatusCode}");
        return html;
    }

    public async Task<HttpResponseMessage> Submit(string pageUrl, Dictionary<string, string> fields)
    {
        var html = await Page(pageUrl);
        var token = TokenPattern().Match(html);
        Assert.True(token.Success, $"no antiforgery token on {pageUrl}");
        fields["__RequestVerificationToken"] = WebUtility.HtmlDecode(token.Groups[1].Value);
        return await http.PostAsync(pageUrl, new FormUrlEncodedContent(fields));
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex TokenPattern();
}
