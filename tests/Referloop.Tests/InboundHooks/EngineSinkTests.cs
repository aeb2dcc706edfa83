using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Referloop.InboundHooks;
using Referloop.Tests.Support;

namespace Referloop.Tests.InboundHooks;

/// <summary>Stands in for the referral engine: records what the hooks hand over.</summary>
public sealed class RecordingSink : IInboundEventSink
{
    public ConcurrentQueue<(string Kind, string CampaignId, string? Code, JsonObject Payload)> Calls { get; } = new();

    public Task<InboundOutcome> TrackAsync(string campaignId, JsonObject payload, CancellationToken ct)
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

/// <summary>Without the referral engine, track and qualify requests are kept and answered 501.</summary>
public class EngineUnavailableTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    [Theory]
    [InlineData("track", """{"type": "signup", "email": "bob@example.net"}""")]
    [InlineData("qualify", """{"code": "k3J9xQ2m"}""")]
    public async Task Track_and_qualify_answer_501_and_keep_the_request(string kind, string body)
    {
        var admin = app.CreateAdminClient();
        var campaign = await admin.CreateCampaign();
        var hook = await admin.CreateHook(campaign, kind);

        var response = await app.CreateAnonymousClient().PostJson(hook.Path, body);

        response.EnsureStatus(HttpStatusCode.NotImplemented);
        Assert.Contains("needs the referral engine", (string)(await response.ReadJson())["detail"]!);
        var stored = (await admin.GetOk($"/api/v1/inbound-hooks/{hook.Id}/requests"))["data"]!.AsArray().Single()!;
        Assert.Equal("rejected", (string)stored["outcome"]!);
        Assert.Equal(body, (string)stored["body"]!);
    }
}
