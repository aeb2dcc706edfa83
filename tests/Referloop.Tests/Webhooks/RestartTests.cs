using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using Referloop.Webhooks;
using Xunit.Abstractions;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// Leases are short and renewed by their living holder: a restart resumes what a killed instance held within
/// seconds, a live instance keeps what it holds however long an attempt takes, and SIGTERM lets attempts finish.
/// Real server processes with their default lease, on SQLite (a file) and on PostgreSQL.
/// </summary>
[Collection(ServerProcessCollection.Name)]
public class RestartTests(ITestOutputHelper output)
{
    /// <summary>The sequence number a test message carries in its body, and its webhook-id.</summary>
    private static (int Sequence, string Id) Identify(ReceivedRequest request)
    {
        using var body = JsonDocument.Parse(request.Body);
        return (body.RootElement.GetProperty("data").GetProperty("sequence").GetInt32(), request.Header("webhook-id"));
    }

    [Fact]
    public async Task After_a_kill_mid_delivery_a_restarted_instance_resumes_within_30_seconds_with_the_same_webhook_ids()
    {
        const int count = 20;
        await using var database = await ProcessDatabase.CreateAsync();
        await using var receiver = await Receiver.StartAsync();
        var arrivals = new ConcurrentQueue<ReceivedRequest>();
        var hang = true;
        receiver.Respond = (_, request) =>
        {
            arrivals.Enqueue(request);
            // Until the kill the receiver hangs: every attempt of the first instance is on the wire when it dies.
            return Volatile.Read(ref hang) ? new Reply(Delay: TimeSpan.FromMinutes(5)) : new Reply();
        };
        // Only the poll interval shortened (messages are written by the test, so only polling finds them); the lease
        // is the default one.
        var settings = new Dictionary<string, string> { ["Webhooks:PollInterval"] = "00:00:00.250" };

        string[] ids;
        Stopwatch sinceKill;
        await using (var first = await ServerProcess.StartAsync(database, new Dictionary<string, string>(settings) { ["Webhooks:InstanceId"] = "first" }))
        {
            using var client = first.CreateAdminClient();
            await client.PostOk("/api/v1/webhook-endpoints", new { url = receiver.Url(), eventTypes = new[] { EventTypes.ReferralCreated } });
            ids = await database.PublishAsync(count);
            // Eight on the wire (the default per endpoint), the others held waiting for a slot.
            await Eventually.TrueAsync(() => Task.FromResult(arrivals.Count >= 8), TimeSpan.FromSeconds(60),
                () => $"{arrivals.Count} requests arrived\n{first.Output}");
            await first.Kill();
            sinceKill = Stopwatch.StartNew();
        }
        var held = await database.WithDb(db => db.WebhookDeliveries.CountAsync(d => d.ClaimedBy == "first"));
        var arrivedBeforeKill = arrivals.Count;
        Volatile.Write(ref hang, false);
        output.WriteLine($"killed holding {held} deliveries, {arrivedBeforeKill} of them on the wire");
        Assert.Equal(count, held);

        await using (var second = await ServerProcess.StartAsync(database, new Dictionary<string, string>(settings) { ["Webhooks:InstanceId"] = "second" }))
        {
            output.WriteLine($"second instance up {sinceKill.Elapsed.TotalSeconds:0.0} s after the kill");
            await Eventually.TrueAsync(
                async () => await database.WithDb(db => db.WebhookDeliveries.CountAsync(d => d.Status == DeliveryStatus.Succeeded)) == count,
                TimeSpan.FromSeconds(60), () => $"{arrivals.Count} requests arrived\n{second.Output}");
        }
        var resumedAfter = sinceKill.Elapsed;
        output.WriteLine($"all {count} delivered {resumedAfter.TotalSeconds:0.0} s after the kill");
        Assert.True(resumedAfter < TimeSpan.FromSeconds(30), $"resumed only {resumedAfter.TotalSeconds:0.0} s after the kill");

        // Every message arrived, each under its own id on the first try and again after the restart; none was lost.
        var received = arrivals.Select(Identify).ToList();
        Assert.All(received, r => Assert.Equal(ids[r.Sequence], r.Id));
        Assert.Equal(ids.ToHashSet(), received.Select(r => r.Id).ToHashSet());
        Assert.Equal(count, await database.WithDb(db => db.WebhookDeliveries.CountAsync()));
    }

    [Fact]
    public async Task A_live_instance_keeps_its_lease_while_an_attempt_outlasts_it_so_another_never_sends_the_message_too()
    {
        await using var database = await ProcessDatabase.CreateAsync();
        await using var receiver = await Receiver.StartAsync();
        var arrivals = new ConcurrentQueue<ReceivedRequest>();
        receiver.Respond = (n, request) =>
        {
            arrivals.Enqueue(request);
            // Three leases long: without renewal the other instance would claim and send it meanwhile.
            return new Reply(Delay: n == 1 ? TimeSpan.FromSeconds(15) : TimeSpan.Zero);
        };
        var settings = new Dictionary<string, string>
        {
            ["Webhooks:ClaimLease"] = "00:00:05",
            ["Webhooks:Timeout"] = "00:01:00",
            ["Webhooks:PollInterval"] = "00:00:00.100",
        };
        await using var a = await ServerProcess.StartAsync(database, new Dictionary<string, string>(settings) { ["Webhooks:InstanceId"] = "a" });
        await using var b = await ServerProcess.StartAsync(database, new Dictionary<string, string>(settings) { ["Webhooks:InstanceId"] = "b" });
        using var client = a.CreateAdminClient();
        await client.PostOk("/api/v1/webhook-endpoints", new { url = receiver.Url(), eventTypes = new[] { EventTypes.ReferralCreated } });
        var id = Assert.Single(await database.PublishAsync(1));

        await Eventually.TrueAsync(
            async () => await database.WithDb(db => db.WebhookDeliveries.AnyAsync(d => d.Status == DeliveryStatus.Succeeded)),
            TimeSpan.FromSeconds(60), () => $"{arrivals.Count} requests\n--- a:\n{a.Output}\n--- b:\n{b.Output}");

        var request = Assert.Single(arrivals);
        Assert.Equal(id, request.Header("webhook-id"));
        var delivery = await database.WithDb(db => db.WebhookDeliveries.AsNoTracking().SingleAsync());
        Assert.Equal(1, delivery.Attempts);
    }

    [Fact]
    public async Task On_sigterm_attempts_on_the_wire_finish_and_are_recorded_and_the_rest_is_handed_back()
    {
        const int count = 12;
        await using var database = await ProcessDatabase.CreateAsync();
        await using var receiver = await Receiver.StartAsync();
        var arrivals = new ConcurrentQueue<ReceivedRequest>();
        receiver.Respond = (_, request) =>
        {
            arrivals.Enqueue(request);
            return new Reply(Delay: TimeSpan.FromSeconds(3));
        };
        var settings = new Dictionary<string, string> { ["Webhooks:PollInterval"] = "00:00:00.250" };

        var first = await ServerProcess.StartAsync(database, new Dictionary<string, string>(settings) { ["Webhooks:InstanceId"] = "first" });
        await using (first)
        {
            using var client = first.CreateAdminClient();
            await client.PostOk("/api/v1/webhook-endpoints", new { url = receiver.Url(), eventTypes = new[] { EventTypes.ReferralCreated } });
            await database.PublishAsync(count);
            await Eventually.TrueAsync(() => Task.FromResult(arrivals.Count >= 8), TimeSpan.FromSeconds(60),
                () => $"{arrivals.Count} requests arrived\n{first.Output}");
            var exitCode = await first.Terminate(TimeSpan.FromSeconds(30));
            Assert.True(exitCode == 0, $"exit code {exitCode}\n{first.Output}");
        }

        // What was on the wire was answered and recorded; nothing is held by the stopped instance.
        var onTheWire = arrivals.Select(r => r.Header("webhook-id")).ToHashSet();
        var (succeeded, stillClaimed) = await database.WithDb(async db => (
            await db.WebhookDeliveries.Where(d => d.Status == DeliveryStatus.Succeeded).Select(d => d.MessageId).ToListAsync(),
            await db.WebhookDeliveries.CountAsync(d => d.ClaimedBy != null)));
        output.WriteLine($"{onTheWire.Count} on the wire at SIGTERM, {succeeded.Count} recorded as delivered");
        Assert.Equal(onTheWire, succeeded.ToHashSet());
        Assert.Equal(0, stillClaimed);

        // The next instance takes the rest at once and sends nothing twice.
        var restarted = Stopwatch.StartNew();
        await using (var second = await ServerProcess.StartAsync(database, new Dictionary<string, string>(settings) { ["Webhooks:InstanceId"] = "second" }))
        {
            await Eventually.TrueAsync(
                async () => await database.WithDb(db => db.WebhookDeliveries.CountAsync(d => d.Status == DeliveryStatus.Succeeded)) == count,
                TimeSpan.FromSeconds(60), () => $"{arrivals.Count} requests arrived\n{second.Output}");
        }
        output.WriteLine($"the rest delivered {restarted.Elapsed.TotalSeconds:0.0} s after the restart began");
        Assert.Equal(count, arrivals.Count);
        Assert.Equal(count, arrivals.Select(r => r.Header("webhook-id")).Distinct().Count());
    }
}
