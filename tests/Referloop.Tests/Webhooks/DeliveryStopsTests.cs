using System.Net;
using System.Net.Http.Json;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// Two server processes on one PostgreSQL database: what a person stops through one instance, another instance that
/// holds it waiting to be sent drops at once, not at its next lease renewal.
/// </summary>
[Collection(ServerProcessCollection.Name)]
public class DeliveryStopsTests
{
    [PostgresFact]
    public async Task Messages_cancelled_through_one_instance_are_not_sent_by_another_that_holds_them()
    {
        await using var database = await ProcessDatabase.CreateAsync();
        await using var receiver = await Receiver.StartAsync();
        // Counted as they arrive (the receiver lists a request once it has answered it).
        var arrivals = 0;
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        receiver.Respond = (_, _) =>
        {
            Interlocked.Increment(ref arrivals);
            first.TrySetResult();
            return new Reply(Delay: TimeSpan.FromSeconds(3));
        };
        await using var a = await ServerProcess.StartAsync(database, new Dictionary<string, string>
        {
            ["Webhooks:InstanceId"] = "a",
            ["Webhooks:DeliveryEnabled"] = "false",
        });
        // One attempt at a time, and a lease renewed only every 30 s: the other nine wait in b's hands.
        await using var b = await ServerProcess.StartAsync(database, new Dictionary<string, string>
        {
            ["Webhooks:InstanceId"] = "b",
            ["Webhooks:MaxConcurrencyPerEndpoint"] = "1",
            ["Webhooks:ClaimLease"] = "00:02:00",
            ["Webhooks:PollInterval"] = "00:00:00.100",
        });
        using var client = a.CreateAdminClient();
        // A fresh server's first call of a kind is slow: this one's comes before the clock of the test starts.
        Assert.Equal(HttpStatusCode.NotFound, (await client.PostAsJsonAsync("/api/v1/messages/msg_unknown/cancel", new { })).StatusCode);
        await client.PostOk("/api/v1/webhook-endpoints", new { url = receiver.Url(), eventTypes = new[] { EventTypes.ReferralCreated } });
        var ids = await database.PublishAsync(10);
        await first.Task.WaitAsync(TimeSpan.FromSeconds(30));

        foreach (var id in ids)
        {
            await client.PostOk($"/api/v1/messages/{id}/cancel", new { }, HttpStatusCode.OK);
        }

        // The first attempt returns after 3 s; had b not heard, it would start the next one then.
        await Task.Delay(TimeSpan.FromSeconds(4));
        Assert.Equal(1, Volatile.Read(ref arrivals));
    }
}
