using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Tracking;

public sealed class LowPublicLimitsApp : ReferloopApp
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["RateLimits:BrowserEventsPerIpPerMinute"] = "3",
        ["RateLimits:BrowserEventsPerKeyPerMinute"] = "5",
        ["RateLimits:ShareLinksPerIpPerMinute"] = "3",
    };
}

/// <summary>The public routes are limited per client address (and browser events per publishable key); the admin key is not.</summary>
public class PublicLimitTests(LowPublicLimitsApp app) : IClassFixture<LowPublicLimitsApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task Browser_events_are_limited_per_address_and_the_admin_key_is_not()
    {
        var (campaign, key) = await _admin.Campaign([]);

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.Accepted, (await BrowserSignup(key, "198.51.100.40", $"ip{i}@example.net")).StatusCode);
        }
        var limited = await BrowserSignup(key, "198.51.100.40", "ip3@example.net");

        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.NotNull(limited.Headers.RetryAfter);
        Assert.Equal("application/problem+json", limited.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.Accepted, (await BrowserSignup(key, "198.51.100.41", "other@example.net")).StatusCode);
        for (var i = 0; i < 5; i++)
        {
            await _admin.Track(campaign, "signup", $"server{i}@example.net");
        }
    }

    [Fact]
    public async Task One_publishable_key_is_limited_across_addresses()
    {
        var (_, key) = await _admin.Campaign([]);

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.Accepted, (await BrowserSignup(key, $"203.0.113.{i + 1}", $"k{i}@example.net")).StatusCode);
        }
        var limited = await BrowserSignup(key, "203.0.113.99", "k5@example.net");

        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.Contains("publishable key", await limited.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Following_a_link_again_from_one_address_records_one_click_and_is_limited()
    {
        var (campaign, _) = await _admin.Campaign([]);
        var (_, code) = await _admin.Advocate(campaign, "clk-ann@example.com");

        var first = await Follow(code, "192.0.2.70");
        var again = await Follow(code, "192.0.2.70");
        var elsewhere = await Follow(code, "192.0.2.71");
        app.Clock.Advance(TimeSpan.FromMinutes(11));
        var later = await Follow(code, "192.0.2.70");
        var limited = await Follow(code, "192.0.2.70");

        Assert.Equal(HttpStatusCode.Redirect, first.StatusCode);
        Assert.Equal(ClickId(first), ClickId(again));
        Assert.NotEqual(ClickId(first), ClickId(elsewhere));
        Assert.NotEqual(ClickId(first), ClickId(later));
        Assert.Equal(3, await app.WithDb(db => db.Clicks.CountAsync(c => c.CampaignId == campaign)));
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
    }

    [Fact]
    public async Task The_dashboards_sign_in_form_refuses_a_large_body()
    {
        using var content = new FormUrlEncodedContent([new("key", new string('k', 1024 * 1024))]);

        var response = await app.CreateAnonymousClient().PostAsync("/admin/sign-in", content);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    private Task<HttpResponseMessage> BrowserSignup(string key, string address, string email)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events") { Content = JsonContent.Create(new { type = "signup", email }) };
        request.Headers.Add("X-Referloop-Key", key);
        request.Headers.Add(ClientAddress.Header, address);
        return app.CreateAnonymousClient().SendAsync(request);
    }

    private Task<HttpResponseMessage> Follow(string code, string address)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/r/{code}");
        request.Headers.Add(ClientAddress.Header, address);
        return app.CreateAnonymousClient().SendAsync(request);
    }

    private static string ClickId(HttpResponseMessage response) =>
        System.Web.HttpUtility.ParseQueryString(response.Headers.Location!.Query)["rl_click"]!;
}
