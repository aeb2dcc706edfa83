using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Referrals;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;
using Referloop.Webhooks;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Referrals;

/// <summary>
/// Issue #10: a fraud check set to <c>flag</c> sends the referral to the review queue with its reasons and risk score,
/// holds its rewards through the auto-approval run, and a reviewer's approval releases them. The real fraud policy
/// decides here, and webhooks go to real loopback receivers.
/// </summary>
public class ReviewQueueTests(WebhookApp app) : IClassFixture<WebhookApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    private static readonly object[] Rules =
    [
        new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) },
        new { recipient = "friend", trigger = "invited", kind = "standard", incentive = Rebate(5) },
    ];

    private static JsonObject FlagSameIp(string approval = "auto") => new()
    {
        ["approval"] = approval,
        ["fraud"] = new JsonObject { ["sameIp"] = "flag", ["selfReferral"] = false, ["disposableEmail"] = false, ["couponCycling"] = true },
    };

    /// <summary>An advocate whose own sign-up came from <paramref name="ip"/>, so a friend from there trips the same-IP check.</summary>
    private async Task<(string Id, string Code)> AdvocateAt(string campaign, string email, string ip)
    {
        var advocate = await _admin.Advocate(campaign, email);
        await _admin.Track(campaign, "signup", email, ip: ip);
        return advocate;
    }

    private async Task<JsonObject> Referral(string id) => await _admin.GetOk($"/api/v1/referrals/{id}");

    private async Task<JsonObject> Participant(string campaign, string id) =>
        await _admin.GetOk($"/api/v1/campaigns/{campaign}/participants/{id}");

    [Fact]
    public async Task A_same_ip_referral_waits_in_the_queue_with_rewards_held_survives_auto_approval_and_is_released_on_approval()
    {
        await using var receiver = await Receiver.StartAsync();
        var (campaign, _) = await _admin.Campaign(Rules, FlagSameIp());
        await app.CreateEndpoint(_admin, new
        {
            url = receiver.Url(),
            eventTypes = new[] { "referral.flagged", "participant.risk_changed" },
            campaignId = campaign,
            format = "json",
        });
        var (advocateId, code) = await AdvocateAt(campaign, "q-ann@example.com", "198.51.100.20");

        var signup = await _admin.Track(campaign, "signup", "q-bob@example.net", code, ip: "198.51.100.20");

        Assert.Equal("flagged", (string?)signup["referral"]!["status"]);
        Assert.Equal(50, (int)signup["referral"]!["riskScore"]!);
        var held = Assert.Single(signup.Rewards())!;
        Assert.Equal("pending", (string?)held["status"]);
        var referralId = (string)signup["referral"]!["id"]!;

        var flaggedAt = app.Clock.GetUtcNow();
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var purchase = await _admin.Track(campaign, "purchase", "q-bob@example.net", orderId: "Q-1", purchaseValue: 80, ip: "198.51.100.20");
        Assert.Equal("flagged", (string?)purchase["referral"]!["status"]);
        Assert.Equal("pending", (string?)purchase["conversion"]!["status"]);
        Assert.All(purchase.Rewards(), r => Assert.Equal("pending", (string?)r!["status"]));

        var queue = await _admin.GetOk($"/api/v1/referrals?status=flagged&campaignId={campaign}");
        var queued = Assert.Single(queue["data"]!.AsArray())!;
        Assert.Equal(referralId, (string?)queued["id"]);
        Assert.Equal(50, (int)queued["riskScore"]!);
        Assert.Equal("flagged", (string?)queued["fraudDecision"]);
        Assert.Equal(flaggedAt, (DateTimeOffset)queued["flaggedAt"]!);
        var finding = Assert.Single(queued["findings"]!.AsArray())!;
        Assert.Equal("sameIp", (string?)finding["check"]);
        Assert.Equal("flag", (string?)finding["action"]);
        Assert.Equal("friend's IP 198.51.100.20 is one the advocate used", (string?)finding["reason"]);
        Assert.StartsWith("flagged for review: sameIp: friend's IP 198.51.100.20", (string?)queued["reason"]);

        // Long past any holding period, the auto-approval run leaves it alone.
        app.Clock.Advance(TimeSpan.FromDays(60));
        await app.Services.GetRequiredService<AutoApprovalService>().RunOnceAsync(CancellationToken.None);
        var stillFlagged = await Referral(referralId);
        Assert.Equal("flagged", (string?)stillFlagged["status"]);
        Assert.All(stillFlagged["rewards"]!.AsArray(), r => Assert.Equal("pending", (string?)r!["status"]));
        Assert.Equal("medium", (string?)(await Participant(campaign, advocateId))["risk"]!["level"]);

        var approved = await _admin.PostJson($"/api/v1/referrals/{referralId}/approve", new { reason = "same flat, checked by phone" });

        Assert.Equal("approved", (string?)approved["status"]);
        Assert.Equal("same flat, checked by phone", (string?)approved["reason"]);
        Assert.Equal("cleared", (string?)approved["fraudDecision"]);
        Assert.Equal(50, (int)approved["riskScore"]!);
        var rewards = approved["rewards"]!.AsArray();
        Assert.Equal(2, rewards.Count);
        Assert.All(rewards, r => Assert.Equal("issued", (string?)r!["status"]));
        Assert.Equal(["pending", "flagged", "flagged", "approved"], approved["history"]!.AsArray().Select(h => (string)h!["to"]!));
        Assert.Empty((await _admin.GetOk($"/api/v1/referrals?status=flagged&campaignId={campaign}"))["data"]!.AsArray());
        var messages = await app.Messages(campaign);
        Assert.Equal(2, messages.Count(m => m.Type == "reward.issued"));
        Assert.Equal(["pending", "success"], messages.Where(m => m.Type == "conversion").Select(m => (string)m.Data["conversion"]!));
        Assert.DoesNotContain(messages, m => m.Type == "referral.qualified");

        // The flag entered the queue once and the risk went low → medium → low: three messages at the receiver.
        await receiver.WaitForAsync(3);
        await receiver.AssertStillAsync(3);
        var received = receiver.Requests.Select(r => JsonNode.Parse(r.Body)!.AsObject()).ToList();
        Assert.Single(received, r => (string?)r["type"] == "referral.flagged");
        Assert.Equal(2, received.Count(r => (string?)r["type"] == "participant.risk_changed"));
        var flagged = received.Single(r => (string?)r["type"] == "referral.flagged")["data"]!;
        Assert.Equal(referralId, (string?)flagged["referral"]!["id"]);
        Assert.Equal("flagged", (string?)flagged["referral"]!["status"]);
        Assert.Equal(50, (int)flagged["review"]!["riskScore"]!);
        Assert.Equal("sameIp", (string?)flagged["review"]!["reasons"]![0]!["check"]);
        Assert.Equal("q-ann@example.com", (string?)flagged["advocate"]!["email"]);
        var changes = received.Where(r => (string?)r["type"] == "participant.risk_changed").Select(r => r["data"]!)
            .OrderBy(d => (DateTimeOffset)d["changedAt"]!).ToList();
        Assert.Equal(("low", "medium"), ((string)changes[0]["oldLevel"]!, (string)changes[0]["newLevel"]!));
        Assert.Equal(("medium", "low"), ((string)changes[1]["oldLevel"]!, (string)changes[1]["newLevel"]!));
        Assert.Equal(advocateId, (string?)changes[0]["participant"]!["id"]);
        Assert.Contains("waits in the review queue, risk 50: sameIp", (string)changes[0]["reasons"]![0]!);
        Assert.Empty(changes[1]["reasons"]!.AsArray());
        Assert.Equal("cleared", (string?)changes[1]["referral"]!["fraudDecision"]);
        // The documented examples have exactly the shape that is sent.
        Assert.Equal(Shape(JsonNode.Parse(ExamplePayloads.Data["referral.flagged"])), Shape(flagged));
        Assert.Equal(Shape(JsonNode.Parse(ExamplePayloads.Data["participant.risk_changed"])), Shape(changes[0]));
    }

    [Fact]
    public async Task Voiding_a_flagged_referral_blocks_its_held_rewards_and_raises_the_advocates_risk()
    {
        var (campaign, _) = await _admin.Campaign(Rules, FlagSameIp());
        var (advocateId, code) = await AdvocateAt(campaign, "v-ann@example.com", "203.0.113.50");
        var first = await _admin.Track(campaign, "signup", "v-bob@example.net", code, ip: "203.0.113.50");
        var second = await _admin.Track(campaign, "signup", "v-cat@example.net", code, ip: "203.0.113.50");
        Assert.Equal("medium", (string?)(await Participant(campaign, advocateId))["risk"]!["level"]);

        var voided = await _admin.PostJson($"/api/v1/referrals/{(string)first["referral"]!["id"]!}/void", new { reason = "same person" });

        Assert.Equal("voided", (string?)voided["status"]);
        Assert.Equal("rejected", (string?)voided["fraudDecision"]);
        var reward = Assert.Single(voided["rewards"]!.AsArray())!;
        Assert.Equal("blocked", (string?)reward["status"]);
        Assert.Equal("referral voided: same person", (string?)reward["reason"]);
        // One voided after review (2 points) and one still waiting (1 point): high.
        var risk = (await Participant(campaign, advocateId))["risk"]!;
        Assert.Equal("high", (string?)risk["level"]);
        Assert.Equal(2, risk["reasons"]!.AsArray().Count);
        Assert.Contains(risk["reasons"]!.AsArray(), r => ((string)r!).Contains("was voided after review"));
        var changes = (await app.Messages(campaign)).Where(m => m.Type == "participant.risk_changed")
            .Select(m => ((string)m.Data["oldLevel"]!, (string)m.Data["newLevel"]!)).ToList();
        // The second flag left the level at medium, so it sent nothing.
        Assert.Equal([("low", "medium"), ("medium", "high")], changes);
        Assert.Equal("flagged", (string?)(await Referral((string)second["referral"]!["id"]!))["status"]);

        var page = await (await DashboardClient.SignedIn(app)).Page($"/admin/campaigns/{campaign}/participants/{advocateId}");
        Assert.Contains("<h2>Fraud risk <span class=\"badge blocked\">high</span></h2>", page);
        Assert.Contains("was voided after review, risk 50: sameIp", page);
        Assert.Contains("v-cat@example.net", page);
    }

    [Fact]
    public async Task The_queue_is_in_the_order_referrals_entered_it_and_pages_by_keyset()
    {
        var (campaign, _) = await _admin.Campaign(Rules, FlagSameIp("manual"));
        var (_, code) = await AdvocateAt(campaign, "o-ann@example.com", "192.0.2.77");
        // Created first but clean; flagged only when its purchase comes from the advocate's address.
        var late = await _admin.Track(campaign, "signup", "o-late@example.net", code, ip: "192.0.2.1");
        Assert.Equal("pending", (string?)late["referral"]!["status"]);
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var early = await _admin.Track(campaign, "signup", "o-early@example.net", code, ip: "192.0.2.77");
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var middle = await _admin.Track(campaign, "signup", "o-middle@example.net", code, ip: "192.0.2.77");
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var converted = await _admin.Track(campaign, "purchase", "o-late@example.net", orderId: "O-1", purchaseValue: 20, ip: "192.0.2.77");
        Assert.Equal("flagged", (string?)converted["referral"]!["status"]);
        Assert.Equal("pending", (string?)converted["conversion"]!["status"]);

        var ids = new List<string>();
        string? cursor = null;
        do
        {
            var page = await _admin.GetOk($"/api/v1/referrals?status=flagged&campaignId={campaign}&limit=1"
                + (cursor is null ? "" : $"&cursor={cursor}"));
            ids.AddRange(page["data"]!.AsArray().Select(r => (string)r!["id"]!));
            cursor = (string?)page["nextCursor"];
        }
        while (cursor is not null);

        Assert.Equal([(string)early["referral"]!["id"]!, (string)middle["referral"]!["id"]!, (string)late["referral"]!["id"]!], ids);
        var flagged = (await app.Messages(campaign)).Where(m => m.Type == "referral.flagged").ToList();
        Assert.Equal(3, flagged.Count);
    }

    [Fact]
    public async Task A_flag_raised_when_the_friend_converts_holds_the_purchase_until_approval()
    {
        var (campaign, _) = await _admin.Campaign(Rules, FlagSameIp());
        var (_, code) = await AdvocateAt(campaign, "c-ann@example.com", "192.0.2.88");
        await _admin.Track(campaign, "signup", "c-bob@example.net", code, ip: "192.0.2.2");

        var purchase = await _admin.Track(campaign, "purchase", "c-bob@example.net", orderId: "C-1", purchaseValue: 30, ip: "192.0.2.88");
        var referralId = (string)purchase["referral"]!["id"]!;

        Assert.Equal("flagged", (string?)purchase["referral"]!["status"]);
        var advocateReward = purchase.Rewards().Single(r => (string?)r!["recipient"] == "advocate")!;
        Assert.Equal("pending", (string?)advocateReward["status"]);
        await app.Services.GetRequiredService<AutoApprovalService>().RunOnceAsync(CancellationToken.None);
        Assert.Equal("flagged", (string?)(await Referral(referralId))["status"]);

        // A repeat purchase neither re-queues it nor counts a second conversion.
        await _admin.Track(campaign, "purchase", "c-bob@example.net", orderId: "C-2", purchaseValue: 30, ip: "192.0.2.88");
        Assert.Single(await app.Messages(campaign), m => m.Type == "referral.flagged");

        var approved = await _admin.PostJson($"/api/v1/referrals/{referralId}/approve", new { reason = "ok" });
        Assert.Equal("approved", (string?)approved["status"]);
        Assert.Equal(1, (int)approved["conversionNumber"]!);
        Assert.All(approved["rewards"]!.AsArray(), r => Assert.Equal("issued", (string?)r!["status"]));
        Assert.Equal(["pending", "flagged", "approved"], approved["history"]!.AsArray().Select(h => (string)h!["to"]!));
    }

    [Fact]
    public async Task A_check_set_to_block_still_voids_and_allow_ignores_the_same_ip()
    {
        var (blocking, _) = await _admin.Campaign(Rules, new { fraud = new { sameIp = true, selfReferral = false, disposableEmail = false } });
        var (blockAdvocate, blockCode) = await AdvocateAt(blocking, "b-ann@example.com", "192.0.2.99");
        var blocked = await _admin.Track(blocking, "signup", "b-bob@example.net", blockCode, ip: "192.0.2.99");
        Assert.Equal("voided", (string?)blocked["referral"]!["status"]);
        Assert.Equal("blocked", (string?)(await Referral((string)blocked["referral"]!["id"]!))["fraudDecision"]);
        Assert.Equal("medium", (string?)(await Participant(blocking, blockAdvocate))["risk"]!["level"]);

        var (allowing, _) = await _admin.Campaign(Rules, new { fraud = new { sameIp = "allow", selfReferral = false, disposableEmail = false } });
        var (allowAdvocate, allowCode) = await AdvocateAt(allowing, "a-ann@example.com", "192.0.2.99");
        var allowed = await _admin.Track(allowing, "signup", "a-bob@example.net", allowCode, ip: "192.0.2.99");
        Assert.Equal("pending", (string?)allowed["referral"]!["status"]);
        Assert.Equal(0, (int)allowed["referral"]!["riskScore"]!);
        Assert.Equal("issued", (string?)Assert.Single(allowed.Rewards())!["status"]);
        var risk = (await Participant(allowing, allowAdvocate))["risk"]!;
        Assert.Equal("low", (string?)risk["level"]);
        Assert.Empty(risk["reasons"]!.AsArray());
        Assert.DoesNotContain(await app.Messages(allowing), m => m.Type == "participant.risk_changed");
    }

    [Fact]
    public async Task A_browser_sees_the_status_but_not_the_risk_score()
    {
        var (campaign, key) = await _admin.Campaign(Rules, FlagSameIp());
        var (_, code) = await AdvocateAt(campaign, "w-ann@example.com", "192.0.2.111");
        var browser = app.CreateAnonymousClient();
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events")
        {
            Content = JsonContent.Create(new { campaignId = campaign, type = "signup", email = "w-bob@example.net", referralCode = code }),
        };
        request.Headers.Add("X-Referloop-Key", key);
        request.Headers.Add(ClientAddress.Header, "192.0.2.111");

        var response = await browser.SendAsync(request);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var body = await response.ReadJson();
        Assert.Equal("flagged", (string?)body["referral"]!["status"]);
        Assert.Null(body["referral"]!["riskScore"]);
    }

    /// <summary>Every property path of a JSON document, array items merged: the shape, without the values.</summary>
    private static string[] Shape(JsonNode? node, string path = "")
    {
        return node switch
        {
            JsonObject o => [.. o.SelectMany(p => Shape(p.Value, $"{path}.{p.Key}").Prepend($"{path}.{p.Key}")).Distinct().Order(StringComparer.Ordinal)],
            JsonArray a => [.. a.SelectMany(item => Shape(item, path + "[]")).Distinct().Order(StringComparer.Ordinal)],
            _ => [],
        };
    }

    [Fact]
    public void The_readme_shows_the_review_events_as_they_are_sent()
    {
        var readme = File.ReadAllText(Path.Combine(Repository(), "README.md"));
        foreach (var type in new[] { "referral.flagged", "participant.risk_changed" })
        {
            var start = readme.IndexOf("```json\n{\"type\": \"" + type + "\"", StringComparison.Ordinal);
            Assert.True(start >= 0, $"README has no example of {type}");
            start += "```json\n".Length;
            var documented = JsonNode.Parse(readme[start..readme.IndexOf("```", start, StringComparison.Ordinal)]);
            var sent = JsonNode.Parse(WebhookPayload.JsonEnvelope(new OutboxMessage
            {
                Id = "msg_example",
                Type = type,
                Data = ExamplePayloads.Data[type],
                CreatedAt = new DateTimeOffset(2026, 11, 20, 14, 3, 12, TimeSpan.Zero),
            }));
            Assert.True(JsonNode.DeepEquals(documented, sent), $"README's {type} example differs from what is sent:\n{sent}");
        }
    }

    private static string Repository()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "README.md")) && Directory.Exists(Path.Combine(dir.FullName, "docs")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("the repository root was not found");
    }

    [Fact]
    public async Task The_openapi_document_types_the_risk_of_referrals_and_participants()
    {
        var document = await app.CreateAnonymousClient().GetOk("/openapi/v1.json");
        var schemas = document["components"]!["schemas"]!.AsObject();

        var referral = schemas["ReferralResponse"]!["properties"]!.AsObject();
        Assert.True(referral.ContainsKey("riskScore") && referral.ContainsKey("fraudDecision") && referral.ContainsKey("flaggedAt"));
        var participant = schemas["ParticipantResponse"]!["properties"]!.AsObject();
        Assert.True(participant.ContainsKey("risk"));
        var risk = schemas["ParticipantRiskResponse"]!["properties"]!.AsObject();
        Assert.True(risk.ContainsKey("level") && risk.ContainsKey("reasons") && risk.ContainsKey("changedAt"));
        Assert.Contains("review queue", (string?)document["paths"]!["/api/v1/referrals"]!["get"]!["summary"]);
    }

    [Fact]
    public async Task The_status_filter_names_flagged_among_the_statuses()
    {
        var response = await _admin.GetAsync("/api/v1/referrals?status=held");
        var problem = await response.AssertValidationProblem("status");
        Assert.Contains("flagged", problem["errors"]!["status"]![0]!.ToString());
    }
}
