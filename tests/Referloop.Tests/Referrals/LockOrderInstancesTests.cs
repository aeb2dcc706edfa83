using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net.Http.Json;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Referloop.Hosting;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Tests.Rewards;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Referrals;

/// <summary>
/// Whoever changes a referral locks it before its advocate, each kind in id order (on PostgreSQL; SQLite runs one
/// write transaction at a time): a batch of events locks its friends' referrals, then the advocates with their
/// counters; a referral command locks the referral, then reads its advocate. Two writers can then wait for each other
/// but never in a circle.
/// </summary>
public class LockOrderInstancesTests(SharedDatabaseApp app) : IClassFixture<SharedDatabaseApp>
{
    [Fact]
    public async Task Two_instances_approving_voiding_and_taking_purchases_of_the_same_advocates_at_once_never_deadlock_and_lose_no_decision()
    {
        await using var second = app.SecondInstance();
        var admin = app.CreateAdminClient();
        HttpClient[] instances = [admin, SharedDatabaseApp.CreateAdminClient(second)];
        var (campaign, _) = await admin.Campaign(AdvocateTenDollars, new { approval = "manual" });
        var advocates = new List<(string Id, string Code)>();
        for (var a = 0; a < 3; a++)
        {
            advocates.Add(await admin.Advocate(campaign, $"lock-{a}@example.com", $"Advocate {a}"));
        }
        // Ten qualified referrals per advocate, waiting for an admin.
        var waiting = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            var outcome = await admin.Track(campaign, "purchase", $"seed-{i}@example.net", advocates[i % 3].Code, orderId: $"SEED-{i}",
                purchaseValue: 20);
            waiting.Add((string)outcome["referral"]!["id"]!);
        }
        var reasons = new ConcurrentQueue<string>();
        using var listener = RerunListener(reasons);
        // The count works: a repeated order, which a batch does not look for first, makes its batch run again.
        var repeat = await admin.Track(campaign, "purchase", "seed-0@example.net", advocates[0].Code, orderId: "SEED-0", purchaseValue: 20);
        Assert.True((bool)repeat["duplicate"]!);
        Assert.Contains("unread_repeat", reasons);

        // Half of them approved and half voided on both instances, while both take new purchases of the same advocates
        // (each batch of events holds several of them) and second purchases of the friends whose referrals the commands
        // decide (a batch locks those referrals too).
        var commands = waiting.Select((id, i) => (Url: $"/api/v1/referrals/{id}/{(i % 2 == 0 ? "approve" : "void")}",
            Body: (object)new { reason = "checked" }));
        var purchases = Enumerable.Range(0, 60).Select(i => (Url: "/api/v1/events", Body: (object)new
        {
            campaignId = campaign, type = "purchase", email = $"new-{i}@example.net", referralCode = advocates[i % 3].Code,
            orderId = $"NEW-{i}", purchaseValue = 20,
        })).Concat(Enumerable.Range(0, 30).Select(i => (Url: "/api/v1/events", Body: (object)new
        {
            campaignId = campaign, type = "purchase", email = $"seed-{i}@example.net", orderId = $"AGAIN-{i}", purchaseValue = 20,
        })));
        var responses = await Task.WhenAll(commands.Concat(purchases).Select((request, i) => Task.Run(async () =>
        {
            using var response = await instances[i % 2].PostAsJsonAsync(request.Url, request.Body);
            return (request.Url, Status: (int)response.StatusCode, Text: await response.Content.ReadAsStringAsync());
        })));

        Assert.All(responses, r => Assert.True(r.Status is 200 or 202, $"POST {r.Url} answered {r.Status}: {r.Text}"));
        Assert.DoesNotContain("deadlock", reasons);
        var rewards = await app.WithDb(db => db.Rewards.AsNoTracking().Where(r => r.CampaignId == campaign).ToListAsync());
        foreach (var (advocateId, _) in advocates)
        {
            var theirs = rewards.Where(r => r.AdvocateId == advocateId).ToList();
            Assert.Equal(5, theirs.Count(r => r.Status == RewardStatus.Issued));
            Assert.Equal(5, theirs.Count(r => r.Status == RewardStatus.Blocked));
            Assert.Equal(20, theirs.Count(r => r.Status == RewardStatus.Pending));
            Assert.Equal(30, theirs.Count);
        }
    }

    [Fact]
    public void A_rerun_is_counted_by_what_the_unit_of_work_lost_its_race_to()
    {
        Assert.Equal("deadlock", ReferralEngine.RerunReason(new Npgsql.PostgresException("deadlock detected", "ERROR", "ERROR", "40P01")));
        Assert.Equal("unique_violation", ReferralEngine.RerunReason(
            new DbUpdateException("save failed", new Npgsql.PostgresException("duplicate key", "ERROR", "ERROR", "23505"))));
        Assert.Equal("update_conflict", ReferralEngine.RerunReason(new DbUpdateException("save failed")));
        Assert.Equal("busy", ReferralEngine.RerunReason(new SqliteException("database is locked", 5)));
        Assert.Equal("concurrent_change", ReferralEngine.RerunReason(new ConcurrentChangeException("a referral changed")));
        Assert.Equal("unread_repeat", ReferralEngine.RerunReason(new UnreadRepeatException("an order repeats")));
        Assert.Null(ReferralEngine.RerunReason(new InvalidOperationException("a bug")));
        Assert.Null(ReferralEngine.RerunReason(new Npgsql.PostgresException("connection lost", "FATAL", "FATAL", "57P01")));
    }

    private static MeterListener RerunListener(ConcurrentQueue<string> reasons)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument == Telemetry.Reruns)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag is { Key: "reason", Value: string reason })
                {
                    reasons.Enqueue(reason);
                }
            }
        });
        listener.Start();
        return listener;
    }
}
