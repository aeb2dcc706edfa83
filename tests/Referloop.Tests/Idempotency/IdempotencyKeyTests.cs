using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Idempotency;

public sealed class IdempotencyApp : EngineApp
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Webhooks:AllowPrivateNetworks"] = "true",
    };
}

/// <summary>Idempotency-Key on the POSTs of /api/v1: one answer per key and request, per API key, for 24 hours.</summary>
public class IdempotencyKeyTests(IdempotencyApp app) : IClassFixture<IdempotencyApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private static async Task<HttpResponseMessage> Post(HttpClient client, string url, object body, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", key);
        return await client.SendAsync(request);
    }

    private static async Task<(HttpStatusCode Status, string Body, bool Replayed)> Answer(HttpResponseMessage response) =>
        (response.StatusCode, await response.Content.ReadAsStringAsync(),
            response.Headers.TryGetValues("Idempotent-Replayed", out var values) && values.Single() == "true");

    private static async Task AssertRefusedForAnotherBody(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, $"expected 422, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(text)!;
        Assert.Contains("different", (string)problem["errors"]!["Idempotency-Key"]![0]!);
        Assert.Contains("new key", (string)problem["detail"]!);
    }

    private async Task<HttpClient> SecondAdminClient()
    {
        var created = await _admin.PostOk("/api/v1/api-keys", new { name = "second " + Guid.NewGuid() });
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (string)created["key"]!);
        return client;
    }

    [Fact]
    public async Task Creating_a_campaign_twice_with_one_key_replays_the_first_answer()
    {
        var key = Guid.NewGuid().ToString();

        var first = await Answer(await Post(_admin, "/api/v1/campaigns", Api.SpringCampaign, key));
        var again = await Post(_admin, "/api/v1/campaigns", Api.SpringCampaign, key);
        var second = await Answer(again);

        Assert.Equal((HttpStatusCode.Created, false), (first.Status, first.Replayed));
        Assert.Equal((HttpStatusCode.Created, first.Body, true), (second.Status, second.Body, second.Replayed));
        Assert.Equal("application/json", again.Content.Headers.ContentType?.MediaType);
        var id = (string)JsonNode.Parse(first.Body)!["id"]!;
        Assert.True(await app.WithDb(db => db.Campaigns.AnyAsync(c => c.Id == id)));
    }

    [Fact]
    public async Task A_key_reused_with_another_body_is_refused_with_422()
    {
        var key = Guid.NewGuid().ToString();
        var campaign = await _admin.CreateCampaign();
        (await Post(_admin, $"/api/v1/campaigns/{campaign}/participants", new { email = "ann@example.com" }, key)).EnsureStatus(HttpStatusCode.Created);

        await AssertRefusedForAnotherBody(await Post(_admin, $"/api/v1/campaigns/{campaign}/participants", new { email = "bob@example.com" }, key));
        await AssertRefusedForAnotherBody(await Post(_admin, "/api/v1/campaigns", Api.SpringCampaign, key));
        Assert.False(await app.WithDb(db => db.Participants.AnyAsync(p => p.CampaignId == campaign && p.Email == "bob@example.com")));
    }

    [Fact]
    public async Task Joining_again_with_the_same_key_replays_and_a_new_key_runs_again()
    {
        var campaign = await _admin.CreateCampaign();
        var body = new { email = "carl@example.com", name = "Carl" };

        var first = await Answer(await Post(_admin, $"/api/v1/campaigns/{campaign}/participants", body, "join-carl"));
        var replayed = await Answer(await Post(_admin, $"/api/v1/campaigns/{campaign}/participants", body, "join-carl"));
        var rerun = await Answer(await Post(_admin, $"/api/v1/campaigns/{campaign}/participants", body, "join-carl-2"));

        Assert.Equal((first.Status, first.Body, true), (replayed.Status, replayed.Body, replayed.Replayed));
        Assert.False(rerun.Replayed);
    }

    [Fact]
    public async Task Approving_a_referral_twice_with_one_key_replays_the_approval()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars, new { approval = "manual" });
        var (_, code) = await _admin.Advocate(campaign);
        var outcome = await _admin.Track(campaign, "purchase", "bob@example.net", code, orderId: "I-1", purchaseValue: 40);
        var referral = (string)outcome["referral"]!["id"]!;

        var first = await Answer(await Post(_admin, $"/api/v1/referrals/{referral}/approve", new { reason = "ok" }, "approve-1"));
        var second = await Answer(await Post(_admin, $"/api/v1/referrals/{referral}/approve", new { reason = "ok" }, "approve-1"));

        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.Equal((HttpStatusCode.OK, first.Body, true), (second.Status, second.Body, second.Replayed));
    }

    [Fact]
    public async Task Keys_belong_to_one_api_key()
    {
        var other = await SecondAdminClient();
        var key = Guid.NewGuid().ToString();
        var endpoint = new { url = "http://127.0.0.1:9/hooks", enabled = false };

        var mine = await Answer(await Post(_admin, "/api/v1/webhook-endpoints", endpoint, key));
        var theirs = await Answer(await Post(other, "/api/v1/webhook-endpoints", endpoint, key));

        Assert.Equal((HttpStatusCode.Created, false), (mine.Status, mine.Replayed));
        Assert.Equal((HttpStatusCode.Created, false), (theirs.Status, theirs.Replayed));
        Assert.NotEqual((string)JsonNode.Parse(mine.Body)!["id"]!, (string)JsonNode.Parse(theirs.Body)!["id"]!);
    }

    [Fact]
    public async Task A_replayed_webhook_endpoint_shows_its_secret_again_but_the_stored_answer_is_encrypted()
    {
        var key = Guid.NewGuid().ToString();
        var endpoint = new { url = "http://127.0.0.1:9/hooks", enabled = false };

        var first = await Answer(await Post(_admin, "/api/v1/webhook-endpoints", endpoint, key));
        var second = await Answer(await Post(_admin, "/api/v1/webhook-endpoints", endpoint, key));

        var secret = (string)JsonNode.Parse(first.Body)!["secret"]!;
        Assert.Equal(secret, (string)JsonNode.Parse(second.Body)!["secret"]!);
        var stored = await app.WithDb(db => db.IdempotencyKeys.AsNoTracking().SingleAsync(r => r.Key == key));
        Assert.DoesNotContain(secret, stored.ResponseBody);
        Assert.Equal(201, stored.StatusCode);
    }

    [Fact]
    public async Task Keys_expire_after_24_hours_and_are_purged()
    {
        var key = Guid.NewGuid().ToString();
        var campaign = await _admin.CreateCampaign();
        (await Post(_admin, $"/api/v1/campaigns/{campaign}/participants", new { email = "dora@example.com" }, key)).EnsureStatus(HttpStatusCode.Created);

        app.Clock.Advance(TimeSpan.FromHours(23));
        await AssertRefusedForAnotherBody(await Post(_admin, $"/api/v1/campaigns/{campaign}/participants", new { email = "emil@example.com" }, key));

        app.Clock.Advance(TimeSpan.FromHours(2));
        var afterExpiry = await Answer(await Post(_admin, $"/api/v1/campaigns/{campaign}/participants", new { email = "emil@example.com" }, key));
        Assert.Equal((HttpStatusCode.Created, false), (afterExpiry.Status, afterExpiry.Replayed));

        var other = Guid.NewGuid().ToString();
        (await Post(_admin, $"/api/v1/campaigns/{campaign}/participants", new { email = "finn@example.com" }, other)).EnsureStatus(HttpStatusCode.Created);
        app.Clock.Advance(TimeSpan.FromHours(25));
        var sweep = app.Services.GetServices<IHostedService>().OfType<Referloop.Idempotency.IdempotencySweep>().Single();
        await sweep.PurgeAsync(CancellationToken.None); // the sweep may have run already as the clock moved
        Assert.False(await app.WithDb(db => db.IdempotencyKeys.AnyAsync(r => r.Key == key || r.Key == other)));
    }

    [Fact]
    public async Task Answers_that_are_not_kept_run_again()
    {
        var key = Guid.NewGuid().ToString();

        var invalid = await Post(_admin, "/api/v1/campaigns", new { name = "" }, key);
        var invalidAgain = await Post(_admin, "/api/v1/campaigns", new { name = "" }, key);

        // A 400 is an answer like any other: replayed, not re-validated.
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Equal((HttpStatusCode.BadRequest, true), (invalidAgain.StatusCode, (await Answer(invalidAgain)).Replayed));

        var tooLong = await Post(_admin, "/api/v1/campaigns", Api.SpringCampaign, new string('k', 201));
        await tooLong.AssertValidationProblem("Idempotency-Key");
    }

    [Fact]
    public async Task A_request_still_running_with_the_same_key_gets_409()
    {
        var key = Guid.NewGuid().ToString();
        var campaign = await _admin.CreateCampaign();
        var request = $"/api/v1/campaigns/{campaign}/participants";
        var body = new { email = "gus@example.com" };
        // The first request's claim, as it is while its route runs.
        var hash = await ClaimOf(request, body, key);

        var running = await Post(_admin, request, body, key);
        Assert.Equal(HttpStatusCode.Conflict, running.StatusCode);
        Assert.Equal("application/problem+json", running.Content.Headers.ContentType?.MediaType);
        Assert.NotNull(running.Headers.RetryAfter);

        // A claim never answered (its server died) is taken over after a while: the retry runs.
        app.Clock.Advance(TimeSpan.FromMinutes(6));
        var retried = await Post(_admin, request, body, key);
        Assert.True(retried.IsSuccessStatusCode, $"the retry answered {(int)retried.StatusCode}");
        Assert.False((await Answer(retried)).Replayed);
        Assert.Equal(hash, (await app.WithDb(db => db.IdempotencyKeys.AsNoTracking().SingleAsync(r => r.Key == key))).RequestHash);
    }

    /// <summary>Runs the request once under another key to learn its hash, then claims <paramref name="key"/> with it, unanswered.</summary>
    private async Task<string> ClaimOf(string url, object body, string key)
    {
        var probe = key + "-probe";
        (await Post(_admin, url, body, probe)).EnsureStatus(HttpStatusCode.Created);
        return await app.WithDb(async db =>
        {
            var record = await db.IdempotencyKeys.SingleAsync(r => r.Key == probe);
            db.IdempotencyKeys.Add(new Referloop.Idempotency.IdempotencyRecord
            {
                Scope = record.Scope,
                Key = key,
                RequestHash = record.RequestHash,
                Method = record.Method,
                Path = record.Path,
                CreatedAt = app.Clock.GetUtcNow(),
            });
            await db.SaveChangesAsync();
            return record.RequestHash;
        });
    }
}
