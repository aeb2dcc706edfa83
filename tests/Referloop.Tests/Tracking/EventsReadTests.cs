using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Tracking;

/// <summary>Received events can be read back, each with its source and the outcome it was answered with.</summary>
public class EventsReadTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private static readonly object[] AdvocateRebate =
    [
        new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) },
    ];

    [Fact]
    public async Task An_event_is_read_back_with_its_outcome()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateRebate, new { fraud = new { selfReferral = false, disposableEmail = false } });
        var (_, code) = await _admin.Advocate(campaign, "read-ann@example.com");
        var tracked = await _admin.Track(campaign, "purchase", "read-bob@example.net", code, orderId: "RD-1", purchaseValue: 12.5m,
            properties: new { plan = "pro" });

        var read = await _admin.GetOk($"/api/v1/events/{(string)tracked["eventId"]!}");

        Assert.Equal("purchase", (string?)read["type"]);
        Assert.Equal("server", (string?)read["source"]);
        Assert.Equal("RD-1", (string?)read["orderId"]);
        Assert.Equal("pro", (string?)read["properties"]!["plan"]);
        Assert.Equal((string?)tracked["referral"]!["id"], (string?)read["referralId"]);
        Assert.Equal("approved", (string?)read["outcome"]!["referral"]!["status"]);
        Assert.Equal("issued", (string?)read["outcome"]!["rewards"]![0]!["status"]);
    }

    [Fact]
    public async Task Events_are_listed_oldest_first_by_campaign_type_participant_and_time_in_pages()
    {
        var (campaign, key) = await _admin.Campaign([]);
        var (other, _) = await _admin.Campaign([]);
        var (_, code) = await _admin.Advocate(campaign, "list-ann@example.com");
        var first = await _admin.Track(campaign, "signup", "list-bob@example.net", code);
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var cutoff = app.Clock.GetUtcNow();
        await _admin.Track(campaign, "purchase", "list-bob@example.net", orderId: "L-1");
        using var fromPage = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events")
        {
            Content = JsonContent.Create(new { type = "signup", email = "list-cy@example.net" }),
        };
        fromPage.Headers.Add("X-Referloop-Key", key);
        (await app.CreateAnonymousClient().SendAsync(fromPage)).EnsureStatus(HttpStatusCode.Accepted);
        await _admin.Track(other, "signup", "list-dee@example.net");

        var all = await List($"campaignId={campaign}");
        var signups = await List($"campaignId={campaign}&type=signup");
        var bobs = await List($"participantId={(string)first["referral"]!["friendId"]!}");
        var recent = await List($"campaignId={campaign}&since={Uri.EscapeDataString(cutoff.ToString("O"))}");

        Assert.Equal(["list-bob@example.net", "list-bob@example.net", "list-cy@example.net"], Emails(all));
        Assert.Equal(["server", "server", "browser"], all.Select(e => (string)e!["source"]!));
        Assert.Equal(["list-bob@example.net", "list-cy@example.net"], Emails(signups));
        Assert.Equal(["signup", "purchase"], bobs.Select(e => (string)e!["type"]!));
        Assert.Equal(["list-bob@example.net", "list-cy@example.net"], Emails(recent));

        var page = await _admin.GetOk($"/api/v1/events?campaignId={campaign}&limit=2");
        var rest = await _admin.GetOk($"/api/v1/events?campaignId={campaign}&limit=2&cursor={(string)page["nextCursor"]!}");
        Assert.Equal(2, page["data"]!.AsArray().Count);
        Assert.Equal("list-cy@example.net", (string?)Assert.Single(rest["data"]!.AsArray())!["email"]);
        Assert.Null(rest["nextCursor"]);
    }

    [Fact]
    public async Task Reading_events_needs_the_admin_key_and_an_unknown_id_is_404()
    {
        var (_, key) = await _admin.Campaign([]);
        using var withKey = new HttpRequestMessage(HttpMethod.Get, "/api/v1/events");
        withKey.Headers.Add("X-Referloop-Key", key);

        Assert.Equal(HttpStatusCode.Unauthorized, (await app.CreateAnonymousClient().SendAsync(withKey)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _admin.GetAsync("/api/v1/events/evt_nope")).StatusCode);
        await (await _admin.GetAsync("/api/v1/events?limit=0")).AssertValidationProblem("limit");
    }

    private async Task<JsonArray> List(string query) => (await _admin.GetOk($"/api/v1/events?{query}"))["data"]!.AsArray();

    private static string[] Emails(JsonArray events) => [.. events.Select(e => (string)e!["email"]!)];
}
