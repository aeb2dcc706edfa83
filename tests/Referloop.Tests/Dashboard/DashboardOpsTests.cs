using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Referloop.Dashboard.Analytics;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Dashboard;

/// <summary>Referrals, rewards, coupon pools and analytics pages, driven as a browser posts forms.</summary>
public class DashboardOpsTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task Every_page_explains_what_to_do_when_it_is_empty()
    {
        await using var fresh = new ReferloopApp();
        await fresh.InitializeAsync();
        var client = await DashboardClient.SignedIn(fresh);

        Assert.Contains("No referrals yet", await client.Page("/admin/referrals"));
        Assert.Contains("No rewards yet", await client.Page("/admin/rewards"));
        Assert.Contains("No campaign yet", await client.Page("/admin/coupon-pools"));
        Assert.Contains("Nothing to measure yet", await client.Page("/admin/analytics"));
    }

    [Fact]
    public async Task The_events_page_lists_what_the_shop_reported_with_its_source_and_result()
    {
        var (campaign, _) = await _admin.Campaign(EngineKit.AdvocateTenDollars, new { name = "Events page" });
        var (_, code) = await _admin.Advocate(campaign, "evp-ann@example.com");
        var tracked = await _admin.Track(campaign, "purchase", "evp-bob@example.net", code, orderId: "EVP-1", purchaseValue: 20);
        await _admin.Track(campaign, "signup", "evp-nobody@example.net");
        var client = await DashboardClient.SignedIn(app);

        var html = await client.Page($"/admin/events?campaign={campaign}");
        var purchases = await client.Page($"/admin/events?campaign={campaign}&type=purchase");

        Assert.Contains($"data-event=\"{(string)tracked["eventId"]!}\"", html);
        Assert.Contains("EVP-1", html);
        Assert.Contains("referral approved", html);
        Assert.Contains("not attributed: ", html);
        Assert.Contains($"href=\"/admin/referrals/{(string)tracked["referral"]!["id"]!}\"", html);
        Assert.DoesNotContain("evp-nobody@example.net", purchases);
    }

    [Fact]
    public async Task The_status_filter_offers_every_referral_status()
    {
        var client = await DashboardClient.SignedIn(app);
        var html = await client.Page("/admin/referrals");

        foreach (var status in ReferralStatus.All)
        {
            Assert.Contains($"data-status=\"{status}\"", html);
        }
    }

    [Fact]
    public async Task Operator_approves_a_qualified_referral_and_its_reward_is_issued()
    {
        var (campaign, _) = await _admin.Campaign(EngineKit.AdvocateTenDollars, new { approval = "manual" });
        var (advocateId, code) = await _admin.Advocate(campaign);
        var outcome = await _admin.Track(campaign, "purchase", "bob@example.net", code, orderId: "D-1", purchaseValue: 40);
        var referralId = (string)outcome["referral"]!["id"]!;
        var client = await DashboardClient.SignedIn(app);

        var qualified = await client.Page($"/admin/referrals?campaign={campaign}&status=qualified");
        Assert.Contains($"data-referral=\"{referralId}\"", qualified);
        Assert.DoesNotContain($"data-referral=\"{referralId}\"", await client.Page($"/admin/referrals?campaign={campaign}&status=approved"));

        var url = $"/admin/referrals/{referralId}";
        var approved = await client.Submit(url, new() { ["reason"] = "order checked" }, $"{url}?handler=Approve");
        Assert.Equal(HttpStatusCode.Redirect, approved.StatusCode);

        var referral = await app.WithDb(db => db.Referrals.AsNoTracking().SingleAsync(r => r.Id == referralId));
        Assert.Equal(ReferralStatus.Approved, referral.Status);
        Assert.Equal("order checked", referral.Reason);
        var page = await client.Page(url);
        Assert.Contains("id=\"referral-status\">approved<", page);
        Assert.Contains("10 USD rebate", page);
        Assert.Contains("<span class=\"badge issued\">issued</span>", page);

        var participant = await client.Page($"/admin/campaigns/{campaign}/participants/{advocateId}");
        Assert.Contains("bob@example.net", participant);
        Assert.Contains("10 USD rebate", participant);
    }

    [Fact]
    public async Task Operator_qualifies_a_pending_referral_from_its_page()
    {
        var (campaign, _) = await _admin.Campaign(EngineKit.AdvocateTenDollars, new { approval = "manual" });
        var (_, code) = await _admin.Advocate(campaign);
        var outcome = await _admin.Track(campaign, "signup", "quin@example.net", code);
        var referralId = (string)outcome["referral"]!["id"]!;
        var client = await DashboardClient.SignedIn(app);
        var url = $"/admin/referrals/{referralId}";
        Assert.Contains("data-confirm=\"Qualify this referral?", await client.Page(url));

        var qualified = await client.Submit(url, new() { ["reason"] = "paid by transfer" }, $"{url}?handler=Qualify");

        Assert.Equal(HttpStatusCode.Redirect, qualified.StatusCode);
        var referral = await app.WithDb(db => db.Referrals.AsNoTracking().SingleAsync(r => r.Id == referralId));
        Assert.Equal(ReferralStatus.Qualified, referral.Status);
        var page = await client.Page(url);
        Assert.Contains("Referral qualified", page);
        Assert.Contains("paid by transfer", page);
        Assert.DoesNotContain("Qualify referral", page);
    }

    [Fact]
    public async Task Qualifying_a_voided_referral_is_refused_as_the_api_refuses_it()
    {
        var (campaign, _) = await _admin.Campaign(EngineKit.AdvocateTenDollars, new { approval = "manual" });
        var (_, code) = await _admin.Advocate(campaign);
        var outcome = await _admin.Track(campaign, "signup", "vera@example.net", code);
        var referralId = (string)outcome["referral"]!["id"]!;
        var client = await DashboardClient.SignedIn(app);
        var url = $"/admin/referrals/{referralId}";
        (await _admin.PostAsJsonAsync($"/api/v1/referrals/{referralId}/void", new { reason = "duplicate" })).EnsureSuccessStatusCode();
        var api = await _admin.PostAsJsonAsync($"/api/v1/referrals/{referralId}/qualify", new { });
        var problem = await api.Content.ReadFromJsonAsync<System.Text.Json.Nodes.JsonObject>();

        // The voided page offers no form any more: the token is taken from another page, as a stale tab would post.
        var refused = await client.Submit($"/admin/campaigns/{campaign}", new() { ["reason"] = "" }, $"{url}?handler=Qualify");

        Assert.Equal(HttpStatusCode.Conflict, api.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains(WebUtility.HtmlEncode((string)problem!["detail"]!), await refused.Content.ReadAsStringAsync());
        Assert.Contains("id=\"referral-status\">voided<", await client.Page(url));
    }

    [Fact]
    public async Task An_archived_campaign_cannot_be_resumed_from_the_dashboard_any_more_than_through_the_api()
    {
        var (campaign, _) = await _admin.Campaign(EngineKit.AdvocateTenDollars, new { name = "Archived for good" });
        var client = await DashboardClient.SignedIn(app);
        var url = $"/admin/campaigns/{campaign}";
        Assert.Equal(HttpStatusCode.Redirect, (await client.Submit(url, new() { ["status"] = "archived" }, $"{url}?handler=Status")).StatusCode);
        var api = await _admin.PostAsync($"/api/v1/campaigns/{campaign}/resume", null);
        var problem = await api.Content.ReadFromJsonAsync<System.Text.Json.Nodes.JsonObject>();

        var resumed = await client.Submit(url, new() { ["status"] = "active" }, $"{url}?handler=Status");

        Assert.Equal(HttpStatusCode.Conflict, api.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, resumed.StatusCode);
        Assert.Contains(WebUtility.HtmlEncode((string)problem!["detail"]!), await resumed.Content.ReadAsStringAsync());
        Assert.Equal("archived", await app.WithDb(db => db.Campaigns.Where(c => c.Id == campaign).Select(c => c.Status).SingleAsync()));
        Assert.Equal(HttpStatusCode.BadRequest,
            (await client.Submit(url, new() { ["status"] = "deleted" }, $"{url}?handler=Status")).StatusCode);

        // Nobody joins it either, from the dashboard as through the API.
        var joined = await client.Submit(url, new() { ["email"] = "late@example.com" }, $"{url}?handler=Join");
        Assert.Equal(HttpStatusCode.Conflict, joined.StatusCode);
        Assert.Contains("nobody can join it any more", await joined.Content.ReadAsStringAsync());
        Assert.False(await app.WithDb(db => db.Participants.AnyAsync(p => p.CampaignId == campaign && p.Email == "late@example.com")));
    }

    [Fact]
    public async Task Voiding_needs_a_reason_and_blocks_the_rewards()
    {
        var (campaign, _) = await _admin.Campaign(EngineKit.AdvocateTenDollars, new { approval = "manual" });
        var (_, code) = await _admin.Advocate(campaign);
        var outcome = await _admin.Track(campaign, "purchase", "vic@example.net", code, orderId: "D-2", purchaseValue: 40);
        var referralId = (string)outcome["referral"]!["id"]!;
        var client = await DashboardClient.SignedIn(app);
        var url = $"/admin/referrals/{referralId}";

        var noReason = await client.Submit(url, new() { ["reason"] = " " }, $"{url}?handler=Void");
        Assert.Equal(HttpStatusCode.BadRequest, noReason.StatusCode);
        Assert.Contains("The reason", await noReason.Content.ReadAsStringAsync());

        var voided = await client.Submit(url, new() { ["reason"] = "chargeback" }, $"{url}?handler=Void");
        Assert.Equal(HttpStatusCode.Redirect, voided.StatusCode);
        var page = await client.Page(url);
        Assert.Contains("id=\"referral-status\">voided<", page);
        Assert.Contains("referral voided: chargeback", page);
        Assert.DoesNotContain("Approve referral", page);
    }

    [Fact]
    public async Task Fraud_findings_and_their_reasons_are_shown()
    {
        var (campaign, _) = await _admin.Campaign(EngineKit.AdvocateTenDollars,
            new { fraud = new { selfReferral = false, disposableEmail = false, couponCycling = true, blockedEmails = new[] { "*@blocked.example" } } });
        var (_, code) = await _admin.Advocate(campaign);
        var outcome = await _admin.Track(campaign, "signup", "eve@blocked.example", code);
        var referralId = (string)outcome["referral"]!["id"]!;
        var client = await DashboardClient.SignedIn(app);

        var page = await client.Page($"/admin/referrals/{referralId}");
        Assert.Contains("id=\"referral-status\">voided<", page);
        var finding = Assert.Single(await app.WithDb(db => db.Referrals.AsNoTracking().Where(r => r.Id == referralId).Select(r => r.Findings).SingleAsync()));
        Assert.Contains(finding.Reason, WebUtility.HtmlDecode(page));
        Assert.Contains($"{finding.Check}: {finding.Action}", await client.Page($"/admin/referrals?campaign={campaign}"));
    }

    [Fact]
    public async Task An_issued_reward_is_marked_paid_once()
    {
        var (campaign, _) = await _admin.Campaign(EngineKit.AdvocateTenDollars);
        var (_, code) = await _admin.Advocate(campaign);
        var outcome = await _admin.Track(campaign, "purchase", "pat@example.net", code, orderId: "D-3", purchaseValue: 25);
        var rewardId = (string)outcome.Rewards()[0]!["id"]!;
        var client = await DashboardClient.SignedIn(app);
        var list = $"/admin/rewards?campaign={campaign}&paid=unpaid";
        Assert.Contains($"data-reward=\"{rewardId}\"", await client.Page(list));

        var paid = await client.Submit(list, new() { ["id"] = rewardId }, $"{list}&handler=Paid");
        Assert.Equal(HttpStatusCode.Redirect, paid.StatusCode);

        var reward = await app.WithDb(db => db.Rewards.AsNoTracking().SingleAsync(r => r.Id == rewardId));
        Assert.Equal(app.Clock.GetUtcNow(), reward.PaidAt);
        Assert.DoesNotContain($"data-reward=\"{rewardId}\"", await client.Page(list));
        Assert.Contains($"data-reward=\"{rewardId}\"", await client.Page($"/admin/rewards?campaign={campaign}&paid=paid"));
    }

    [Fact]
    public async Task Codes_are_uploaded_pasted_or_as_a_file_and_the_stock_shows()
    {
        var (campaign, _) = await _admin.Campaign(
            [new { recipient = "friend", trigger = "invited", kind = "standard", incentive = new { type = "discount_coupon", pool = "welcome10" } }]);
        var client = await DashboardClient.SignedIn(app);
        var pools = $"/admin/coupon-pools?campaign={campaign}";
        Assert.Contains("data-pool=\"welcome10\"", await client.Page(pools));

        var pasted = await client.Submit(pools, new() { ["pool"] = "welcome10", ["codes"] = "code\nW-1\nW-2\nW-2\n" }, $"{pools}&handler=Upload");
        Assert.Equal(HttpStatusCode.Redirect, pasted.StatusCode);

        var html = await client.Page(pools);
        var token = System.Text.RegularExpressions.Regex.Match(html, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
        using var form = new MultipartFormDataContent
        {
            { new StringContent(WebUtility.HtmlDecode(token)), "__RequestVerificationToken" },
            { new StringContent("welcome10"), "pool" },
        };
        var file = new ByteArrayContent("W-2\r\nW-3\r\n\"W-4\",note\r\n"u8.ToArray());
        file.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        form.Add(file, "file", "codes.csv");
        var uploaded = await client.Http.PostAsync($"{pools}&handler=Upload", form);
        Assert.Equal(HttpStatusCode.Redirect, uploaded.StatusCode);

        var codes = await app.WithDb(db => db.Coupons.AsNoTracking().Where(c => db.CouponPools.Any(p => p.Id == c.PoolId && p.CampaignId == campaign))
            .OrderBy(c => c.Code).Select(c => c.Code).ToListAsync());
        Assert.Equal(["W-1", "W-2", "W-3", "W-4"], codes);
        Assert.Contains("<td data-label=\"Available\" class=\"num\" data-stock=\"available\">4</td>", await client.Page(pools));

        var bad = await client.Submit(pools, new() { ["pool"] = "bad name!", ["codes"] = "X-1" }, $"{pools}&handler=Upload");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("pool must be 1–64 letters", WebUtility.HtmlDecode(await bad.Content.ReadAsStringAsync()));
    }

    [Fact]
    public async Task Analytics_count_the_funnel_revenue_and_advocates_of_a_campaign_and_period()
    {
        var (campaign, _) = await _admin.Campaign(EngineKit.AdvocateTenDollars);
        var (_, annCode) = await _admin.Advocate(campaign, "ann@example.com");
        var (_, _) = await _admin.Advocate(campaign, "quiet@example.com", "Quiet");
        var visitor = app.CreateAnonymousClient();
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(HttpStatusCode.Found, (await visitor.GetAsync($"/r/{annCode}")).StatusCode);
        }
        await _admin.Track(campaign, "signup", "f1@example.net", annCode);
        await _admin.Track(campaign, "signup", "f2@example.net", annCode);
        await _admin.Track(campaign, "signup", "f3@example.net", annCode);
        await _admin.Track(campaign, "purchase", "f1@example.net", orderId: "A-1", purchaseValue: 40.10m);
        await _admin.Track(campaign, "purchase", "f2@example.net", orderId: "A-2", purchaseValue: 59.95m);

        var report = await app.WithDb(db =>
            new CampaignAnalytics(db, app.Clock).ReportAsync(campaign, AnalyticsPeriod.Parse("30d"), CancellationToken.None));
        Assert.Equal(new Funnel(4, 3, 2, 2), report.Funnel);
        Assert.Equal(1.0, report.Funnel.KFactor);
        Assert.Equal(new Revenue("USD", 100.05m, 2), Assert.Single(report.Revenue));
        var top = Assert.Single(report.TopAdvocates);
        Assert.Equal(("ann@example.com", 3, 2), (top.Email, top.SignUps, top.Conversions));

        var client = await DashboardClient.SignedIn(app);
        var page = await client.Page($"/admin/analytics?campaign={campaign}&period=7d");
        Assert.Contains("data-figure=\"clicks\">4<", page);
        Assert.Contains("data-figure=\"conversion-rate\">66.7 %<", page);
        Assert.Contains("data-figure=\"revenue-USD\">100.05<", page);
        Assert.Contains("role=\"img\"", page);
        Assert.Contains("<title id=\"funnel-title\">", page);

        app.Clock.Advance(TimeSpan.FromDays(8));
        client = await DashboardClient.SignedIn(app); // the sign-in cookie lasts 12 hours
        var later = await client.Page($"/admin/analytics?campaign={campaign}&period=7d");
        Assert.Contains("data-figure=\"clicks\">0<", later);
        Assert.Contains("data-figure=\"clicks\">4<", await client.Page($"/admin/analytics?campaign={campaign}&period=all"));
    }

    [Fact]
    public async Task Webhook_success_rate_and_latency_come_from_the_delivery_attempts()
    {
        var (campaign, _) = await _admin.Campaign(EngineKit.AdvocateTenDollars);
        var now = app.Clock.GetUtcNow();
        await app.WithDb(async db =>
        {
            // Disabled and already dispatched, so the delivery engine leaves these rows alone.
            db.WebhookEndpoints.Add(new WebhookEndpoint
            {
                Id = "whe_dash",
                Url = "https://hooks.example/referloop",
                Format = WebhookFormat.Json,
                Secret = "whsec_dash",
                Enabled = false,
                EventTypes = ["none.such"],
                CreatedAt = now,
                UpdatedAt = now,
            });
            db.Outbox.Add(new OutboxMessage { Id = "msg_dash", Type = EventTypes.ReferralCreated, CampaignId = campaign, Data = "{}", CreatedAt = now, DispatchedAt = now });
            db.WebhookDeliveries.Add(new WebhookDelivery
            {
                Id = "dlv_dash",
                MessageId = "msg_dash",
                EndpointId = "whe_dash",
                Status = DeliveryStatus.Succeeded,
                Attempts = 4,
                NextAttemptAt = now,
                CreatedAt = now,
                UpdatedAt = now,
                CompletedAt = now,
            });
            (int? Code, long Ms)[] attempts = [(500, 100), (null, 200), (200, 300), (204, 400)];
            for (var i = 0; i < attempts.Length; i++)
            {
                db.WebhookAttempts.Add(new WebhookAttempt
                {
                    Id = $"wha_dash{i}",
                    DeliveryId = "dlv_dash",
                    EndpointId = "whe_dash",
                    Number = i + 1,
                    RequestId = $"req_dash{i}",
                    Method = "POST",
                    Url = "https://hooks.example/referloop",
                    StatusCode = attempts[i].Code,
                    LatencyMs = attempts[i].Ms,
                    AttemptedAt = now,
                });
            }
            return await db.SaveChangesAsync();
        });

        var report = await app.WithDb(db =>
            new CampaignAnalytics(db, app.Clock).ReportAsync(campaign, AnalyticsPeriod.Parse("7d"), CancellationToken.None));
        Assert.Equal(new WebhookHealth(4, 2, 250, 400), report.Webhooks);
        Assert.Equal(0.5, report.Webhooks.SuccessRate);

        var client = await DashboardClient.SignedIn(app);
        Assert.Contains("data-figure=\"webhook-success\">50 %<", await client.Page($"/admin/analytics?campaign={campaign}&period=7d"));
    }
}
