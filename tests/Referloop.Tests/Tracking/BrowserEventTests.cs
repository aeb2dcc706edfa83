using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Tracking;

/// <summary>
/// What a browser holding only the public publishable key can do with <c>POST /api/v1/events</c>: its word about its
/// own address is not taken, and its conversions earn what the campaign's <c>fraud.browserConversions</c> allows.
/// </summary>
public class BrowserEventTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private static readonly object[] AdvocateRebate =
    [
        new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) },
    ];

    private static object Fraud(string browserConversions, params string[] blockedIps) =>
        new { fraud = new { selfReferral = false, disposableEmail = false, browserConversions, blockedIps } };

    [Fact]
    public async Task A_browser_from_a_blocked_address_cannot_claim_another_in_the_body()
    {
        var (campaign, key) = await _admin.Campaign(AdvocateRebate, Fraud("accept", "203.0.113.0/24"));
        var (advocateId, code) = await _admin.Advocate(campaign, "blk-ann@example.com");

        var outcome = await BrowserTrack(key, "203.0.113.9", new
        {
            type = "purchase",
            email = "blk-bob@example.net",
            referralCode = code,
            orderId = "B-1",
            purchaseValue = 999,
            ip = "198.51.100.7",
            userAgent = "Claimed/1.0",
        });

        Assert.Equal("voided", (string?)outcome["referral"]!["status"]);
        Assert.Empty(await _admin.RewardList($"participantId={advocateId}&status=issued"));
        var stored = await app.WithDb(db => db.Events.AsNoTracking().SingleAsync(e => e.Id == (string)outcome["eventId"]!));
        Assert.Equal("203.0.113.9", stored.Ip);
        Assert.Equal("Referloop.Tests", stored.UserAgent);
        Assert.Equal("browser", stored.Source);
    }

    [Fact]
    public async Task The_admin_key_still_reports_the_friends_address_in_the_body()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateRebate, Fraud("review", "203.0.113.0/24"));
        var (_, code) = await _admin.Advocate(campaign, "srv-ann@example.com");

        var outcome = await _admin.Track(campaign, "purchase", "srv-bob@example.net", code, orderId: "S-1", ip: "203.0.113.10");

        Assert.Equal("voided", (string?)outcome["referral"]!["status"]);
        var stored = await app.WithDb(db => db.Events.AsNoTracking().SingleAsync(e => e.Id == (string)outcome["eventId"]!));
        Assert.Equal("server", stored.Source);
    }

    [Fact]
    public async Task By_default_a_browser_reported_purchase_is_held_for_review_without_counting_against_the_advocate()
    {
        var (campaign, key) = await _admin.Campaign(AdvocateRebate, new { fraud = new { selfReferral = false, disposableEmail = false } });
        var (advocateId, code) = await _admin.Advocate(campaign, "rev-ann@example.com");

        var outcome = await BrowserTrack(key, "198.51.100.30", new
        {
            type = "purchase",
            email = "rev-bob@example.net",
            referralCode = code,
            orderId = "R-1",
            purchaseValue = 999,
        });

        Assert.Equal("flagged", (string?)outcome["referral"]!["status"]);
        var referralId = (string)outcome["referral"]!["id"]!;
        var referral = await _admin.GetOk($"/api/v1/referrals/{referralId}");
        Assert.Equal("held", (string?)referral["fraudDecision"]);
        Assert.Equal("browserReported", (string?)referral["findings"]![0]!["check"]);
        Assert.Equal(0, (int)referral["riskScore"]!);
        var reward = Assert.Single(await _admin.RewardList($"participantId={advocateId}"))!;
        Assert.Equal("pending", (string?)reward["status"]);
        var advocate = await _admin.GetOk($"/api/v1/campaigns/{campaign}/participants/{advocateId}");
        Assert.Equal("low", (string?)advocate["risk"]!["level"]);

        var approved = await _admin.PostJson($"/api/v1/referrals/{referralId}/approve", new { reason = "order R-1 checked" });

        Assert.Equal("approved", (string?)approved["status"]);
        Assert.Equal("issued", (string?)(await _admin.RewardList($"participantId={advocateId}"))[0]!["status"]);
    }

    [Fact]
    public async Task With_accept_a_browser_reported_purchase_converts_at_once()
    {
        var (campaign, key) = await _admin.Campaign(AdvocateRebate, Fraud("accept"));
        var (advocateId, code) = await _admin.Advocate(campaign, "acc-ann@example.com");

        var outcome = await BrowserTrack(key, "198.51.100.31", new { type = "purchase", email = "acc-bob@example.net", referralCode = code });

        Assert.Equal("approved", (string?)outcome["referral"]!["status"]);
        Assert.Equal("issued", (string?)Assert.Single(await _admin.RewardList($"participantId={advocateId}"))!["status"]);
    }

    [Fact]
    public async Task With_confirm_a_browser_purchase_waits_for_the_servers_report_of_the_same_order()
    {
        var (campaign, key) = await _admin.Campaign(AdvocateRebate, Fraud("confirm"));
        var (advocateId, code) = await _admin.Advocate(campaign, "cnf-ann@example.com");

        var fromPage = await BrowserTrack(key, "198.51.100.32", new
        {
            type = "purchase",
            email = "cnf-bob@example.net",
            referralCode = code,
            orderId = "C-1",
            purchaseValue = 40,
        });

        Assert.True((bool)fromPage["attributed"]!);
        Assert.Equal("pending", (string?)fromPage["referral"]!["status"]);
        Assert.Empty(await _admin.RewardList($"participantId={advocateId}"));

        var fromServer = await _admin.Track(campaign, "purchase", "cnf-bob@example.net", orderId: "C-1", purchaseValue: 40);

        Assert.False((bool)fromServer["duplicate"]!);
        Assert.Equal((string)fromPage["eventId"]!, (string)fromServer["eventId"]!);
        Assert.Equal("approved", (string?)fromServer["referral"]!["status"]);
        Assert.Equal("issued", (string?)Assert.Single(await _admin.RewardList($"participantId={advocateId}"))!["status"]);

        var retried = await _admin.Track(campaign, "purchase", "cnf-bob@example.net", orderId: "C-1", purchaseValue: 40);
        var pageAgain = await BrowserTrack(key, "198.51.100.32", new { type = "purchase", email = "cnf-bob@example.net", orderId = "C-1" });

        Assert.True((bool)retried["duplicate"]!);
        Assert.True((bool)pageAgain["duplicate"]!);
        Assert.Single(await _admin.RewardList($"participantId={advocateId}"));
        Assert.Equal(1, await app.WithDb(db => db.Events.CountAsync(e => e.CampaignId == campaign)));
    }

    [Fact]
    public async Task A_browser_reported_custom_event_earns_only_when_the_server_reports_it()
    {
        object[] rules = [new { recipient = "advocate", trigger = "event", @event = "subscription_started", kind = "standard", incentive = Rebate(5) }];
        var (campaign, key) = await _admin.Campaign(rules, new { fraud = new { selfReferral = false, disposableEmail = false } });
        var (advocateId, code) = await _admin.Advocate(campaign, "cus-ann@example.com");

        var fromPage = await BrowserTrack(key, "198.51.100.33", new { type = "subscription_started", email = "cus-bob@example.net", referralCode = code });

        Assert.True((bool)fromPage["attributed"]!);
        Assert.Empty(fromPage.Rewards());
        Assert.Empty(await _admin.RewardList($"participantId={advocateId}"));

        var fromServer = await _admin.Track(campaign, "subscription_started", "cus-bob@example.net");

        Assert.Single(fromServer.Rewards());
        Assert.Single(await _admin.RewardList($"participantId={advocateId}"));
    }

    [Fact]
    public async Task The_policy_is_validated_and_shown()
    {
        var response = await _admin.PostAsJsonAsync("/api/v1/campaigns", new
        {
            name = "Bad policy",
            landingUrl = "https://shop.example.com/",
            fraud = new { browserConversions = "always" },
        });
        var problem = await response.AssertValidationProblem("fraud.browserConversions");
        Assert.Contains("\"review\"", (string?)problem["errors"]!["fraud.browserConversions"]![0]);

        var created = await _admin.PostOk("/api/v1/campaigns", new { name = "Default policy", landingUrl = "https://shop.example.com/" });
        Assert.Equal("review", (string?)created["fraud"]!["browserConversions"]);
    }

    [Fact]
    public async Task An_oversized_body_is_refused_with_413_before_it_is_read()
    {
        var body = new StringBuilder("{\"type\":\"signup\",\"email\":\"big@example.net\",\"name\":\"");
        body.Append('x', 4 * 1024 * 1024).Append("\"}");
        using var content = new StringContent(body.ToString(), Encoding.UTF8, "application/json");

        var response = await app.CreateAnonymousClient().PostAsync("/api/v1/events", content);

        Assert.True(response.StatusCode == HttpStatusCode.RequestEntityTooLarge, await response.Content.ReadAsStringAsync());
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    // The publishable key is in every page of the shop and order ids are easy to guess: a browser repeating an order
    // another person's event holds learns that it was reported, not its referral, advocate or the friend's reward (a coupon code).
    [Fact]
    public async Task A_browser_repeating_another_persons_order_gets_no_outcome_of_it()
    {
        var (campaign, key) = await _admin.Campaign(
            [new { recipient = "friend", trigger = "converted", kind = "standard", incentive = new { type = "other", description = "Welcome gift G-1" } }],
            Fraud("accept"));
        var (_, code) = await _admin.Advocate(campaign, "rep-ann@example.com");
        var first = await BrowserTrack(key, "198.51.100.40", new { type = "purchase", email = "rep-bob@example.net", referralCode = code, orderId = "G-1", purchaseValue = 50 });
        Assert.Equal("Welcome gift G-1", (string?)first["rewards"]![0]!["incentive"]!["description"]);

        var other = await BrowserTrack(key, "198.51.100.41", new { type = "purchase", email = "guesser@example.net", orderId = "G-1" });
        var same = await BrowserTrack(key, "198.51.100.40", new { type = "purchase", email = "Rep-Bob@example.net", orderId = "G-1" });

        Assert.True((bool)other["duplicate"]!);
        Assert.Equal((string?)first["eventId"], (string?)other["eventId"]);
        Assert.Null(other["referral"]);
        Assert.Empty(other["rewards"]!.AsArray());
        Assert.DoesNotContain("Welcome gift", other.ToJsonString());
        // The same customer reporting again (a reloaded page) gets its outcome back.
        Assert.True((bool)same["duplicate"]!);
        Assert.Equal("Welcome gift G-1", (string?)same["rewards"]![0]!["incentive"]!["description"]);
    }

    // A browser may report an order id before the shop's server does, under its own e-mail and referral code. The
    // server's report is the order's: recorded and attributed on its own, not answered as a repeat of the browser's.
    [Theory]
    [InlineData("review")]
    [InlineData("confirm")]
    public async Task The_servers_report_of_an_order_a_browser_claimed_for_another_person_is_recorded_as_its_own(string policy)
    {
        var (campaign, key) = await _admin.Campaign(AdvocateRebate, Fraud(policy));
        var (squatterId, squatterCode) = await _admin.Advocate(campaign, $"sq-{policy}-mallory@example.com");
        var (_, code) = await _admin.Advocate(campaign, $"sq-{policy}-ann@example.com");
        var claimed = await BrowserTrack(key, "198.51.100.50", new
        {
            type = "purchase", email = $"sq-{policy}-eve@example.net", referralCode = squatterCode, orderId = $"SQ-{policy}", purchaseValue = 80,
        });

        var server = await _admin.Track(campaign, "purchase", $"sq-{policy}-bob@example.net", code, orderId: $"SQ-{policy}");

        Assert.False((bool)server["duplicate"]!);
        Assert.NotEqual((string?)claimed["eventId"], (string?)server["eventId"]);
        Assert.Equal("approved", (string?)server["referral"]!["status"]);
        var events = await app.WithDb(db => db.Events.AsNoTracking().Where(e => e.CampaignId == campaign).ToListAsync());
        Assert.Equal($"sq-{policy}-bob@example.net", Assert.Single(events, e => e.OrderId == $"SQ-{policy}").Email);
        Assert.Null(Assert.Single(events, e => e.Id == (string?)claimed["eventId"]).OrderId);
        // The browser's claim stays as it was: held, never confirmed by another person's purchase.
        Assert.Empty(await _admin.RewardList($"participantId={squatterId}&status=issued"));
        var held = await app.WithDb(db => db.Referrals.AsNoTracking().SingleAsync(r => r.AdvocateId == squatterId));
        Assert.NotEqual("approved", held.Status);
    }

    private async Task<JsonObject> BrowserTrack(string key, string address, object body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events") { Content = JsonContent.Create(body) };
        request.Headers.Add("X-Referloop-Key", key);
        request.Headers.Add(ClientAddress.Header, address);
        request.Headers.UserAgent.ParseAdd("Referloop.Tests");
        var response = await app.CreateAnonymousClient().SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"answered {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }
}
