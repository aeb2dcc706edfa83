using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Referloop.Email;
using Referloop.Tests.HostedPages;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Email;

/// <summary>
/// One magic link per address per <see cref="PortalLinkModel.Interval"/>, also when two requests come at once: two
/// mails would each replace the participant's mail portal token, and only the later link would open the portal.
/// </summary>
public class PortalLinkRaceTests(PortalLinkRaceTests.RaceApp app) : IClassFixture<PortalLinkRaceTests.RaceApp>
{
    public sealed class RaceApp : EmailApp
    {
        public ReadMeeting Meeting { get; } = new();

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.InterceptDatabase(Meeting);
        }
    }

    private static int _lastAddress;
    private readonly HttpClient _admin = app.CreateAdminClient();

    private Visitor NewVisitor()
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        client.DefaultRequestHeaders.Add(ClientAddress.Header, $"198.51.100.{Interlocked.Increment(ref _lastAddress)}");
        return new Visitor(client);
    }

    private Task<int> MagicLinks(string participantId) =>
        app.WithDb(db => db.Set<EmailSend>().CountAsync(s => s.ParticipantId == participantId && s.Kind == EmailKind.MagicLink));

    private async Task Ask(string slug, string email)
    {
        var ask = await NewVisitor().Submit($"/join/{slug}/portal-link", new() { ["Email"] = email });
        Assert.Equal(HttpStatusCode.OK, ask.StatusCode);
    }

    [Fact]
    public async Task A_second_request_within_the_interval_sends_no_second_link()
    {
        var (campaign, _) = await _admin.Campaign([], new { name = "Again friends", slug = "again-friends" });
        var (advocateId, _) = await _admin.Advocate(campaign, "again@example.com", "Ann");

        await Ask("again-friends", "again@example.com");
        await Ask("again-friends", "Again@Example.com");
        Assert.Equal(1, await MagicLinks(advocateId));

        app.Clock.Advance(PortalLinkModel.Interval);
        await Ask("again-friends", "again@example.com");
        Assert.Equal(2, await MagicLinks(advocateId));
    }

    [Fact]
    public async Task Two_requests_at_once_send_one_link()
    {
        var (campaign, _) = await _admin.Campaign([], new { name = "Twin friends", slug = "twin-friends" });
        var (advocateId, _) = await _admin.Advocate(campaign, "twin@example.com", "Ann");

        // Both requests would look for a recent link before either writes one, if nothing kept them apart.
        app.Meeting.Arm("email_sends", advocateId, 2, TimeSpan.FromSeconds(3));
        try
        {
            await Task.WhenAll(Ask("twin-friends", "twin@example.com"), Ask("twin-friends", "twin@example.com"));
        }
        finally
        {
            app.Meeting.Disarm();
        }

        Assert.Equal(1, await MagicLinks(advocateId));
    }
}
