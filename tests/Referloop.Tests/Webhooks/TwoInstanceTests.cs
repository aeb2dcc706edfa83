using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Referloop.Tests.Support;
using Referloop.Webhooks;
using Xunit.Abstractions;

namespace Referloop.Tests.Webhooks;

/// <summary>
/// Two server processes on one PostgreSQL database (SQLite runs one instance), each with its own clock, connection
/// pools and claims, as in a real deployment.
/// </summary>
[Collection(ServerProcessCollection.Name)]
public class TwoInstanceTests(ITestOutputHelper output)
{
    private const int Count = 10_000;

    [Fact]
    public async Task Two_instances_on_one_postgres_share_the_work_and_never_send_a_message_twice_at_once()
    {
        if (!ReferloopApp.OnPostgres)
        {
            return;
        }
        var started = Stopwatch.StartNew();
        await using var database = await ProcessDatabase.CreateAsync();
        await using var receiver = await Receiver.StartAsync();
        // Each request's window at the receiver, from its arrival to just before the answer: it lies inside the
        // sender's own in-flight window, so two windows of one webhook-id that overlap mean two senders at once.
        var open = new ConcurrentDictionary<int, (string Id, long Start)>();
        var windows = new ConcurrentQueue<(string Id, long Start, long End)>();
        receiver.Respond = (n, request) =>
        {
            open[n] = (request.Header("webhook-id"), Stopwatch.GetTimestamp());
            return new Reply(Delay: TimeSpan.FromMilliseconds(2));
        };
        receiver.Settled = n =>
        {
            if (open.TryRemove(n, out var window))
            {
                windows.Enqueue((window.Id, window.Start, Stopwatch.GetTimestamp()));
            }
        };
        var settings = new Dictionary<string, string>
        {
            ["Webhooks:PollInterval"] = "00:00:00.100",
            ["Webhooks:MaxConcurrencyPerEndpoint"] = "32",
        };

        // One after the other: the first creates the schema.
        await using var a = await ServerProcess.StartAsync(database, new Dictionary<string, string>(settings) { ["Webhooks:InstanceId"] = "a" });
        await using var b = await ServerProcess.StartAsync(database, new Dictionary<string, string>(settings) { ["Webhooks:InstanceId"] = "b" });
        using var client = a.CreateAdminClient();
        await client.PostOk("/api/v1/webhook-endpoints", new { url = receiver.Url(), eventTypes = new[] { EventTypes.ReferralCreated } });
        var ids = await database.PublishAsync(Count);
        output.WriteLine($"two servers up and {Count} messages queued after {started.Elapsed.TotalSeconds:0.0} s");

        // Who holds claims, sampled while they work: both instances must take part.
        var claimants = new HashSet<string>();
        await Eventually.TrueAsync(async () =>
            {
                var (holders, succeeded) = await database.WithDb(async db => (
                    await db.WebhookDeliveries.Where(d => d.ClaimedBy != null).Select(d => d.ClaimedBy!).Distinct().ToListAsync(),
                    await db.WebhookDeliveries.CountAsync(d => d.Status == DeliveryStatus.Succeeded)));
                claimants.UnionWith(holders);
                return succeeded == Count;
            },
            TimeSpan.FromSeconds(600),
            () => $"{windows.Count} requests answered\n--- a:\n{a.Output}\n--- b:\n{b.Output}");
        output.WriteLine($"all delivered after {started.Elapsed.TotalSeconds:0.0} s; CPU a {a.ProcessorTime.TotalSeconds:0.0} s, " +
            $"b {b.ProcessorTime.TotalSeconds:0.0} s");

        var overlapping = windows.GroupBy(w => w.Id)
            .Where(sends => sends.OrderBy(w => w.Start).Zip(sends.OrderBy(w => w.Start).Skip(1)).Any(pair => pair.Second.Start < pair.First.End))
            .Select(sends => sends.Key)
            .ToList();
        Assert.Empty(overlapping);
        var sends = windows.GroupBy(w => w.Id).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(ids.ToHashSet(), sends.Keys.ToHashSet());
        Assert.All(sends, send => Assert.Equal(1, send.Value));
        Assert.Equal(Count, await database.WithDb(db => db.WebhookAttempts.CountAsync()));
        Assert.Equal(["a", "b"], claimants.Order());
    }
}
