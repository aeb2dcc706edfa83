using System.Net;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;

namespace Referloop.Tests.Campaigns;

/// <summary>
/// Events find their campaign in a cache: a change saved through this instance applies to the next event, and a
/// change made elsewhere (another instance) once the entry's second has passed.
/// </summary>
public class CampaignCacheTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task A_campaign_paused_through_this_instance_refuses_the_very_next_event()
    {
        var (campaign, publishableKey) = await _admin.Campaign([]);
        var (_, code) = await _admin.Advocate(campaign);
        var browser = app.CreateAnonymousClient();
        browser.DefaultRequestHeaders.Add("X-Referloop-Key", publishableKey);
        Assert.True((bool)(await _admin.Track(campaign, "signup", "first@example.net", code))["attributed"]!);
        Assert.True((bool)(await browser.Track(campaign, "signup", "first-browser@example.net", code))["attributed"]!);

        await _admin.PostOk($"/api/v1/campaigns/{campaign}/pause", new { }, HttpStatusCode.OK);
        var byAdmin = await _admin.Track(campaign, "signup", "paused@example.net", code);
        var byBrowser = await browser.Track(campaign, "signup", "paused-browser@example.net", code);

        Assert.False((bool)byAdmin["attributed"]!);
        Assert.Contains("paused", (string?)byAdmin["reason"]);
        Assert.False((bool)byBrowser["attributed"]!);

        await _admin.PostOk($"/api/v1/campaigns/{campaign}/resume", new { }, HttpStatusCode.OK);
        Assert.True((bool)(await _admin.Track(campaign, "signup", "resumed@example.net", code))["attributed"]!);
    }

    [Fact]
    public async Task A_change_made_by_another_instance_applies_within_a_second()
    {
        var (campaign, _) = await _admin.Campaign([]);
        var (_, code) = await _admin.Advocate(campaign);
        Assert.True((bool)(await _admin.Track(campaign, "signup", "before@example.net", code))["attributed"]!);

        // Written straight to the database, as another instance would: this instance's saves never saw it.
        await app.WithDb(db => db.Campaigns.Where(c => c.Id == campaign).ExecuteUpdateAsync(s => s.SetProperty(c => c.Status, "paused")));
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        var after = await _admin.Track(campaign, "signup", "after@example.net", code);

        Assert.False((bool)after["attributed"]!);
        Assert.Contains("paused", (string?)after["reason"]);
    }
}
