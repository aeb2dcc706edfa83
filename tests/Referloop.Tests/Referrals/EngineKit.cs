using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Campaigns;
using Referloop.Fraud;
using Referloop.Participants;
using Referloop.Referrals;
using Referloop.Storage;
using Referloop.Tests.Support;

namespace Referloop.Tests.Referrals;

/// <summary>Fraud verdicts chosen by the test, per friend email; everyone else is clean.</summary>
public sealed class ScriptedScreening : IReferralScreening
{
    public ConcurrentDictionary<string, FraudVerdict> Verdicts { get; } = new();
    public ConcurrentQueue<FriendSignals> Seen { get; } = new();

    public FraudVerdict Evaluate(Campaign campaign, Participant advocate, FriendSignals friend, FraudFacts facts)
    {
        Seen.Enqueue(friend);
        return Verdicts.TryGetValue(friend.Email, out var verdict) ? verdict : FraudVerdict.Clean;
    }
}

public sealed class SwitchableListeners : IReferralApprovalListeners
{
    public bool Listening { get; set; }
    public Task<bool> AnyAsync(ReferloopDb db, string campaignId, CancellationToken ct) => Task.FromResult(Listening);
}

/// <summary>A server whose fraud screening and approval-webhook listeners are scripted by the test.</summary>
public class EngineApp : ReferloopApp
{
    public ScriptedScreening Screening { get; } = new();
    public SwitchableListeners Listeners { get; } = new();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(services =>
        {
            services.AddSingleton<IReferralScreening>(Screening);
            services.AddSingleton<IReferralApprovalListeners>(Listeners);
        });
    }
}

public static class EngineKit
{
    public static object Rebate(decimal amount, string currency = "USD") => new { type = "rebate", amount, currency };

    /// <summary>The plainest program: the advocate earns a $10 rebate for each converted friend.</summary>
    public static readonly object[] AdvocateTenDollars =
    [
        new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) },
    ];

    public static object Other(string description) => new { type = "other", description };

    /// <summary>A campaign with the given reward rules; <paramref name="settings"/> overrides the defaults (auto, no holding).</summary>
    public static async Task<(string Id, string PublishableKey)> Campaign(this HttpClient admin, object[] rules, object? settings = null)
    {
        var body = new JsonObject
        {
            ["name"] = "Engine test",
            ["landingUrl"] = "https://shop.example.com/welcome",
            ["attributionWindowDays"] = 30,
            ["approval"] = "auto",
            ["holdingPeriodDays"] = 0,
            ["fraud"] = new JsonObject { ["selfReferral"] = false, ["disposableEmail"] = false, ["couponCycling"] = true },
            ["rewards"] = JsonSerializer.SerializeToNode(rules),
        };
        if (settings is not null)
        {
            foreach (var (key, value) in JsonSerializer.SerializeToNode(settings)!.AsObject())
            {
                body[key] = value?.DeepClone();
            }
        }
        var created = await admin.PostOk("/api/v1/campaigns", body);
        return ((string)created["id"]!, (string)created["publishableKey"]!);
    }

    public static async Task<(string Id, string Code)> Advocate(this HttpClient admin, string campaignId, string email = "ann@example.com",
        string? name = "Ann Lee", string? customValue = "crm-42")
    {
        var advocate = await admin.PostOk($"/api/v1/campaigns/{campaignId}/participants", new { email, name, customValue });
        return ((string)advocate["id"]!, (string)advocate["code"]!);
    }

    /// <summary>POST /api/v1/events and expect 202.</summary>
    public static Task<JsonObject> Track(this HttpClient client, string campaignId, string type, string email, string? code = null,
        string? orderId = null, decimal? purchaseValue = null, string? clickId = null, string? ip = null, object? properties = null,
        string? name = null, DateTimeOffset? occurredAt = null) =>
        client.PostOk("/api/v1/events", new
        {
            campaignId,
            type,
            email,
            name,
            referralCode = code,
            orderId,
            purchaseValue,
            currency = purchaseValue is null ? null : "USD",
            clickId,
            ip,
            properties,
            occurredAt,
        }, HttpStatusCode.Accepted);

    public static JsonArray Rewards(this JsonObject outcome) => outcome["rewards"]!.AsArray();

    /// <summary>
    /// An event accepted with <c>Prefer: respond-async</c> and still waiting in the inbox, written straight into the
    /// table (no loop of this instance holds it); its id.
    /// </summary>
    public static async Task<string> WaitingEvent(this ReferloopApp app, string campaign, string email, string? orderId,
        string? idempotencyKey = null, string? referralCode = null, string source = "server")
    {
        var id = "evt_" + Guid.NewGuid().ToString("N")[..20];
        await app.WithDb(async db =>
        {
            db.Inbox.Add(new Referloop.Tracking.InboxEvent
            {
                Id = id,
                CampaignId = campaign,
                OrderId = orderId,
                IdempotencyKey = idempotencyKey,
                Source = source,
                Request = JsonSerializer.Serialize(new { campaignId = campaign, type = orderId is null ? "signup" : "purchase", email, orderId, referralCode },
                    new JsonSerializerOptions(JsonSerializerDefaults.Web)),
                ReceivedAt = app.Clock.GetUtcNow(),
            });
            return await db.SaveChangesAsync();
        });
        return id;
    }

    public static async Task<List<(string Type, JsonObject Data)>> Messages(this ReferloopApp app, string campaignId) =>
        (await app.WithDb(db => db.Outbox.AsNoTracking().Where(m => m.CampaignId == campaignId).OrderBy(m => m.Id).ToListAsync()))
            .Select(m => (m.Type, JsonNode.Parse(m.Data)!.AsObject())).ToList();

    public static async Task<JsonArray> RewardList(this HttpClient admin, string query) =>
        (await admin.GetOk($"/api/v1/rewards?{query}"))["data"]!.AsArray();

    public static async Task<JsonObject> PostJson(this HttpClient client, string url, object? body, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var response = await client.PostAsJsonAsync(url, body ?? new { });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"POST {url} answered {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    public static async Task Eventually(Func<Task<bool>> condition, string what)
    {
        for (var i = 0; i < 100; i++)
        {
            if (await condition())
            {
                return;
            }
            await Task.Delay(100);
        }
        Assert.Fail("timed out waiting until " + what);
    }
}
