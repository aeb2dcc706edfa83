using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using Referloop.Webhooks;
using Xunit.Abstractions;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// The server process dies (SIGKILL) with thousands of messages queued, claimed and on the wire; a new process on
/// the same database finishes the job. Runs on SQLite (a file) and on PostgreSQL.
/// </summary>
[Collection(ServerProcessCollection.Name)]
public class CrashTests(ITestOutputHelper output)
{
    private const int Count = 10_000;

    [Fact]
    public async Task After_a_kill_and_a_restart_every_message_arrives_at_least_once_with_its_own_webhook_id()
    {
        var started = Stopwatch.StartNew();
        await using var database = await ProcessDatabase.CreateAsync();
        await using var receiver = await Receiver.StartAsync();
        var arrivals = new ConcurrentQueue<ReceivedRequest>();
        using var firstKilled = new CancellationTokenSource();
        receiver.Respond = (_, request) =>
        {
            arrivals.Enqueue(request);
            // Long enough that requests are still open when the sender dies; and once a quarter of the messages came,
            // the first server's requests are held open until it dies, so that some are cut off whatever its pace
            // (between two claims it may have nothing on the wire for a moment).
            return new Reply(Delay: arrivals.Count > Count / 4 && !firstKilled.IsCancellationRequested
                ? TimeSpan.FromMinutes(5)
                : TimeSpan.FromMilliseconds(20));
        };
        var settings = new Dictionary<string, string>
        {
            // The dead process's claims must run out before the new one may take them; minutes would only make the test wait.
            ["Webhooks:ClaimLease"] = "00:00:05",
            // The messages are written by the test, not by the server, so nothing wakes it: it finds them by polling.
            ["Webhooks:PollInterval"] = "00:00:00.100",
            // Many requests open at once, so that many are cut off by the kill.
            ["Webhooks:MaxConcurrencyPerEndpoint"] = "32",
        };

        string[] ids;
        await using (var first = await ServerProcess.StartAsync(database, new Dictionary<string, string>(settings) { ["Webhooks:InstanceId"] = "first" }))
        {
            output.WriteLine($"first server up after {started.Elapsed.TotalSeconds:0.0} s");
            using var client = first.CreateAdminClient();
            await client.PostOk("/api/v1/webhook-endpoints", new { url = receiver.Url(), eventTypes = new[] { EventTypes.ReferralCreated } });
            ids = await database.PublishAsync(Count);
            output.WriteLine($"{Count} messages queued after {started.Elapsed.TotalSeconds:0.0} s");

            await Eventually.TrueAsync(() => Task.FromResult(arrivals.Count >= Count / 4), TimeSpan.FromSeconds(240),
                () => $"only {arrivals.Count} requests arrived before the kill\n{first.Output}");
            output.WriteLine($"first server used {first.ProcessorTime.TotalSeconds:0.0} s of CPU");
            await first.Kill();
            await firstKilled.CancelAsync();
        }

        // The database as the dead process left it: what it held is what may arrive twice.
        var arrivedBeforeRestart = arrivals.Count;
        var (inFlight, deliveredAtKill, undispatchedAtKill) = await database.WithDb(async db => (
            (await db.WebhookDeliveries.Where(d => d.Status == DeliveryStatus.Pending && d.ClaimedBy != null)
                .Select(d => d.MessageId).ToListAsync()).ToHashSet(),
            await db.WebhookDeliveries.CountAsync(d => d.Status == DeliveryStatus.Succeeded),
            await db.Outbox.CountAsync(m => m.DispatchedAt == null)));
        output.WriteLine($"killed after {started.Elapsed.TotalSeconds:0.0} s: {arrivedBeforeRestart} requests arrived, " +
            $"{deliveredAtKill} deliveries recorded, {inFlight.Count} claimed and unfinished, {undispatchedAtKill} messages not fanned out");
        Assert.NotEmpty(inFlight);
        Assert.InRange(deliveredAtKill, 1, Count - 1);

        await using (var second = await ServerProcess.StartAsync(database, new Dictionary<string, string>(settings) { ["Webhooks:InstanceId"] = "second" }))
        {
            await Eventually.TrueAsync(
                async () => await database.WithDb(db => db.WebhookDeliveries.CountAsync(d => d.Status == DeliveryStatus.Succeeded)) == Count,
                TimeSpan.FromSeconds(300),
                () => $"{arrivals.Select(r => r.Header("webhook-id")).Distinct().Count()} of {Count} messages arrived\n{second.Output}");
            output.WriteLine($"second server used {second.ProcessorTime.TotalSeconds:0.0} s of CPU");
        }
        output.WriteLine($"all delivered after {started.Elapsed.TotalSeconds:0.0} s");

        var received = arrivals.ToArray();
        foreach (var request in received)
        {
            // The body says which message this is; the header must be that message's id, on the first try and on a retry.
            using var body = JsonDocument.Parse(request.Body);
            var sequence = body.RootElement.GetProperty("data").GetProperty("sequence").GetInt32();
            Assert.Equal(ids[sequence], request.Header("webhook-id"));
        }
        var byId = received.GroupBy(r => r.Header("webhook-id")).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(ids.ToHashSet(), byId.Keys.ToHashSet());
        var duplicates = byId.Where(e => e.Value > 1).Select(e => e.Key).ToHashSet();
        output.WriteLine($"{received.Length} requests for {Count} messages; {duplicates.Count} messages arrived more than once");
        Assert.Subset(inFlight, duplicates);
        // What the dead process held was sent again by the new one once its lease ran out.
        var afterRestart = received.Skip(arrivedBeforeRestart).Select(r => r.Header("webhook-id")).ToHashSet();
        Assert.Subset(afterRestart, inFlight);
        Assert.Equal(Count, await database.WithDb(db => db.WebhookDeliveries.CountAsync()));
    }
}
