using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Email;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Email;

/// <summary>Without <c>Email:Smtp:Host</c> nothing about e-mail happens, and the outbox pays nothing for it.</summary>
public sealed class EmailOffTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task Without_smtp_settings_no_send_is_recorded_and_the_magic_link_page_does_not_exist()
    {
        Assert.False(app.Services.GetRequiredService<EmailOutbox>().Enabled);
        var (campaign, _) = await _admin.Campaign(
            [new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) }],
            new { name = "No mail", slug = "no-mail" });
        var (_, code) = await _admin.Advocate(campaign, "silent@example.com");
        await _admin.Track(campaign, "purchase", "buyer@example.net", code, orderId: "N-1", purchaseValue: 40);
        await Eventually(async () => await app.WithDb(db => db.Outbox.CountAsync(m => m.CampaignId == campaign && m.DispatchedAt == null)) == 0,
            "every message dispatched");

        // The engine's batched writes mark a message no endpoint wants dispatched as they write it.
        var issued = await app.WithDb(db => db.Outbox.AsNoTracking().SingleAsync(m => m.CampaignId == campaign && m.Type == "reward.issued"));
        Assert.Equal(issued.CreatedAt, issued.DispatchedAt);
        Assert.Equal(0, await app.WithDb(db => db.Set<EmailSend>().CountAsync()));
        var anonymous = app.CreateAnonymousClient();
        Assert.Equal(HttpStatusCode.NotFound, (await anonymous.GetAsync("/join/no-mail/portal-link")).StatusCode);
        Assert.DoesNotContain("portal-link", await (await anonymous.GetAsync("/join/no-mail")).Content.ReadAsStringAsync());
    }
}
