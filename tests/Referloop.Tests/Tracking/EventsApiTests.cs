using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Tracking;

public class EventsApiTests(EngineApp app) : IClassFixture<EngineApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private static readonly object[] TenDollarsPerConversion =
    [
        new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) },
    ];

    [Fact]
    public async Task A_purchase_with_the_advocates_code_answers_202_with_the_approved_referral_and_the_issued_reward()
    {
        var (campaign, _) = await _admin.Campaign(TenDollarsPerConversion);
        var (advocateId, code) = await _admin.Advocate(campaign);

        var outcome = await _admin.PostOk("/api/v1/events", new
        {
            campaignId = campaign,
            type = "purchase",
            email = "Bob@Example.net",
            name = "Bob Stone",
            referralCode = code,
            orderId = "ORD-1001",
            purchaseValue = 120.5,
            currency = "usd",
            ip = "198.51.100.20",
            properties = new { plan = "pro" },
        }, HttpStatusCode.Accepted);

        Assert.StartsWith("evt_", (string)outcome["eventId"]!);
        Assert.False((bool)outcome["duplicate"]!);
        Assert.True((bool)outcome["attributed"]!);
        Assert.Equal("referral_code", (string?)outcome["attributedBy"]);
        Assert.Equal("approved", (string?)outcome["referral"]!["status"]);
        Assert.Equal(advocateId, (string?)outcome["referral"]!["advocateId"]);
        var reward = Assert.Single(outcome.Rewards())!;
        Assert.Equal("advocate", (string?)reward["recipient"]);
        Assert.Equal("issued", (string?)reward["status"]);
        Assert.Null(reward["reason"]);
        Assert.Equal("rebate", (string?)reward["incentive"]!["type"]);
        Assert.Equal(10m, (decimal)reward["incentive"]!["amount"]!);
        Assert.Equal("USD", (string?)reward["incentive"]!["currency"]);
        Assert.Equal("success", (string?)outcome["conversion"]!["status"]);
        Assert.Equal(1, (int)outcome["conversion"]!["referrerConverts"]!);

        var stored = await app.WithDb(db => db.Events.AsNoTracking().SingleAsync(e => e.Id == (string)outcome["eventId"]!));
        Assert.Equal("bob@example.net", stored.Email);
        Assert.Equal("USD", stored.Currency);
        Assert.Equal(120.5m, stored.PurchaseValue);
        Assert.Contains("\"plan\":\"pro\"", stored.Properties);
    }

    [Fact]
    public async Task Retrying_a_purchase_with_the_same_order_id_is_a_duplicate_and_counts_nothing_twice()
    {
        var (campaign, _) = await _admin.Campaign(TenDollarsPerConversion);
        var (advocateId, code) = await _admin.Advocate(campaign);

        var first = await _admin.Track(campaign, "purchase", "bob@example.net", code, orderId: "ORD-7", purchaseValue: 50);
        var again = await _admin.Track(campaign, "purchase", "bob@example.net", code, orderId: "ORD-7", purchaseValue: 50);

        Assert.True((bool)again["duplicate"]!);
        Assert.Equal((string)first["eventId"]!, (string)again["eventId"]!);
        Assert.Equal(first.Rewards()[0]!["id"]!.ToString(), again.Rewards()[0]!["id"]!.ToString());
        Assert.Single(await _admin.RewardList($"participantId={advocateId}"));
        Assert.Equal(1, await app.WithDb(db => db.Events.CountAsync(e => e.CampaignId == campaign)));
    }

    [Fact]
    public async Task Retrying_with_the_same_idempotency_key_is_a_duplicate()
    {
        var (campaign, _) = await _admin.Campaign(TenDollarsPerConversion);
        var (_, code) = await _admin.Advocate(campaign);

        async Task<JsonObject> Send()
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events")
            {
                Content = JsonContent.Create(new { campaignId = campaign, type = "signup", email = "carl@example.net", referralCode = code }),
            };
            request.Headers.Add("Idempotency-Key", "signup-carl-1");
            var response = await _admin.SendAsync(request);
            response.EnsureStatus(HttpStatusCode.Accepted);
            return await response.ReadJson();
        }

        var first = await Send();
        var second = await Send();

        Assert.False((bool)first["duplicate"]!);
        Assert.True((bool)second["duplicate"]!);
        Assert.Equal((string)first["eventId"]!, (string)second["eventId"]!);
        Assert.Equal(1, await app.WithDb(db => db.Referrals.CountAsync(r => r.CampaignId == campaign)));
    }

    [Fact]
    public async Task An_idempotency_key_reused_for_another_event_is_refused_with_422()
    {
        var (campaign, publishableKey) = await _admin.Campaign(TenDollarsPerConversion);
        var (_, code) = await _admin.Advocate(campaign);

        async Task<HttpResponseMessage> Send(HttpClient client, object body)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events") { Content = JsonContent.Create(body) };
            request.Headers.Add("Idempotency-Key", "order-dave-1");
            return await client.SendAsync(request);
        }

        (await Send(_admin, new { campaignId = campaign, type = "signup", email = "dave@example.net", referralCode = code }))
            .EnsureStatus(HttpStatusCode.Accepted);
        var other = await Send(_admin, new { campaignId = campaign, type = "signup", email = "erin@example.net", referralCode = code });

        Assert.Equal(HttpStatusCode.UnprocessableEntity, other.StatusCode);
        Assert.Contains("different", (string)(await other.ReadJson())["errors"]!["Idempotency-Key"]![0]!);
        Assert.False(await app.WithDb(db => db.Events.AnyAsync(e => e.CampaignId == campaign && e.Email == "erin@example.net")));

        // A browser's keys are the campaign's; the same key with the browser's own body is a different request there too.
        var browser = app.CreateAnonymousClient();
        (await Send(browser, new { publishableKey, type = "signup", email = "fay@example.net" })).EnsureStatus(HttpStatusCode.Accepted);
        var browserAgain = await Send(browser, new { publishableKey, type = "signup", email = "gil@example.net" });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, browserAgain.StatusCode);
    }

    [Fact]
    public async Task An_event_nobody_referred_is_recorded_with_the_reason_and_creates_no_referral()
    {
        var (campaign, _) = await _admin.Campaign(TenDollarsPerConversion);

        var outcome = await _admin.Track(campaign, "purchase", "walkin@example.net", orderId: "ORD-9", purchaseValue: 10);

        Assert.False((bool)outcome["attributed"]!);
        Assert.Contains("no referral code", (string?)outcome["reason"]);
        Assert.Null(outcome["referral"]);
        Assert.Empty(outcome.Rewards());
        Assert.Equal(0, await app.WithDb(db => db.Participants.CountAsync(p => p.CampaignId == campaign)));
    }

    [Fact]
    public async Task Invalid_events_name_each_bad_field()
    {
        var (campaign, _) = await _admin.Campaign(TenDollarsPerConversion);

        var response = await _admin.PostAsJsonAsync("/api/v1/events", new
        {
            campaignId = campaign,
            type = "",
            email = "not-an-email",
            purchaseValue = -1,
            currency = "dollars",
            ip = "999.1.1.1",
        });

        await response.AssertValidationProblem("type", "email", "purchaseValue", "currency", "ip");
        var noCampaign = await _admin.PostAsJsonAsync("/api/v1/events", new { type = "signup", email = "a@example.net" });
        await noCampaign.AssertValidationProblem("campaignId");
        var future = await _admin.PostAsJsonAsync("/api/v1/events", new
        {
            campaignId = campaign,
            type = "signup",
            email = "a@example.net",
            occurredAt = app.Clock.GetUtcNow().AddHours(1),
        });
        await future.AssertValidationProblem("occurredAt");
        var unknown = await _admin.PostAsJsonAsync("/api/v1/events", new { campaignId = "cmp_nope", type = "signup", email = "a@example.net" });
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Without_an_admin_or_publishable_key_the_events_api_answers_401()
    {
        var (campaign, _) = await _admin.Campaign(TenDollarsPerConversion);
        var anonymous = app.CreateAnonymousClient();

        var none = await anonymous.PostAsJsonAsync("/api/v1/events", new { campaignId = campaign, type = "signup", email = "a@example.net" });
        var wrong = await anonymous.PostAsJsonAsync("/api/v1/events",
            new { campaignId = campaign, publishableKey = "pk_wrong", type = "signup", email = "a@example.net" });

        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal("application/problem+json", wrong.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task The_publishable_key_lets_a_shop_page_report_events_across_origins()
    {
        var (campaign, publishableKey) = await _admin.Campaign(TenDollarsPerConversion);
        var (_, code) = await _admin.Advocate(campaign);
        var browser = app.CreateAnonymousClient();

        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/api/v1/events");
        preflight.Headers.Add("Origin", "https://shop.example.com");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "content-type,x-referloop-key");
        var allowed = await browser.SendAsync(preflight);
        Assert.True(allowed.IsSuccessStatusCode, $"preflight answered {(int)allowed.StatusCode}");
        Assert.Equal("*", allowed.Headers.GetValues("Access-Control-Allow-Origin").Single());

        using var post = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events")
        {
            Content = JsonContent.Create(new { type = "purchase", email = "dora@example.net", referralCode = code, orderID = "W-1", purchaseValue = 30 }),
        };
        post.Headers.Add("Origin", "https://shop.example.com");
        post.Headers.Add("X-Referloop-Key", publishableKey);
        post.Headers.UserAgent.ParseAdd("Mozilla/5.0 (Shop)");
        var response = await browser.SendAsync(post);

        response.EnsureStatus(HttpStatusCode.Accepted);
        Assert.Equal("*", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        var outcome = await response.ReadJson();
        Assert.Equal("approved", (string?)outcome["referral"]!["status"]);
        Assert.Null(outcome["referral"]!["advocateId"]);
        Assert.Empty(outcome.Rewards()); // the advocate's reward is not the browser's business
        var stored = await app.WithDb(db => db.Events.AsNoTracking().SingleAsync(e => e.Id == (string)outcome["eventId"]!));
        Assert.Equal("W-1", stored.OrderId);
        Assert.Equal("Mozilla/5.0 (Shop)", stored.UserAgent);
        Assert.Single(await _admin.RewardList($"campaignId={campaign}&status=issued"));
    }

    [Fact]
    public async Task The_tracking_snippet_is_served_as_javascript_and_reports_with_the_click_id()
    {
        var response = await app.CreateAnonymousClient().GetAsync("/js/referloop.js");

        response.EnsureStatus(HttpStatusCode.OK);
        Assert.Equal("text/javascript", response.Content.Headers.ContentType?.MediaType);
        var script = await response.Content.ReadAsStringAsync();
        Assert.Contains("X-Referloop-Key", script);
        Assert.Contains("rl_click", script);
        Assert.Contains("orderID", script);
        Assert.Contains("purchaseValue", script);
        Assert.Contains("/api/v1/events", script);
    }
}
