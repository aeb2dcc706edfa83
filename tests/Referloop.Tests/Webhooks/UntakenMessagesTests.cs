using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Referrals;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>The server as it runs by default: messages no endpoint or e-mail takes are not stored.</summary>
public sealed class UntakenMessagesApp : ReferloopApp
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Webhooks:KeepUntakenMessages"] = "false",
        // The endpoint below is never called: its messages stay in the outbox, undispatched, for the test to read.
        ["Webhooks:DeliveryEnabled"] = "false",
    };
}

/// <summary>
/// An event writes the messages somebody takes and nothing else: without an endpoint, an attributed purchase is
/// answered and stored in full with no outbox row; an endpoint gets the messages of the types it subscribes to.
/// </summary>
public class UntakenMessagesTests(UntakenMessagesApp app) : IClassFixture<UntakenMessagesApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task An_event_writes_only_the_messages_an_enabled_endpoint_takes()
    {
        var (campaign, _) = await _admin.Campaign([new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = EngineKit.Rebate(10) }]);
        var (_, code) = await _admin.Advocate(campaign);
        var joined = await Written(campaign);
        Assert.Equal([EventTypes.ParticipantJoined], joined.Select(m => m.Type)); // the advocate, written by the API

        // No endpoint: the purchase is attributed, approved and rewarded, and raises nothing that is stored.
        var first = await _admin.Track(campaign, "purchase", "bo@example.com", code: code, orderId: "o-1", purchaseValue: 20m);
        Assert.Equal("approved", (string)first["referral"]!["status"]!);
        Assert.Equal("issued", (string)first.Rewards().Single()!["status"]!);
        Assert.Equal(joined.Select(m => m.Id), (await Written(campaign)).Select(m => m.Id));
        Assert.Equal(1, await app.WithDb(db => db.Rewards.CountAsync(r => r.CampaignId == campaign)));

        // An endpoint for two types: the next purchase writes exactly those, waiting for the fan-out.
        await _admin.PostOk("/api/v1/webhook-endpoints",
            new { url = "https://crm.example.com/hooks", campaignId = campaign, eventTypes = new[] { EventTypes.ReferralCreated, EventTypes.Conversion } });
        var second = await _admin.Track(campaign, "purchase", "cy@example.com", code: code, orderId: "o-2", purchaseValue: 30m);
        Assert.Equal("approved", (string)second["referral"]!["status"]!);
        var raised = (await Written(campaign)).Skip(joined.Count).ToList();
        Assert.Equal([EventTypes.ReferralCreated, EventTypes.Conversion], raised.Select(m => m.Type));
        Assert.All(raised, m => Assert.Null(m.DispatchedAt));
        Assert.Contains("cy@example.com", raised[1].Data);

        // A repeat of the first purchase is answered from the stored outcome, as before.
        var repeat = await _admin.Track(campaign, "purchase", "bo@example.com", code: code, orderId: "o-1", purchaseValue: 20m);
        Assert.True((bool)repeat["duplicate"]!);
        Assert.Equal((string)first["referral"]!["id"]!, (string)repeat["referral"]!["id"]!);
    }

    private Task<List<OutboxMessage>> Written(string campaign) =>
        app.WithDb(db => db.Outbox.AsNoTracking().Where(m => m.CampaignId == campaign).OrderBy(m => m.Id).ToListAsync());
}
