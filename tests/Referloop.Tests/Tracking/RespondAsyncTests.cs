using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Tests.Support;
using Referloop.Tracking;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Tracking;

/// <summary>
/// <c>Prefer: respond-async</c> on <c>POST /api/v1/events</c>: the answer waits only until the event itself is durable;
/// processing follows with the same event id, exactly once, and survives a restart.
/// </summary>
public class RespondAsyncTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private static readonly object[] AdvocateRebate =
    [
        new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) },
    ];

    private async Task<HttpResponseMessage> PostAsync(object body, string prefer = "respond-async", string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events") { Content = JsonContent.Create(body) };
        request.Headers.Add("Prefer", prefer);
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        return await _admin.SendAsync(request);
    }

    private async Task<JsonObject> ProcessedAsync(string eventId)
    {
        JsonObject read = [];
        await Eventually(async () =>
        {
            read = await _admin.GetOk($"/api/v1/events/{eventId}");
            return (string?)read["status"] == "processed";
        }, $"event {eventId} is processed");
        return read;
    }

    [Fact]
    public async Task An_accepted_purchase_is_answered_with_its_id_and_processed_like_a_synchronous_one()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateRebate, new { fraud = new { selfReferral = false, disposableEmail = false } });
        var (_, code) = await _admin.Advocate(campaign, "async-ann@example.com");

        var response = await PostAsync(new
        {
            campaignId = campaign,
            type = "purchase",
            email = "async-bob@example.net",
            referralCode = code,
            orderId = "AS-1",
            purchaseValue = 40m,
            currency = "USD",
        });

        response.EnsureStatus(HttpStatusCode.Accepted);
        Assert.Equal("respond-async", Assert.Single(response.Headers.GetValues("Preference-Applied")));
        var accepted = await response.ReadJson();
        var eventId = (string)accepted["eventId"]!;
        Assert.Equal(new Uri($"/api/v1/events/{eventId}", UriKind.Relative), response.Headers.Location);
        Assert.False((bool)accepted["duplicate"]!);
        Assert.Equal("pending", (string?)accepted["status"]);

        var read = await ProcessedAsync(eventId);
        Assert.Equal("AS-1", (string?)read["orderId"]);
        Assert.Equal(eventId, (string?)read["outcome"]!["eventId"]);
        Assert.True((bool)read["outcome"]!["attributed"]!);
        Assert.Equal("approved", (string?)read["outcome"]!["referral"]!["status"]);
        Assert.Equal("issued", (string?)read["outcome"]!["rewards"]![0]!["status"]);
        Assert.Contains(await app.Messages(campaign), m => m.Type == "reward.issued");
        Assert.Equal(0, await app.WithDb(db => db.Inbox.CountAsync(e => e.CampaignId == campaign)));

        // The synchronous answer to a retry is the processed outcome, as a repeat.
        var again = await _admin.PostOk("/api/v1/events", new
        {
            campaignId = campaign,
            type = "purchase",
            email = "async-bob@example.net",
            referralCode = code,
            orderId = "AS-1",
            purchaseValue = 40m,
            currency = "USD",
        }, HttpStatusCode.Accepted);
        Assert.Equal(eventId, (string?)again["eventId"]);
        Assert.True((bool)again["duplicate"]!);
    }

    [Fact]
    public async Task A_retry_of_an_accepted_event_answers_the_first_id_whether_it_waits_or_was_processed()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateRebate);
        var waiting = await app.WaitingEvent(campaign, "key-bob@example.net", orderId: null, idempotencyKey: "K-1");

        var retry = await (await PostAsync(new { campaignId = campaign, type = "signup", email = "key-bob@example.net" },
            idempotencyKey: "K-1")).ReadJson();
        Assert.Equal(waiting, (string?)retry["eventId"]);
        Assert.True((bool)retry["duplicate"]!);
        Assert.Equal("pending", (string?)retry["status"]);

        var first = await (await PostAsync(new { campaignId = campaign, type = "purchase", email = "o-bob@example.net", orderId = "AS-2" }))
            .ReadJson();
        await ProcessedAsync((string)first["eventId"]!);
        var second = await (await PostAsync(new { campaignId = campaign, type = "purchase", email = "o-bob@example.net", orderId = "AS-2" }))
            .ReadJson();
        Assert.Equal((string?)first["eventId"], (string?)second["eventId"]);
        Assert.True((bool)second["duplicate"]!);
        Assert.Equal("processed", (string?)second["status"]);
    }

    [Fact]
    public async Task Events_left_waiting_by_a_stop_are_processed_once_by_the_recovery()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateRebate, new { fraud = new { selfReferral = false, disposableEmail = false } });
        var (_, code) = await _admin.Advocate(campaign, "rec-ann@example.com");
        var eventId = await app.WaitingEvent(campaign, "rec-bob@example.net", orderId: "AS-3", referralCode: code);

        var pending = await _admin.GetOk($"/api/v1/events/{eventId}");
        Assert.Equal("pending", (string?)pending["status"]);
        Assert.Null(pending["outcome"]);
        Assert.Equal("rec-bob@example.net", (string?)pending["email"]);

        var inbox = app.Services.GetRequiredService<EventInbox>();
        Assert.Equal(1, await inbox.RecoverAsync(TimeSpan.Zero, CancellationToken.None));
        var read = await ProcessedAsync(eventId);

        Assert.Equal("approved", (string?)read["outcome"]!["referral"]!["status"]);
        Assert.Single(await app.Messages(campaign), m => m.Type == "reward.issued");
        Assert.Equal(1, await app.WithDb(db => db.Events.CountAsync(e => e.CampaignId == campaign && e.OrderId == "AS-3")));
        Assert.Equal(0, await inbox.RecoverAsync(TimeSpan.Zero, CancellationToken.None));
    }

    [Fact]
    public async Task A_waiting_event_whose_body_no_longer_reads_is_kept_and_the_ones_behind_it_are_recovered()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateRebate);
        var unreadable = await app.WaitingEvent(campaign, "bad-bob@example.net", orderId: "AS-8");
        await app.WithDb(db => db.Inbox.Where(e => e.Id == unreadable).ExecuteUpdateAsync(s => s.SetProperty(e => e.Request, "{\"type\": 7")));
        var behind = await app.WaitingEvent(campaign, "bad-cy@example.net", orderId: "AS-9");

        var inbox = app.Services.GetRequiredService<EventInbox>();
        Assert.Equal(1, await inbox.RecoverAsync(TimeSpan.Zero, CancellationToken.None));

        await ProcessedAsync(behind);
        Assert.Equal(1, await app.WithDb(db => db.Inbox.CountAsync(e => e.Id == unreadable)));
        await app.WithDb(db => db.Inbox.Where(e => e.Id == unreadable).ExecuteDeleteAsync());
    }

    [Fact]
    public async Task An_accepted_event_processed_later_happened_when_it_was_accepted()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateRebate);
        var acceptedAt = app.Clock.GetUtcNow();
        var eventId = await app.WaitingEvent(campaign, "late-bob@example.net", orderId: "AS-10");
        app.Clock.Advance(TimeSpan.FromHours(5));

        await app.Services.GetRequiredService<EventInbox>().RecoverAsync(TimeSpan.Zero, CancellationToken.None);

        var read = await ProcessedAsync(eventId);
        Assert.Equal(acceptedAt, (DateTimeOffset)read["occurredAt"]!);
        Assert.Equal(acceptedAt, await app.WithDb(db => db.Events.Where(e => e.Id == eventId).Select(e => e.OccurredAt).SingleAsync()));
    }

    [Fact]
    public async Task An_accepted_event_run_twice_as_two_instances_might_is_processed_once()
    {
        var (campaignId, _) = await _admin.Campaign(AdvocateRebate, new { fraud = new { selfReferral = false, disposableEmail = false } });
        var (_, code) = await _admin.Advocate(campaignId, "twice-ann@example.com");
        var eventId = await app.WaitingEvent(campaignId, "twice-bob@example.net", orderId: "AS-4", referralCode: code);
        var campaign = await app.WithDb(db => db.Campaigns.AsNoTracking().SingleAsync(c => c.Id == campaignId));
        var input = new TrackEvent { CampaignId = campaignId, Type = "purchase", Email = "twice-bob@example.net", OrderId = "AS-4", ReferralCode = code };
        var ingest = app.Services.GetRequiredService<Referloop.Referrals.EventIngest>();
        Referloop.Referrals.TrackRequest Request() => new(campaign, input, null, null, null, "server", eventId, app.Clock.GetUtcNow());

        var outcomes = await Task.WhenAll(ingest.TrackAsync(Request()), ingest.TrackAsync(Request()));

        Assert.All(outcomes, o => Assert.Equal(eventId, o.EventId));
        Assert.Single(outcomes, o => !o.Duplicate);
        Assert.Single(await app.Messages(campaignId), m => m.Type == "reward.issued");
        Assert.Equal(0, await app.WithDb(db => db.Inbox.CountAsync(e => e.Id == eventId)));
    }

    [Fact]
    public async Task A_synchronous_report_of_a_waiting_order_has_the_accepted_event_processed_and_answers_its_id()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateRebate, new { fraud = new { selfReferral = false, disposableEmail = false } });
        var (_, code) = await _admin.Advocate(campaign, "adopt-ann@example.com");
        var waiting = await app.WaitingEvent(campaign, "adopt-bob@example.net", orderId: "AS-6", referralCode: code);

        var repeat = await _admin.Track(campaign, "purchase", "adopt-bob@example.net", orderId: "AS-6");

        Assert.Equal(waiting, (string?)repeat["eventId"]);
        Assert.True((bool)repeat["duplicate"]!);
        Assert.Equal("approved", (string?)repeat["referral"]!["status"]);
        var read = await _admin.GetOk($"/api/v1/events/{waiting}");
        Assert.Equal("processed", (string?)read["status"]);
        Assert.Equal(code, (string?)read["referralCode"]);
        Assert.Equal(0, await app.WithDb(db => db.Inbox.CountAsync(e => e.Id == waiting)));
        Assert.Equal(1, await app.WithDb(db => db.Events.CountAsync(e => e.CampaignId == campaign && e.OrderId == "AS-6")));
        Assert.Single(await app.Messages(campaign), m => m.Type == "reward.issued");

        // The accepted event, still in this instance's hands or another's, finds itself processed.
        var campaignRow = await app.WithDb(db => db.Campaigns.AsNoTracking().SingleAsync(c => c.Id == campaign));
        var input = new TrackEvent { CampaignId = campaign, Type = "purchase", Email = "adopt-bob@example.net", OrderId = "AS-6", ReferralCode = code };
        var again = await app.Services.GetRequiredService<Referloop.Referrals.EventIngest>()
            .TrackAsync(new(campaignRow, input, null, null, null, "server", waiting, app.Clock.GetUtcNow()));
        Assert.Equal(waiting, again.EventId);
        Assert.True(again.Duplicate);
        Assert.Single(await app.Messages(campaign), m => m.Type == "reward.issued");
    }

    // Whether or not the batch reads what its events repeat first: not read, the events' insert finds the waiting one.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Two_requests_of_one_batch_that_repeat_the_same_waiting_event_have_it_processed_once(bool lookForRepeats)
    {
        var (campaignId, _) = await _admin.Campaign(AdvocateRebate, new { fraud = new { selfReferral = false, disposableEmail = false } });
        var (_, code) = await _admin.Advocate(campaignId, "adopt-eve@example.com");
        var waiting = await app.WaitingEvent(campaignId, "adopt-fay@example.net", orderId: "AS-11", idempotencyKey: "K-11", referralCode: code);
        var campaign = await app.WithDb(db => db.Campaigns.AsNoTracking().SingleAsync(c => c.Id == campaignId));
        // One by its order id, the other by its key: the batch keeps requests apart by their own keys only.
        Referloop.Referrals.TrackRequest Purchase(string orderId, string? key) => new(campaign,
            new TrackEvent { CampaignId = campaignId, Type = "purchase", Email = $"{orderId}@example.net", OrderId = orderId }, key, null, null, "server");

        await using var scope = app.Services.CreateAsyncScope();
        var outcomes = await scope.ServiceProvider.GetRequiredService<Referloop.Referrals.ReferralEngine>()
            .TrackAsync([Purchase("AS-11", null), Purchase("AS-12", "K-11")], CancellationToken.None, lookForRepeats);

        Assert.All(outcomes, o => Assert.Equal(waiting, o.EventId));
        Assert.All(outcomes, o => Assert.True(o.Duplicate));
        Assert.Equal([waiting], await app.WithDb(db => db.Events.Where(e => e.CampaignId == campaignId).Select(e => e.Id).ToListAsync()));
        Assert.Single(await app.Messages(campaignId), m => m.Type == "reward.issued");
    }

    [Fact]
    public async Task A_servers_report_of_an_order_a_browser_reported_and_that_still_waits_confirms_it()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateRebate,
            new { fraud = new { selfReferral = false, disposableEmail = false, browserConversions = "confirm" } });
        var (_, code) = await _admin.Advocate(campaign, "adopt-cy@example.com");
        var waiting = await app.WaitingEvent(campaign, "adopt-dan@example.net", orderId: "AS-7", referralCode: code, source: "browser");

        var confirmation = await _admin.Track(campaign, "purchase", "adopt-dan@example.net", orderId: "AS-7");

        Assert.Equal(waiting, (string?)confirmation["eventId"]);
        Assert.False((bool)confirmation["duplicate"]!);
        Assert.Equal("approved", (string?)confirmation["referral"]!["status"]);
        Assert.Equal("server", await app.WithDb(db => db.Events.Where(e => e.Id == waiting).Select(e => e.Source).SingleAsync()));
        Assert.Single(await app.Messages(campaign), m => m.Type == "reward.issued");
    }

    // The server's report of an order a browser reported may confirm that report or take the order from it: only
    // processing can tell, so it is processed at once and answered in full, without the preference applied.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_servers_report_of_an_order_a_browser_reported_is_processed_at_once_and_confirms_it(bool browserWaits)
    {
        var (campaign, key) = await _admin.Campaign(AdvocateRebate,
            new { fraud = new { selfReferral = false, disposableEmail = false, browserConversions = "confirm" } });
        var (advocate, code) = await _admin.Advocate(campaign, $"acnf-ann-{browserWaits}@example.com");
        var browserId = browserWaits
            ? await app.WaitingEvent(campaign, "acnf-bob@example.net", orderId: "AS-20", referralCode: code, source: "browser")
            : (string)(await BrowserPostAsync(key, new { type = "purchase", email = "acnf-bob@example.net", referralCode = code, orderId = "AS-20", purchaseValue = 40 }))["eventId"]!;

        var response = await PostAsync(new { campaignId = campaign, type = "purchase", email = "acnf-bob@example.net", orderId = "AS-20", purchaseValue = 40 });

        response.EnsureStatus(HttpStatusCode.Accepted);
        Assert.False(response.Headers.Contains("Preference-Applied"));
        var outcome = await response.ReadJson();
        Assert.Equal(browserId, (string?)outcome["eventId"]);
        Assert.False((bool)outcome["duplicate"]!);
        Assert.Equal("approved", (string?)outcome["referral"]!["status"]);
        Assert.Equal("issued", (string?)Assert.Single(await _admin.RewardList($"participantId={advocate}"))!["status"]);
        Assert.Equal("server", await app.WithDb(db => db.Events.Where(e => e.Id == browserId).Select(e => e.Source).SingleAsync()));
        Assert.Equal(0, await app.WithDb(db => db.Inbox.CountAsync(e => e.CampaignId == campaign)));

        // Confirmed, the order is the server's: a retry is a repeat again.
        var retry = await (await PostAsync(new { campaignId = campaign, type = "purchase", email = "acnf-bob@example.net", orderId = "AS-20", purchaseValue = 40 }))
            .ReadJson();
        Assert.Equal(new EventAccepted(browserId, true, EventStatus.Processed),
            new EventAccepted((string)retry["eventId"]!, (bool)retry["duplicate"]!, (string)retry["status"]!));
    }

    [Fact]
    public async Task A_servers_report_of_an_order_a_browser_claimed_for_another_person_is_recorded_as_its_own()
    {
        var (campaign, key) = await _admin.Campaign(AdvocateRebate,
            new { fraud = new { selfReferral = false, disposableEmail = false, browserConversions = "review" } });
        var (_, code) = await _admin.Advocate(campaign, "asq-ann@example.com");
        var squat = (string)(await BrowserPostAsync(key, new { type = "purchase", email = "asq-mallory@example.net", referralCode = code, orderId = "AS-21", purchaseValue = 40 }))["eventId"]!;

        var response = await PostAsync(new { campaignId = campaign, type = "purchase", email = "asq-bob@example.net", orderId = "AS-21", purchaseValue = 40 });

        Assert.False(response.Headers.Contains("Preference-Applied"));
        var outcome = await response.ReadJson();
        Assert.NotEqual(squat, (string?)outcome["eventId"]);
        Assert.False((bool)outcome["duplicate"]!);
        var orders = await app.WithDb(db => db.Events.Where(e => e.CampaignId == campaign).ToDictionaryAsync(e => e.Id, e => e.OrderId));
        Assert.Equal("AS-21", orders[(string)outcome["eventId"]!]);
        Assert.Null(orders[squat]);
    }

    private async Task<JsonObject> BrowserPostAsync(string key, object body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events") { Content = JsonContent.Create(body) };
        request.Headers.Add("X-Referloop-Key", key);
        var response = await app.CreateAnonymousClient().SendAsync(request);
        response.EnsureStatus(HttpStatusCode.Accepted);
        return await response.ReadJson();
    }

    // Two instances may record the same order at once: one accepting it while the other records a synchronous report.
    [Fact]
    public async Task An_accepted_event_whose_order_was_recorded_meanwhile_reads_as_answered_by_that_event()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateRebate, new { fraud = new { selfReferral = false, disposableEmail = false } });
        var (_, code) = await _admin.Advocate(campaign, "race-ann@example.com");
        var recorded = await _admin.Track(campaign, "purchase", "race-bob@example.net", code, orderId: "AS-30");
        // Under another address: the answer names the recorded event's friend, whom the body does not.
        var accepted = await app.WaitingEvent(campaign, "race-other@example.net", orderId: "AS-30", idempotencyKey: "K-30", referralCode: code);

        await app.Services.GetRequiredService<EventInbox>().RecoverAsync(TimeSpan.Zero, CancellationToken.None);

        var read = await ProcessedAsync(accepted);
        Assert.Equal(accepted, (string?)read["id"]);
        Assert.Equal("AS-30", (string?)read["orderId"]);
        Assert.Equal("K-30", (string?)read["idempotencyKey"]);
        Assert.Equal((string?)recorded["eventId"], (string?)read["outcome"]!["eventId"]);
        Assert.True((bool)read["outcome"]!["duplicate"]!);
        Assert.Equal((string?)recorded["referral"]!["id"], (string?)read["referralId"]);
        Assert.Single(await app.Messages(campaign), m => m.Type == "reward.issued");
        Assert.Equal(1, await app.WithDb(db => db.Events.CountAsync(e => e.CampaignId == campaign && e.Type == "purchase")));

        // Answered, it holds no order: it is not processed again, and the order's next report repeats the recorded event.
        Assert.Equal(0, await app.Services.GetRequiredService<EventInbox>().RecoverAsync(TimeSpan.Zero, CancellationToken.None));
        var again = await (await PostAsync(new { campaignId = campaign, type = "purchase", email = "race-bob@example.net", orderId = "AS-30" }, idempotencyKey: "K-30"))
            .ReadJson();
        Assert.Equal((string?)recorded["eventId"], (string?)again["eventId"]);
        Assert.True((bool)again["duplicate"]!);

        // The erasure of the friend its answer names removes it with the rest.
        var friend = (string)recorded["referral"]!["friendId"]!;
        Assert.Equal(HttpStatusCode.NoContent, (await _admin.DeleteAsync($"/api/v1/campaigns/{campaign}/participants/{friend}")).StatusCode);
        Assert.Equal(0, await app.WithDb(db => db.Inbox.CountAsync(e => e.CampaignId == campaign)));
    }

    [Fact]
    public async Task Without_the_preference_the_answer_carries_the_outcome_and_invalid_events_are_refused_either_way()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateRebate);

        var other = await PostAsync(new { campaignId = campaign, type = "signup", email = "plain@example.net" }, prefer: "return=minimal");
        other.EnsureStatus(HttpStatusCode.Accepted);
        Assert.False(other.Headers.Contains("Preference-Applied"));
        Assert.NotNull((await other.ReadJson())["attributed"]);

        var invalid = await PostAsync(new { campaignId = campaign, type = "signup", email = "not an e-mail" }, prefer: "wait=5, respond-async");
        await invalid.AssertValidationProblem("email");
        Assert.Equal(0, await app.WithDb(db => db.Inbox.CountAsync(e => e.CampaignId == campaign)));
    }

    [Fact]
    public async Task Erasing_a_person_drops_the_events_about_them_that_still_wait()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateRebate);
        var (advocate, _) = await _admin.Advocate(campaign, "era-ann+vip@example.com");
        var other = await app.WaitingEvent(campaign, "era-cy@example.net", orderId: "AS-6");
        // As sent: in another case, and stored JSON-escaped ('+' is \u002B).
        await app.WaitingEvent(campaign, "Era-Ann+VIP@Example.com", orderId: "AS-5");

        Assert.Equal(HttpStatusCode.NoContent, (await _admin.DeleteAsync($"/api/v1/campaigns/{campaign}/participants/{advocate}")).StatusCode);

        Assert.Equal([other], await app.WithDb(db => db.Inbox.Where(e => e.CampaignId == campaign).Select(e => e.Id).ToListAsync()));
    }

    [Fact]
    public async Task An_accepted_event_already_read_when_its_person_is_erased_is_not_processed()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateRebate);
        var (person, _) = await _admin.Advocate(campaign, "era-held@example.net");
        var id = await app.WaitingEvent(campaign, "era-held@example.net", orderId: "AS-HELD");
        // What the inbox's loop holds in memory once it has read the row, before the erasure deletes it.
        var held = await app.WithDb(async db => (await db.Inbox.AsNoTracking().SingleAsync(e => e.Id == id))
            .ToRequest(await db.Campaigns.AsNoTracking().SingleAsync(c => c.Id == campaign)));

        Assert.Equal(HttpStatusCode.NoContent, (await _admin.DeleteAsync($"/api/v1/campaigns/{campaign}/participants/{person}")).StatusCode);
        var outcome = await app.Services.GetRequiredService<Referloop.Referrals.EventIngest>().TrackAsync(held!);

        Assert.Equal(Referloop.Referrals.ReferralEngine.ErasedReason, outcome.Reason);
        Assert.False(await app.WithDb(db => db.Participants.AnyAsync(p => p.CampaignId == campaign)));
        Assert.False(await app.WithDb(db => db.Events.AnyAsync(e => e.Id == id || e.CampaignId == campaign)));
    }

    [Fact]
    public async Task The_document_declares_both_answers_of_the_202()
    {
        var document = await _admin.GetOk("/openapi/v1.json");

        var answer = document["paths"]!["/api/v1/events"]!["post"]!["responses"]!["202"]!;
        var schemas = answer["content"]!["application/json"]!["schema"]!["anyOf"]!.AsArray().Select(s => (string?)s!["$ref"]).ToList();
        Assert.Equal(["#/components/schemas/EventOutcome", "#/components/schemas/EventAccepted"], schemas);
        Assert.NotNull(answer["headers"]!["Preference-Applied"]);
        var accepted = document["components"]!["schemas"]!["EventAccepted"]!;
        Assert.Equal(["duplicate", "eventId", "status"], accepted["required"]!.AsArray().Select(r => (string?)r).Order().ToList());
        Assert.Equal(["processed", "pending"], accepted["properties"]!["status"]!["enum"]!.AsArray().Select(v => (string?)v).ToList());
    }

    /// <summary>An event accepted and left in the inbox, as if the server stopped before it was processed.</summary>
}
