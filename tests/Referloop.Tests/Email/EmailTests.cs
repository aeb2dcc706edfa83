using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using MimeKit;
using Referloop.Email;
using Referloop.Tests.HostedPages;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Email;

/// <summary>E-mail notifications as they arrive at a real SMTP receiver on loopback.</summary>
public sealed partial class EmailTests(EmailApp app) : IClassFixture<EmailApp>
{
    private static int _lastAddress;
    private readonly HttpClient _admin = app.CreateAdminClient();

    private Visitor NewVisitor()
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        client.DefaultRequestHeaders.Add(ClientAddress.Header, $"198.51.100.{Interlocked.Increment(ref _lastAddress)}");
        return new Visitor(client);
    }

    private static string Text(MimeMessage mail) => (mail.TextBody ?? "").ReplaceLineEndings("\n");

    private static string PortalPath(MimeMessage mail) => PortalLink().Match(Text(mail)) is { Success: true } m
        ? m.Groups[1].Value
        : throw new Xunit.Sdk.XunitException($"no portal link in:\n{Text(mail)}");

    private static string UnsubscribePath(MimeMessage mail) => UnsubscribeLink().Match(Text(mail)) is { Success: true } m
        ? m.Groups[1].Value
        : throw new Xunit.Sdk.XunitException($"no unsubscribe link in:\n{Text(mail)}");

    private Task<List<EmailSend>> Sends(string campaign) =>
        app.WithDb(db => db.Set<EmailSend>().AsNoTracking().Where(s => s.CampaignId == campaign).OrderBy(s => s.CreatedAt).ThenBy(s => s.Id).ToListAsync());

    /// <summary>The sends of the campaign once none is pending any more (a mail arrives just before its record is written).</summary>
    private async Task<List<EmailSend>> Settled(string campaign)
    {
        await Eventually(async () => (await Sends(campaign)).All(s => s.Status != EmailStatus.Pending), "every send recorded");
        return await Sends(campaign);
    }

    [Fact]
    public async Task A_new_advocate_is_welcomed_with_a_portal_link_that_opens_their_portal()
    {
        var (campaign, _) = await _admin.Campaign([], new { name = "Spring friends" });
        var (advocateId, code) = await _admin.Advocate(campaign, "welcome@example.com", "Ann Lee");

        var mail = await app.Inbox.WaitFor("welcome@example.com");

        Assert.Equal("Welcome to Spring friends, Ann", mail.Subject);
        Assert.Equal("referrals@shop.example.com", mail.From.Mailboxes.Single().Address);
        Assert.Equal("Shop referrals", mail.From.Mailboxes.Single().Name);
        var text = Text(mail);
        Assert.StartsWith("Hi Ann,\n", text);
        Assert.Contains($"http://referloop.test/r/{code}", text);
        var portal = await app.CreateAnonymousClient().GetAsync(PortalPath(mail));
        Assert.Equal(HttpStatusCode.OK, portal.StatusCode);
        Assert.Contains($"http://referloop.test/r/{code}", await portal.Content.ReadAsStringAsync());
        // A notification: it says how to stop them, in the text and for the mail client.
        var unsubscribe = UnsubscribePath(mail);
        Assert.Equal($"<http://referloop.test{unsubscribe}>", mail.Headers["List-Unsubscribe"]);
        Assert.Equal("List-Unsubscribe=One-Click", mail.Headers["List-Unsubscribe-Post"]);

        var send = Assert.Single(await Settled(campaign));
        Assert.Equal((advocateId, EmailKind.Welcome, EmailStatus.Sent, "welcome@example.com", 1), (send.ParticipantId, send.Kind, send.Status, send.To, send.Attempts));
        Assert.Equal("Welcome to Spring friends, Ann", send.Subject);
        Assert.Equal(app.Clock.GetUtcNow(), send.SentAt);
        Assert.Null(send.LastError);
    }

    [Fact]
    public async Task Joining_on_the_hosted_page_welcomes_without_closing_the_portal_the_page_opened()
    {
        var (campaign, _) = await _admin.Campaign([], new { name = "Page friends", slug = "page-friends" });
        var visitor = NewVisitor();
        var joined = await visitor.Submit("/join/page-friends", new() { ["Name"] = "Pia", ["Email"] = "pia@example.com", ["Consent"] = "true" });
        var pagePortal = joined.Headers.Location!.OriginalString;

        var mail = await app.Inbox.WaitFor("pia@example.com");

        Assert.NotEqual(pagePortal, PortalPath(mail));
        Assert.Equal(HttpStatusCode.OK, (await app.CreateAnonymousClient().GetAsync(pagePortal)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.CreateAnonymousClient().GetAsync(PortalPath(mail))).StatusCode);
        Assert.Contains("/join/page-friends/portal-link", await visitor.Page("/join/page-friends"));
        Assert.Single(await Sends(campaign));
    }

    [Fact]
    public async Task Joining_again_with_an_advocates_address_mails_them_their_portal_link_and_renames_no_one()
    {
        // The join page answers an address that has already joined as the magic link page does, and the link goes
        // to the address: whoever typed it gets neither the portal nor a say over the advocate's name.
        var (campaign, _) = await _admin.Campaign([], new { name = "Again friends", slug = "again-friends" });
        await NewVisitor().Submit("/join/again-friends", new() { ["Name"] = "Ola Berg", ["Email"] = "ola@example.com", ["Consent"] = "true" });
        var welcome = await app.Inbox.WaitFor("ola@example.com");

        var again = await NewVisitor().Submit("/join/again-friends",
            new() { ["Name"] = "https://evil.example/claim X", ["Email"] = "ola@example.com", ["Consent"] = "true" });

        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        var answer = await again.Content.ReadAsStringAsync();
        Assert.Contains("If this address belongs to a member of the programme", answer);
        Assert.DoesNotContain("/p/pt_", answer);
        var magic = (await app.Inbox.WaitFor("ola@example.com", 2)).Single(m => m.Subject != welcome.Subject);
        Assert.Equal("Your link to the Again friends portal", magic.Subject);
        Assert.Equal(HttpStatusCode.OK, (await app.CreateAnonymousClient().GetAsync(PortalPath(magic))).StatusCode);
        Assert.Equal("Ola Berg", await app.WithDb(db => db.Participants.Where(p => p.CampaignId == campaign).Select(p => p.Name).SingleAsync()));

        // The magic link's own limit holds here too: one per address per interval.
        var third = await NewVisitor().Submit("/join/again-friends", new() { ["Email"] = "ola@example.com", ["Consent"] = "true" });
        Assert.Equal(HttpStatusCode.OK, third.StatusCode);
        Assert.Equal([EmailKind.Welcome, EmailKind.MagicLink], (await Settled(campaign)).Select(s => s.Kind));
    }

    [Fact]
    public async Task Rewards_and_milestones_are_mailed_to_their_recipients_with_coupon_codes()
    {
        var (campaign, _) = await _admin.Campaign(
        [
            new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) },
            new { recipient = "advocate", trigger = "converted", kind = "milestone",
                  tiers = new[] { new { referrals = 1, incentive = Other("Free T-shirt") } } },
            new { recipient = "friend", trigger = "invited", kind = "standard",
                  incentive = new { type = "discount_coupon", pool = "welcome10" } },
        ], new { name = "Reward friends" });
        await _admin.PostOk($"/api/v1/campaigns/{campaign}/coupon-pools/welcome10/coupons", new { codes = new[] { "WELCOME-7Q2" } }, HttpStatusCode.OK);
        var (_, code) = await _admin.Advocate(campaign, "rewarded@example.com", "Rita Stone");
        await app.Inbox.WaitFor("rewarded@example.com");

        await _admin.Track(campaign, "signup", "friend@example.net", code, name: "Finn Friend");
        await _admin.Track(campaign, "purchase", "friend@example.net", code, orderId: "R-1", purchaseValue: 40);

        var friendMail = await app.Inbox.WaitFor("friend@example.net");
        Assert.Equal("You earned a reward: Coupon", friendMail.Subject);
        Assert.Contains("Your coupon code: WELCOME-7Q2", Text(friendMail));
        // The friend shares no link: the line of the share link is left out, not left empty.
        Assert.DoesNotContain("/r/", Text(friendMail));
        Assert.NotNull(friendMail.Headers["List-Unsubscribe"]);

        var advocateMails = await app.Inbox.WaitFor("rewarded@example.com", 3);
        var reward = Assert.Single(advocateMails, m => m.Subject == "You earned a reward: $10.00");
        Assert.Contains("you earned a reward in Reward friends: $10.00.", Text(reward));
        Assert.DoesNotContain("coupon code", Text(reward));
        Assert.Contains($"http://referloop.test/r/{code}", Text(reward));
        var milestone = Assert.Single(advocateMails, m => m.Subject == "You reached a milestone in Reward friends");
        Assert.Contains("you reached milestone 1 in Reward friends. Your reward: Free T-shirt.", Text(milestone));

        var sends = await Settled(campaign);
        Assert.Equal(["milestone", "reward", "reward", "welcome"], sends.Select(s => s.Kind).Order());
        Assert.All(sends, s => Assert.Equal(EmailStatus.Sent, s.Status));
        Assert.All(sends.Where(s => s.Kind != EmailKind.Welcome), s => Assert.NotNull(s.RewardId));

        var listed = (await _admin.GetOk($"/api/v1/email-sends?campaignId={campaign}&kind=reward"))["data"]!.AsArray();
        Assert.Equal(["friend@example.net", "rewarded@example.com"], listed.Select(s => (string)s!["to"]!).Order());
        Assert.All(listed, s => Assert.Equal(("sent", 1), ((string)s!["status"]!, (int)s["attempts"]!)));
        await (await _admin.GetAsync("/api/v1/email-sends?status=lost")).AssertValidationProblem("status");
    }

    [Fact]
    public async Task A_german_campaign_mails_amounts_and_milestones_the_german_way()
    {
        var (campaign, _) = await _admin.Campaign(
        [
            new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(1250.5m, "EUR") },
            new { recipient = "advocate", trigger = "converted", kind = "milestone",
                  tiers = new[] { new { referrals = 1, incentive = Rebate(7.25m, "USD") } } },
        ], new { name = "Freunde werben", page = new { language = "de" } });
        var (_, code) = await _admin.Advocate(campaign, "gerda@example.com", "Gerda Lang");
        await app.Inbox.WaitFor("gerda@example.com");

        await _admin.Track(campaign, "purchase", "fritz@example.net", code, orderId: "DE-1", purchaseValue: 40);

        var mails = await app.Inbox.WaitFor("gerda@example.com", 3);
        var reward = Assert.Single(mails, m => m.Subject == "Du hast eine Prämie erhalten: 1.250,50 €");
        Assert.Contains("1.250,50 €", Text(reward));
        var milestone = Assert.Single(mails, m => m.Subject == "Meilenstein erreicht bei Freunde werben");
        Assert.Contains("7,25 $", Text(milestone));
    }

    [Fact]
    public async Task Erasing_a_participant_keeps_the_record_of_their_mails_without_the_address()
    {
        var (campaign, _) = await _admin.Campaign([], new { name = "Forgetful" });
        var (advocateId, _) = await _admin.Advocate(campaign, "forget@example.com", "Fay");
        await app.Inbox.WaitFor("forget@example.com");
        await Settled(campaign);

        (await _admin.DeleteAsync($"/api/v1/campaigns/{campaign}/participants/{advocateId}")).EnsureSuccessStatusCode();

        var send = Assert.Single((await _admin.GetOk($"/api/v1/email-sends?participantId={advocateId}"))["data"]!.AsArray());
        Assert.Equal(("[erased]", "sent", null), ((string)send!["to"]!, (string)send["status"]!, (string?)send["subject"]));
    }

    [Fact]
    public async Task An_unsubscribed_advocate_gets_no_notification_but_still_the_magic_link_they_ask_for()
    {
        var (campaign, _) = await _admin.Campaign(
            [new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(5) }],
            new { name = "Quiet friends", slug = "quiet-friends" });
        var (advocateId, code) = await _admin.Advocate(campaign, "quiet@example.com", "Quinn");
        var welcome = await app.Inbox.WaitFor("quiet@example.com");
        var unsubscribe = UnsubscribePath(welcome);

        var visitor = NewVisitor();
        var confirm = await visitor.Page(unsubscribe);
        Assert.Contains("Stop the e-mails about your referrals and rewards in Quiet friends?", confirm);
        Assert.Null(await app.WithDb(db => db.Participants.Where(p => p.Id == advocateId).Select(p => p.EmailOptedOutAt).SingleAsync()));
        // The one-click POST of a mail client (RFC 8058) carries no form token.
        var oneClick = await app.CreateAnonymousClient().PostAsync(unsubscribe,
            new FormUrlEncodedContent(new Dictionary<string, string> { ["List-Unsubscribe"] = "One-Click" }));
        Assert.Equal(HttpStatusCode.OK, oneClick.StatusCode);
        Assert.Contains("You are unsubscribed", await oneClick.Content.ReadAsStringAsync());
        Assert.Equal(app.Clock.GetUtcNow(), await app.WithDb(db => db.Participants.Where(p => p.Id == advocateId).Select(p => p.EmailOptedOutAt).SingleAsync()));

        await _admin.Track(campaign, "purchase", "buyer@example.net", code, orderId: "Q-1", purchaseValue: 40);
        await Eventually(async () => await app.WithDb(db => db.Outbox.AnyAsync(m => m.CampaignId == campaign && m.Type == "reward.issued" && m.DispatchedAt != null)),
            "the reward.issued message dispatched");

        var ask = await NewVisitor().Submit("/join/quiet-friends/portal-link", new() { ["Email"] = " Quiet@Example.com " });
        Assert.Equal(HttpStatusCode.OK, ask.StatusCode);
        var answer = await ask.Content.ReadAsStringAsync();
        Assert.Contains("If this address belongs to a member of the programme", answer);
        var magic = (await app.Inbox.WaitFor("quiet@example.com", 2)).Single(m => m.Subject != welcome.Subject);
        Assert.Equal("Your link to the Quiet friends portal", magic.Subject);
        Assert.Null(magic.Headers["List-Unsubscribe"]);
        Assert.DoesNotContain("/unsubscribe/", Text(magic));
        Assert.Equal(HttpStatusCode.OK, (await app.CreateAnonymousClient().GetAsync(PortalPath(magic))).StatusCode);

        // Nothing but the welcome before and the magic link after: the reward was not mailed.
        Assert.Equal(2, app.Inbox.To("quiet@example.com").Count);
        Assert.Equal([EmailKind.Welcome, EmailKind.MagicLink], (await Settled(campaign)).Select(s => s.Kind));
    }

    [Fact]
    public async Task The_magic_link_form_answers_the_same_for_an_unknown_address_and_sends_nothing()
    {
        var (campaign, _) = await _admin.Campaign([], new { name = "Secret friends", slug = "secret-friends" });

        var ask = await NewVisitor().Submit("/join/secret-friends/portal-link", new() { ["Email"] = "nobody@example.com" });

        Assert.Equal(HttpStatusCode.OK, ask.StatusCode);
        Assert.Contains("If this address belongs to a member of the programme", await ask.Content.ReadAsStringAsync());
        Assert.Empty(await Sends(campaign));
        var invalid = await NewVisitor().Submit("/join/secret-friends/portal-link", new() { ["Email"] = "not-an-address" });
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        var bot = await NewVisitor().Submit("/join/secret-friends/portal-link", new() { ["Email"] = "x@example.com", ["website"] = "http://spam" });
        Assert.Equal(HttpStatusCode.BadRequest, bot.StatusCode);
    }

    [Fact]
    public async Task A_campaign_template_replaces_the_default_and_its_html_gets_encoded_values()
    {
        var (campaign, _) = await _admin.Campaign([], new
        {
            name = "Templated <friends>",
            email = new
            {
                welcome = new
                {
                    subject = "{firstName}, your link for {campaignName}",
                    text = "Share {shareUrl}\nPortal: {portalUrl}\nStop: {unsubscribeUrl}",
                    html = "<html><body><p>Hello {name}</p><a href=\"{portalUrl}\">portal</a></body></html>",
                },
            },
        });
        var stored = await _admin.GetOk($"/api/v1/campaigns/{campaign}");
        Assert.Equal("{firstName}, your link for {campaignName}", (string?)stored["email"]!["welcome"]!["subject"]);

        var (_, code) = await _admin.Advocate(campaign, "templated@example.com", "Tom <b>Bold</b>");
        var mail = await app.Inbox.WaitFor("templated@example.com");

        Assert.Equal("Tom, your link for Templated <friends>", mail.Subject);
        var text = Text(mail);
        Assert.StartsWith($"Share http://referloop.test/r/{code}\nPortal: http://referloop.test/p/pt_", text);
        // The template placed the unsubscribe link itself: no second one is appended.
        Assert.Single(UnsubscribeLink().Matches(text));
        Assert.Contains("<p>Hello Tom &lt;b&gt;Bold&lt;/b&gt;</p>", mail.HtmlBody);
        Assert.Contains("href=\"http://referloop.test/unsubscribe/", mail.HtmlBody);
    }

    [Fact]
    public async Task Templates_with_unknown_placeholders_or_without_the_portal_link_are_refused_naming_the_field()
    {
        var response = await _admin.PostAsJsonAsync("/api/v1/campaigns", new
        {
            name = "Bad templates",
            landingUrl = "https://shop.example.com/",
            email = new
            {
                welcome = new { subject = "Hi {firstname}\nthere" },
                magicLink = new { text = "No link here, {unsubscribeUrl}" },
            },
        });

        var problem = await response.AssertValidationProblem("email.welcome.subject", "email.magicLink.text");
        var errors = problem["errors"]!;
        Assert.Contains(errors["email.welcome.subject"]!.AsArray(), e => ((string)e!).Contains("unknown placeholder {firstname}"));
        Assert.Contains(errors["email.welcome.subject"]!.AsArray(), e => (string)e! == "must be one line.");
        Assert.Contains(errors["email.magicLink.text"]!.AsArray(), e => ((string)e!).Contains("must hold {portalUrl}"));
        Assert.Contains(errors["email.magicLink.text"]!.AsArray(), e => ((string)e!).Contains("cannot hold {unsubscribeUrl}"));
    }

    [Fact]
    public async Task A_friend_who_joins_gets_no_welcome_and_an_unknown_unsubscribe_token_is_not_found()
    {
        var (campaign, _) = await _admin.Campaign([], new { name = "Friendly" });
        var (_, code) = await _admin.Advocate(campaign, "host@example.com", "Hal");
        await app.Inbox.WaitFor("host@example.com");

        await _admin.Track(campaign, "signup", "guest@example.net", code, name: "Gus");
        await Eventually(async () => await app.WithDb(db => db.Outbox.CountAsync(m => m.CampaignId == campaign && m.DispatchedAt == null)) == 0,
            "every message dispatched");

        Assert.Empty(app.Inbox.To("guest@example.net"));
        Assert.Equal([EmailKind.Welcome], (await Sends(campaign)).Select(s => s.Kind));
        Assert.Equal(HttpStatusCode.NotFound, (await app.CreateAnonymousClient().GetAsync("/unsubscribe/CfDJ8not-a-real-token-at-all")).StatusCode);
    }

    [GeneratedRegex(@"http://referloop\.test(/p/pt_[A-Za-z0-9_-]+)")]
    private static partial Regex PortalLink();

    [GeneratedRegex(@"http://referloop\.test(/unsubscribe/[A-Za-z0-9_-]+)")]
    private static partial Regex UnsubscribeLink();
}
