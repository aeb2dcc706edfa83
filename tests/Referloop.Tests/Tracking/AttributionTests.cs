using System.Net;
using Microsoft.AspNetCore.WebUtilities;
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
}
