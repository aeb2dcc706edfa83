using System.Net;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Campaigns;
using Referloop.Referrals;
using Referloop.Storage;
using Referloop.Tracking;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;

namespace Referloop.Tests.Tracking;

public class AttributionTests(EngineApp app) : IClassFixture<EngineApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private async Task<(string Campaign, string AdvocateId, string Code)> Campaign(int windowDays = 7)
    {
        var (campaign, _) = await _admin.Campaign([], new { attributionWindowDays = windowDays });
        var (advocateId, code) = await _admin.Advocate(campaign);
        return (campaign, advocateId, code);
    }

    private async Task<string> Click(string code, string ip = "198.51.100.7")
    {
        var visitor = app.CreateAnonymousClient();
        visitor.DefaultRequestHeaders.Add("X-Test-Ip", ip);
        var response = await visitor.GetAsync($"/r/{code}");
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        return QueryHelpers.ParseQuery(response.Headers.Location!.Query)["rl_click"].ToString();
    }

    [Fact]
    public async Task A_click_id_attributes_up_to_the_last_moment_of_the_window()
    {
        var (campaign, advocateId, code) = await Campaign(windowDays: 7);
        var clickId = await Click(code);

        app.Clock.Advance(TimeSpan.FromDays(7));
        var outcome = await _admin.Track(campaign, "signup", "edge@example.net", clickId: clickId);

        Assert.True((bool)outcome["attributed"]!);
        Assert.Equal("click_id", (string?)outcome["attributedBy"]);
        Assert.Equal(advocateId, (string?)outcome["referral"]!["advocateId"]);
    }

    [Fact]
    public async Task A_click_id_one_second_past_the_window_does_not_attribute()
    {
        var (campaign, _, code) = await Campaign(windowDays: 7);
        var clickId = await Click(code);

        app.Clock.Advance(TimeSpan.FromDays(7) + TimeSpan.FromSeconds(1));
        var outcome = await _admin.Track(campaign, "signup", "late@example.net", clickId: clickId);

        Assert.False((bool)outcome["attributed"]!);
        Assert.Null(outcome["referral"]);
    }

    [Fact]
    public async Task A_click_seen_as_ipv4_mapped_ipv6_and_an_event_reporting_the_ipv4_address_are_the_same_address()
    {
        var (campaign, advocateId, code) = await Campaign(windowDays: 3);
        // A dual-stack socket reports an IPv4 client as ::ffff:a.b.c.d; the shop's server reports a.b.c.d.
        await Click(code, ip: "::ffff:203.0.113.52");

        var outcome = await _admin.Track(campaign, "signup", "mapped-ip@example.net", ip: "203.0.113.52");

        Assert.Equal("ip", (string?)outcome["attributedBy"]);
        Assert.Equal(advocateId, (string?)outcome["referral"]!["advocateId"]);
        Assert.Equal("203.0.113.52", await app.WithDb(db => db.Clicks.Where(c => c.CampaignId == campaign).Select(c => c.Ip).SingleAsync()));
    }

    [Fact]
    public async Task An_earlier_click_from_the_same_ip_attributes_inside_the_window_only()
    {
        var (campaign, advocateId, code) = await Campaign(windowDays: 3);
        var (_, _, otherCode) = await Campaign(windowDays: 3); // a click in another campaign never counts
        await Click(otherCode, ip: "203.0.113.50");
        app.Clock.Advance(TimeSpan.FromHours(1));
        await Click(code, ip: "203.0.113.50");

        app.Clock.Advance(TimeSpan.FromDays(3));
        var inside = await _admin.Track(campaign, "signup", "same-ip@example.net", ip: "203.0.113.50");
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        var outside = await _admin.Track(campaign, "signup", "same-ip-late@example.net", ip: "203.0.113.50");
        var otherIp = await _admin.Track(campaign, "signup", "other-ip@example.net", ip: "203.0.113.51");

        Assert.Equal("ip", (string?)inside["attributedBy"]);
        Assert.Equal(advocateId, (string?)inside["referral"]!["advocateId"]);
        Assert.False((bool)outside["attributed"]!);
        Assert.False((bool)otherIp["attributed"]!);
    }

    [Fact]
    public async Task A_click_this_email_reported_earlier_attributes_a_later_event_without_it()
    {
        var (campaign, advocateId, code) = await Campaign(windowDays: 7);
        var clickId = await Click(code);
        await _admin.PostAsync($"/api/v1/campaigns/{campaign}/pause", null);
        var whilePaused = await _admin.Track(campaign, "signup", "returning@example.net", clickId: clickId);
        await _admin.PostAsync($"/api/v1/campaigns/{campaign}/resume", null);

        app.Clock.Advance(TimeSpan.FromDays(2));
        var later = await _admin.Track(campaign, "purchase", "returning@example.net", orderId: "R-1", purchaseValue: 10);

        Assert.False((bool)whilePaused["attributed"]!);
        Assert.Contains("paused", (string?)whilePaused["reason"]);
        Assert.Equal("email", (string?)later["attributedBy"]);
        Assert.Equal(advocateId, (string?)later["referral"]!["advocateId"]);
    }

    [Fact]
    public async Task The_referral_code_wins_over_a_click_and_the_first_attribution_sticks()
    {
        var (campaign, annId, annCode) = await Campaign();
        var (bobId, bobCode) = await _admin.Advocate(campaign, "bob@example.com");
        var bobClick = await Click(bobCode);

        var first = await _admin.Track(campaign, "signup", "friend@example.net", code: annCode, clickId: bobClick);
        var second = await _admin.Track(campaign, "purchase", "friend@example.net", code: bobCode, orderId: "S-1", purchaseValue: 5);

        Assert.Equal(annId, (string?)first["referral"]!["advocateId"]);
        Assert.Equal((string?)first["referral"]!["id"], (string?)second["referral"]!["id"]);
        Assert.Equal(annId, (string?)second["referral"]!["advocateId"]);
        Assert.NotEqual(bobId, annId);
    }

    [Fact]
    public async Task An_advocates_own_event_is_not_a_referral()
    {
        var (campaign, _, code) = await Campaign();

        var outcome = await _admin.Track(campaign, "purchase", "ANN@example.com", code: code, orderId: "SELF-1", purchaseValue: 99);

        Assert.False((bool)outcome["attributed"]!);
        Assert.Contains("advocate's own", (string?)outcome["reason"]);
    }

    // A batch reads each kind of evidence once for all its events; each event still gets the strongest evidence inside
    // its own window, up to its own moment.
    [Fact]
    public async Task Events_of_one_batch_are_attributed_together_each_by_its_own_evidence()
    {
        var (campaign, annId, annCode) = await Campaign(windowDays: 3);
        var (bobId, bobCode) = await _admin.Advocate(campaign, "bob-batch@example.com");
        var bobClick = await Click(bobCode, ip: "203.0.113.60");
        await _admin.PostAsync($"/api/v1/campaigns/{campaign}/pause", null);
        await _admin.Track(campaign, "signup", "batch-returning@example.net", clickId: bobClick);
        await _admin.PostAsync($"/api/v1/campaigns/{campaign}/resume", null);
        app.Clock.Advance(TimeSpan.FromHours(1));
        await Click(annCode, ip: "203.0.113.61");
        app.Clock.Advance(TimeSpan.FromDays(1));

        var outcomes = await TrackTogether(campaign,
            Signup("batch-returning@example.net", "203.0.113.99"),
            Signup("batch-same-ip@example.net", "203.0.113.60"),
            Signup("batch-ann-ip@example.net", "203.0.113.61"),
            Signup("batch-nobody@example.net", "203.0.113.62"),
            Signup("batch-late@example.net", "203.0.113.61") with { OccurredAt = app.Clock.GetUtcNow().AddDays(-3) });

        Assert.Equal([("email", bobId), ("ip", bobId), ("ip", annId), (null, null), (null, null)],
            outcomes.Select(o => (o.AttributedBy, o.Referral?.AdvocateId)));
    }

    // More clicks from one address than a batch reads for it: each event then finds its own latest click.
    [Fact]
    public async Task Events_behind_many_clicks_from_their_address_find_the_latest_click_before_them()
    {
        var (campaign, annId, annCode) = await Campaign(windowDays: 3);
        var (bobId, bobCode) = await _admin.Advocate(campaign, "bob-busy@example.com");
        await Click(annCode, ip: "203.0.113.70");
        var between = app.Clock.GetUtcNow().AddSeconds(30);
        var bobClicks = new HashSet<string>();
        for (var i = 0; i < 25; i++)
        {
            // Past the window in which a repeated visit from one address counts as the same click.
            app.Clock.Advance(ShareLinks.RepeatWindow + TimeSpan.FromMinutes(1));
            bobClicks.Add(await Click(bobCode, ip: "203.0.113.70"));
        }
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(25, bobClicks.Count);

        var outcomes = await TrackTogether(campaign,
            Signup("busy-early@example.net", "203.0.113.70") with { OccurredAt = between },
            Signup("busy-now@example.net", "203.0.113.70"));

        Assert.Equal([("ip", annId), ("ip", bobId)], outcomes.Select(o => (o.AttributedBy, o.Referral?.AdvocateId)));
    }

    private static TrackEvent Signup(string email, string ip) => new() { Type = "signup", Email = email, Ip = ip };

    /// <summary>The events in one batch of the engine, as the event loop hands them over.</summary>
    private async Task<EventOutcome[]> TrackTogether(string campaignId, params TrackEvent[] events)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var campaign = (await scope.ServiceProvider.GetRequiredService<CampaignCache>().FindAsync(db, campaignId, CancellationToken.None))!;
        var engine = scope.ServiceProvider.GetRequiredService<ReferralEngine>();
        return await engine.TrackAsync(
            [.. events.Select(e => new TrackRequest(campaign, e with { CampaignId = campaignId }, null, e.Ip, null, EventSource.Server))],
            CancellationToken.None);
    }
}
