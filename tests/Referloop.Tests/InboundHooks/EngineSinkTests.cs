using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.InboundHooks;
using Referloop.Tests.Support;

namespace Referloop.Tests.InboundHooks;

/// <summary>Stands in for the referral engine: records what the hooks hand over.</summary>
public sealed class RecordingSink : IInboundEventSink
{
    public ConcurrentQueue<(string Kind, string CampaignId, string? Code, JsonObject Payload)> Calls { get; } = new();

    public Task<InboundOutcome> TrackAsync(string campaignId, JsonObject payload, string? idempotencyKey, CancellationToken ct)
    {
        Calls.Enqueue(("track", campaignId, null, payload));
        return Task.FromResult(InboundOutcome.Processed(new JsonObject { ["eventId"] = "evt_1", ["duplicate"] = false }));
    }

    public Task<InboundOutcome> QualifyAsync(string campaignId, string code, JsonObject payload, CancellationToken ct)
    {
        Calls.Enqueue(("qualify", campaignId, code, payload));
        return Task.FromResult(code == "unknown1"
            ? InboundOutcome.Refused(StatusCodes.Status404NotFound, "No referred user has the code 'unknown1'.")
            : InboundOutcome.Processed(new JsonObject { ["referral"] = new JsonObject { ["status"] = "qualified" } }));
    }
}

public sealed class EngineSinkApp : ReferloopApp
{
    public RecordingSink Sink { get; } = new();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(services => services.AddSingleton<IInboundEventSink>(Sink));
    }
}

public class EngineSinkTests(EngineSinkApp app) : IClassFixture<EngineSinkApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();
    private readonly HttpClient _sender = app.CreateAnonymousClient();

    [Fact]
    public async Task A_track_hook_hands_the_parsed_form_payload_to_the_engine()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "track");

        var response = await _sender.PostForm(hook.Path, Hooks.Form(("type", "purchase"), ("email", "bob@example.net"),
            ("orderId", "ORD-1001"), ("purchaseValue", "120.5"), ("properties[plan]", "pro")));

        response.EnsureStatus(HttpStatusCode.OK);
        var answer = await response.ReadJson();
        Assert.Equal("processed", (string)answer["outcome"]!);
        Assert.Equal("evt_1", (string)answer["result"]!["eventId"]!);
        var call = Assert.Single(app.Sink.Calls, c => c.CampaignId == campaign);
        Assert.Equal("track", call.Kind);
        Assert.Equal("ORD-1001", (string)call.Payload["orderId"]!);
        Assert.Equal("pro", (string)call.Payload["properties"]!["plan"]!);
    }

    [Fact]
    public async Task A_qualify_hook_reads_the_code_from_json_or_form_and_keeps_the_engines_answer()
    {
        var campaign = await _admin.CreateCampaign();
        var hook = await _admin.CreateHook(campaign, "qualify");

        (await _sender.PostJson(hook.Path, """{"code": "k3J9xQ2m"}""")).EnsureStatus(HttpStatusCode.OK);
        (await _sender.PostForm(hook.Path, "referralCode=Ab3dEf7h")).EnsureStatus(HttpStatusCode.OK);
        var missing = await _sender.PostJson(hook.Path, """{"email": "x@example.com"}""");
        var unknown = await _sender.PostJson(hook.Path, """{"code": "unknown1"}""");

        Assert.Equal(["k3J9xQ2m", "Ab3dEf7h", "unknown1"],
            app.Sink.Calls.Where(c => c.CampaignId == campaign).Select(c => c.Code!).ToArray());
        await missing.AssertValidationProblem("code");
        unknown.EnsureStatus(HttpStatusCode.NotFound);
        var requests = (await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}/requests"))["data"]!.AsArray();
        Assert.Equal(["rejected", "rejected", "processed", "processed"], requests.Select(r => (string)r!["outcome"]!).ToArray());
        Assert.Contains("unknown1", (string)requests[0]!["reason"]!);
    }
}

/// <summary>Track and qualify hooks drive the real referral engine.</summary>
public class EngineThroughHooksTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task A_form_posted_purchase_on_a_track_hook_is_attributed_like_an_api_event()
    {
        var campaign = await _admin.CreateCampaign(new
        {
            name = "Hooks",
            landingUrl = "https://shop.example.com",
            fraud = new { disposableEmail = false },
            rewards = new[] { new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = new { type = "rebate", amount = 10, currency = "USD" } } },
        });
        var advocate = await _admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "hook-ann@example.com" });
        var hook = await _admin.CreateHook(campaign, "track");
        var form = $"type=purchase&email=hook-bob%40example.net&referralCode={advocate["code"]}&orderID=HOOK-1&purchaseValue=120.5&currency=USD";

        var response = await app.CreateAnonymousClient().PostForm(hook.Path, form);
        response.EnsureStatus(HttpStatusCode.OK);
        var again = await app.CreateAnonymousClient().PostForm(hook.Path, form);

        var outcome = (await response.ReadJson())["result"]!;
        Assert.True((bool)outcome["attributed"]!);
        Assert.Equal("issued", (string)outcome["rewards"]![0]!["status"]!);
        Assert.True((bool)(await again.ReadJson())["result"]!["duplicate"]!, "the same order id counts once");
        var rewards = (await _admin.GetOk($"/api/v1/rewards?campaignId={campaign}"))["data"]!.AsArray();
        Assert.Single(rewards);
        // The hook's log records each request's outcome, as for every other kind of hook.
        var requests = (await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}/requests"))["data"]!.AsArray();
        Assert.Equal(2, requests.Count);
        Assert.All(requests, r => Assert.Equal("processed", (string)r!["outcome"]!));
    }

    [Fact]
    public async Task A_track_hook_request_repeated_with_its_key_is_one_event_though_its_first_answer_was_never_logged()
    {
        var campaign = await _admin.CreateCampaign(new { name = "Keyed hooks", landingUrl = "https://shop.example.com" });
        var hook = await _admin.CreateHook(campaign, "track");
        var body = """{"type": "signup", "email": "keyed-bob@example.net"}""";

        (await app.CreateAnonymousClient().PostJson(hook.Path, body, idempotencyKey: "send-1")).EnsureStatus(HttpStatusCode.OK);
        // As if the sender had hung up after the event was recorded and before the hook's log took the outcome.
        await app.WithDb(db => db.InboundRequests.Where(r => r.HookId == hook.Id)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.ProcessedKey, (string?)null).SetProperty(r => r.Outcome, InboundOutcomeStatus.Received)));
        var again = await app.CreateAnonymousClient().PostJson(hook.Path, body, idempotencyKey: "send-1");

        again.EnsureStatus(HttpStatusCode.OK);
        Assert.True((bool)(await again.ReadJson())["result"]!["duplicate"]!);
        Assert.Equal(1, await app.WithDb(db => db.Events.CountAsync(e => e.CampaignId == campaign)));
    }

    [Fact]
    public async Task A_track_hook_refuses_an_event_from_the_future_as_the_api_does()
    {
        var campaign = await _admin.CreateCampaign(new { name = "Future hooks", landingUrl = "https://shop.example.com" });
        var hook = await _admin.CreateHook(campaign, "track");

        var response = await app.CreateAnonymousClient().PostJson(hook.Path,
            """{"type": "signup", "email": "future-bob@example.net", "occurredAt": "2099-01-01T00:00:00Z"}""");

        response.EnsureStatus(HttpStatusCode.BadRequest);
        Assert.NotNull((await response.ReadJson())["errors"]!["occurredAt"]);
    }

    [Fact]
    public async Task A_qualify_hook_qualifies_the_referred_user_by_their_code()
    {
        var campaign = await _admin.CreateCampaign(new { name = "Qualify", landingUrl = "https://shop.example.com", approval = "manual" });
        var advocate = await _admin.PostOk($"/api/v1/campaigns/{campaign}/participants", new { email = "q-ann@example.com" });
        await _admin.PostOk("/api/v1/events", new { campaignId = campaign, type = "signup", email = "q-bob@example.net", referralCode = (string)advocate["code"]! }, HttpStatusCode.Accepted);
        var friend = (await _admin.GetOk($"/api/v1/campaigns/{campaign}/participants?search=q-bob"))["data"]!.AsArray().Single()!;
        var hook = await _admin.CreateHook(campaign, "qualify");

        var response = await app.CreateAnonymousClient().PostJson(hook.Path, $$"""{"code": "{{friend["code"]}}"}""");

        response.EnsureStatus(HttpStatusCode.OK);
        Assert.Equal("qualified", (string)(await response.ReadJson())["result"]!["referral"]!["status"]!);

        var unknown = await app.CreateAnonymousClient().PostJson(hook.Path, """{"code": "nobody00"}""");
        unknown.EnsureStatus(HttpStatusCode.NotFound);
        var stored = (await _admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}/requests"))["data"]!.AsArray();
        Assert.Contains(stored, r => (string)r!["outcome"]! == "rejected");
        Assert.Contains(stored, r => (string)r!["outcome"]! == "processed");
    }
}
