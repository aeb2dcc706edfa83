using System.Net;
using Referloop.Tests.Support;
using Referloop.Tracking;

namespace Referloop.Tests.Tracking;

/// <summary>
/// The event loop reads what a batch repeats first only for a few batches after one that met a repeat
/// (<see cref="OrderKeyed.RepeatWatch"/>); otherwise the events' insert finds it. A server of its own, so that no
/// other test's repeat sets the count.
/// </summary>
public class RepeatReadTests(IngestCostTests.CountingApp app) : IClassFixture<IngestCostTests.CountingApp>
{
    private readonly HttpClient _admin = app.CreateAdminClient();

    // The read of the events and waiting events that hold the batch's order ids or keys names its rows "Waiting".
    private static bool ReadsEarlierEvents(IReadOnlyList<string> commands) => commands.Any(c => c.Contains("\"Waiting\""));

    private Task<Recorded<System.Text.Json.Nodes.JsonObject>> PurchaseAsync(string campaign, string order) =>
        SqlCommands.RecordAsync(() => _admin.PostOk("/api/v1/events",
            new { campaignId = campaign, type = "purchase", email = $"{order}@example.net", orderId = order, purchaseValue = 20 },
            HttpStatusCode.Accepted));

    [Fact]
    public async Task After_a_repeat_the_next_batches_read_first_then_no_longer()
    {
        var campaign = await _admin.CreateCampaign();
        var first = await PurchaseAsync(campaign, "rr-1");
        Assert.False(ReadsEarlierEvents(first.Texts));

        var repeat = await PurchaseAsync(campaign, "rr-1");

        Assert.True((bool)repeat.Result["duplicate"]!);
        Assert.Equal((string?)first.Result["eventId"], (string?)repeat.Result["eventId"]);
        for (var i = 0; i < OrderKeyed.RepeatWatch.BatchesAfterRepeat; i++)
        {
            var next = await PurchaseAsync(campaign, $"rr-next-{i}");
            Assert.True(ReadsEarlierEvents(next.Texts), $"batch {i + 1} after the repeat reads first");
        }
        Assert.False(ReadsEarlierEvents((await PurchaseAsync(campaign, "rr-later")).Texts));
    }
}
