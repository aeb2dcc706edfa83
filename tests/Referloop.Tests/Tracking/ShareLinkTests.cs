using System.Net;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;

namespace Referloop.Tests.Tracking;

public class ShareLinkTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private async Task<(string Campaign, string Code, string AdvocateId)> AdvocateIn(object? campaignBody = null)
    {
        var campaign = await _admin.CreateCampaign(campaignBody ?? new { name = "Links", landingUrl = "https://shop.example.com/welcome?utm_source=referral#top", attributionWindowDays = 7 });
        var advocate = await _admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "ann@example.com" });
        return (campaign, (string)advocate["code"]!, (string)advocate["id"]!);
    }

    [Fact]
    public async Task Following_a_share_link_records_the_click_sets_the_cookie_and_redirects_with_ref()
    {
        var (_, code, advocateId) = await AdvocateIn();
        var visitor = app.CreateAnonymousClient();
        visitor.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Test)");
        visitor.DefaultRequestHeaders.Referrer = new Uri("https://social.example/post/1");

        var response = await visitor.GetAsync($"/r/{code}");

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        var location = response.Headers.Location!;
        Assert.Equal("https://shop.example.com/welcome", location.GetLeftPart(UriPartial.Path));
        Assert.Equal("#top", location.Fragment);
        var query = QueryHelpers.ParseQuery(location.Query);
        Assert.Equal(code, query["ref"].ToString());
        Assert.Equal("referral", query["utm_source"].ToString());
        var clickId = query["rl_click"].ToString();
        Assert.StartsWith("clk_", clickId);

        var cookie = Assert.Single(response.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith($"rl_click={clickId};", cookie);
        Assert.Contains("samesite=lax", cookie, StringComparison.OrdinalIgnoreCase);
        var expires = DateTimeOffset.Parse(cookie.Split("expires=")[1].Split(';')[0]);
        Assert.Equal(app.Clock.GetUtcNow().AddDays(7), expires, TimeSpan.FromSeconds(1));
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());

        var click = await app.WithDb(db => db.Clicks.AsNoTracking().SingleAsync(c => c.Id == clickId));
        Assert.Equal(advocateId, click.ParticipantId);
        Assert.Equal("Mozilla/5.0 (Test)", click.UserAgent);
        Assert.Equal("https://social.example/post/1", click.Referrer);
        Assert.Equal(app.Clock.GetUtcNow(), click.CreatedAt);
    }

    [Fact]
    public async Task An_unknown_code_is_a_plain_404_page()
    {
        var response = await app.CreateAnonymousClient().GetAsync("/r/doesNotExist");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("does not exist", await response.Content.ReadAsStringAsync());
        Assert.False(response.Headers.Contains("Set-Cookie"));
    }

    [Fact]
    public async Task A_paused_campaign_lands_without_attribution()
    {
        var (campaign, code, advocateId) = await AdvocateIn(new { name = "Paused", landingUrl = "https://shop.example.com/welcome" });
        await _admin.PostAsync($"/api/v1/campaigns/{campaign}/pause", null);

        var response = await app.CreateAnonymousClient().GetAsync($"/r/{code}");

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal("https://shop.example.com/welcome", response.Headers.Location!.ToString());
        Assert.False(response.Headers.Contains("Set-Cookie"));
        Assert.Equal(0, await app.WithDb(db => db.Clicks.CountAsync(c => c.ParticipantId == advocateId)));
    }

    [Fact]
    public async Task Every_visit_is_a_click_of_its_own()
    {
        var (_, code, advocateId) = await AdvocateIn();
        var visitor = app.CreateAnonymousClient();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.Found, (await visitor.GetAsync($"/r/{code}")).StatusCode);
        }
        Assert.Equal(3, await app.WithDb(db => db.Clicks.CountAsync(c => c.ParticipantId == advocateId)));
    }
}
