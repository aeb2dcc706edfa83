using System.Net;
using System.Text.RegularExpressions;
using Referloop.Dashboard.Campaigns;
using Referloop.Dashboard.InboundHooks;
using Referloop.Dashboard.Participants;
using Referloop.InboundHooks;
using Referloop.Dashboard.Webhooks;
using Referloop.Storage;
using Referloop.Tests.InboundHooks;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;
using Referloop.Webhooks;

namespace Referloop.Tests.Dashboard;

/// <summary>The dashboard's long lists page by cursor, newest first, with "Older" and "Newer" links.</summary>
public partial class DashboardPagingTests(WebhookApp app) : IClassFixture<WebhookApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task The_message_log_pages_through_every_message_with_older_and_newer_links()
    {
        await using var receiver = await Receiver.StartAsync();
        var endpoint = await app.CreateEndpoint(_admin, new { url = receiver.Url(), eventTypes = new[] { "referral.voided" } });
        var id = (string)endpoint["id"]!;
        var total = EndpointDetailsModel.LogSize + 7;
        var ids = await app.WithDb(async db =>
        {
            var created = new List<string>();
            for (var i = 0; i < total; i++)
            {
                var message = Outbox.Add(db, EventTypes.ReferralVoided, null, new { }, app.Clock.GetUtcNow());
                message.DispatchedAt = app.Clock.GetUtcNow();
                var delivery = new WebhookDelivery
                {
                    Id = Ids.New("dlv"),
                    MessageId = message.Id,
                    EndpointId = id,
                    Status = i == 0 ? DeliveryStatus.Cancelled : DeliveryStatus.Failed,
                    CreatedAt = app.Clock.GetUtcNow(),
                    UpdatedAt = app.Clock.GetUtcNow(),
                };
                db.WebhookDeliveries.Add(delivery);
                created.Add(delivery.Id);
            }
            await db.SaveChangesAsync();
            return created;
        });
        var newestFirst = Enumerable.Reverse(ids).ToList();
        var client = await DashboardClient.SignedIn(app);

        var first = await client.Page($"/admin/webhooks/{id}");
        var older = await client.Page(Link(first, "Older"));
        var newer = await client.Page(Link(older, "Newer"));

        Assert.Equal(newestFirst.Take(EndpointDetailsModel.LogSize), Messages(first, id));
        Assert.False(HasLink(first, "Newer"));
        Assert.Equal(newestFirst.Skip(EndpointDetailsModel.LogSize), Messages(older, id));
        Assert.False(HasLink(older, "Older"));
        Assert.Equal(Messages(first, id), Messages(newer, id));

        // The status filter is kept while paging, and a cursor that does not decode shows the newest page.
        Assert.Equal([ids[0]], Messages(await client.Page($"/admin/webhooks/{id}?status=cancelled"), id));
        Assert.Equal(Messages(first, id), Messages(await client.Page($"/admin/webhooks/{id}?before=%%%"), id));
    }

    [Fact]
    public async Task The_participants_of_a_campaign_page_through_everyone_and_keep_the_search()
    {
        var (campaign, _) = await _admin.Campaign([], new { name = "Crowded" });
        var total = CampaignDetailsModel.PageSize + 3;
        for (var i = 0; i < total; i++)
        {
            await _admin.Advocate(campaign, $"crowd{i:D2}@example.com");
        }
        var client = await DashboardClient.SignedIn(app);

        var first = await client.Page($"/admin/campaigns/{campaign}");
        var older = await client.Page(Link(first, "Older"));
        var searched = await client.Page($"/admin/campaigns/{campaign}?search=crowd0");

        Assert.Equal(CampaignDetailsModel.PageSize, Emails(first).Count);
        Assert.Contains("crowd52@example.com", Emails(first));
        Assert.Equal(["crowd02@example.com", "crowd01@example.com", "crowd00@example.com"], Emails(older));
        Assert.Equal(Emails(first), Emails(await client.Page(Link(older, "Newer"))));
        Assert.Equal(10, Emails(searched).Count);
        Assert.False(HasLink(searched, "Older"));
    }

    [Fact]
    public async Task The_participants_list_searches_every_campaign_and_pages_through_everyone()
    {
        var (north, _) = await _admin.Campaign([], new { name = "North" });
        var (south, _) = await _admin.Campaign([], new { name = "South" });
        var total = ParticipantsIndexModel.PageSize + 2;
        for (var i = 0; i < total; i++)
        {
            await _admin.Advocate(i % 2 == 0 ? north : south, $"walker{i:D2}@example.com", $"Walker {i:D2}");
        }
        var (_, code) = await _admin.Advocate(south, "zoe@example.com", "Zoë Quill");
        var client = await DashboardClient.SignedIn(app);

        var first = await client.Page("/admin/participants?search=walker");
        var older = await client.Page(Link(first, "Older"));
        Assert.Equal(ParticipantsIndexModel.PageSize, Emails(first).Count);
        Assert.Equal("walker51@example.com", Emails(first)[0]);
        Assert.Equal(["walker01@example.com", "walker00@example.com"], Emails(older));
        Assert.Contains("search=walker", Link(older, "Newer"));
        Assert.Equal(Emails(first), Emails(await client.Page(Link(older, "Newer"))));

        // Name (any case) and exact code find the same person; the campaign filter narrows the search.
        Assert.Equal(["zoe@example.com"], Emails(await client.Page("/admin/participants?search=QUILL")));
        Assert.Equal(["zoe@example.com"], Emails(await client.Page($"/admin/participants?search={code}")));
        Assert.Equal(["walker49@example.com", "walker47@example.com", "walker45@example.com", "walker43@example.com", "walker41@example.com"],
            Emails(await client.Page($"/admin/participants?search=walker4&campaign={south}")));
        var none = await client.Page("/admin/participants?search=nobody");
        Assert.Empty(Emails(none));
        Assert.Contains("Nobody matches", none);
    }

    [Fact]
    public async Task The_requests_of_an_inbound_hook_page_through_every_request()
    {
        var (campaign, _) = await _admin.Campaign([], new { name = "Busy hook" });
        var hook = await _admin.CreateHook(campaign, "stream");
        var total = HookDetailsModel.LogSize + 2;
        var ids = await app.WithDb(async db =>
        {
            var created = Enumerable.Range(0, total).Select(_ => new InboundRequest
            {
                Id = Ids.New("inr"),
                HookId = hook.Id,
                CampaignId = campaign,
                ReceivedAt = app.Clock.GetUtcNow(),
                Headers = "{}",
                Body = "{}",
                Outcome = InboundOutcomeStatus.Rejected,
            }).ToList();
            db.InboundRequests.AddRange(created);
            await db.SaveChangesAsync();
            return created.Select(r => r.Id).Reverse().ToList();
        });
        var client = await DashboardClient.SignedIn(app);

        var first = await client.Page($"/admin/inbound-hooks/{hook.Id}?outcome=rejected");
        var older = await client.Page(Link(first, "Older"));

        Assert.Equal(ids.Take(HookDetailsModel.LogSize), Requests(first));
        Assert.Equal(ids.Skip(HookDetailsModel.LogSize), Requests(older));
        Assert.Contains("outcome=rejected", Link(older, "Newer"));
    }

    private static List<string> Requests(string html) =>
        Regex.Matches(html, "<li class=\"request\" id=\"([^\"]+)\">").Select(m => m.Groups[1].Value).ToList();

    private static string Link(string html, string label)
    {
        var match = PagerLink(html, label);
        Assert.True(match.Success, $"no “{label}” link");
        return WebUtility.HtmlDecode(match.Groups[1].Value);
    }

    private static bool HasLink(string html, string label) => PagerLink(html, label).Success;

    private static Match PagerLink(string html, string label) =>
        Regex.Match(html, $"<a class=\"button\" rel=\"(?:prev|next)\" href=\"([^\"]+)\">{label}</a>");

    private static List<string> Messages(string html, string endpointId) =>
        Regex.Matches(html, $"href=\"/admin/webhooks/{endpointId}/messages/([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();

    private static List<string> Emails(string html) =>
        ParticipantRow().Matches(html).Select(m => m.Groups[1].Value).ToList();

    [GeneratedRegex("/participants/[^\"]+\">([^<]+@example\\.com)</a></td>")]
    private static partial Regex ParticipantRow();
}
