using System.Net;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using Referloop.Tracking;

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

    [Fact]
    public async Task A_visit_again_from_the_same_address_within_ten_minutes_is_the_same_click()
    {
        var (_, code, advocateId) = await AdvocateIn();

        var first = await ClickIdOf(await Visit(code, "198.51.100.7"));
        var reload = await ClickIdOf(await Visit(code, "198.51.100.7"));
        var otherAddress = await ClickIdOf(await Visit(code, "198.51.100.8"));
        app.Clock.Advance(ShareLinks.RepeatWindow + TimeSpan.FromSeconds(1));
        var later = await ClickIdOf(await Visit(code, "198.51.100.7"));

        Assert.Equal(first, reload);
        Assert.NotEqual(first, otherAddress);
        Assert.NotEqual(first, later);
        var stored = await app.WithDb(db => db.Clicks.Where(c => c.ParticipantId == advocateId).Select(c => c.Id).ToListAsync());
        Assert.Equal(3, stored.Count);
        Assert.Contains(first, stored);
        Assert.Contains(otherAddress, stored);
        Assert.Contains(later, stored);
    }

    [Fact]
    public async Task A_burst_of_visits_is_recorded_visit_by_visit_and_repeats_within_it_share_their_click()
    {
        var (_, code, advocateId) = await AdvocateIn();
        var (_, otherCode, otherAdvocateId) = await AdvocateIn();

        // Many at once, so that they are written together: sixty addresses, each following both links twice.
        var visits = Enumerable.Range(0, 60)
            .SelectMany(i => new[] { (code, i), (otherCode, i), (code, i), (otherCode, i) })
            .Select(async v => (v.Item1, v.Item2, Response: await Visit(v.Item1, $"203.0.113.{v.Item2 + 1}")))
            .Append(Task.FromResult(("unknownCode", -1, await app.CreateAnonymousClient().GetAsync("/r/unknownCode"))));
        var answered = await Task.WhenAll(visits);

        var unknown = Assert.Single(answered, a => a.Item2 == -1);
        Assert.Equal(HttpStatusCode.NotFound, unknown.Item3.StatusCode);
        var clickIds = new Dictionary<(string, int), string>();
        foreach (var (linkCode, address, response) in answered.Where(a => a.Item2 >= 0))
        {
            Assert.Equal(HttpStatusCode.Found, response.StatusCode);
            var clickId = await ClickIdOf(response);
            Assert.Equal(linkCode, QueryHelpers.ParseQuery(response.Headers.Location!.Query)["ref"].ToString());
            // The second visit of an address to a link is the first one's click, whether or not they were written together.
            Assert.Equal(clickIds.TryAdd((linkCode, address), clickId) ? clickId : clickIds[(linkCode, address)], clickId);
        }
        var stored = await app.WithDb(db => db.Clicks.AsNoTracking()
            .Where(c => c.ParticipantId == advocateId || c.ParticipantId == otherAdvocateId).ToListAsync());
        Assert.Equal(120, stored.Count);
        Assert.Equal(clickIds.Values.Order(), stored.Select(c => c.Id).Order());
        Assert.All(stored, c => Assert.Equal(c.ParticipantId == advocateId ? code : otherCode,
            clickIds.Single(kv => kv.Value == c.Id).Key.Item1));
    }

    private async Task<HttpResponseMessage> Visit(string code, string address)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/r/{code}");
        request.Headers.Add(ClientAddress.Header, address);
        return await app.CreateAnonymousClient().SendAsync(request);
    }

    private static Task<string> ClickIdOf(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        return Task.FromResult(QueryHelpers.ParseQuery(response.Headers.Location!.Query)["rl_click"].ToString());
    }
}
