using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Tests.Support;
using Referloop.Webhooks;

namespace Referloop.Tests.Webhooks;

/// <summary>A second server instance on the database of a first one (PostgreSQL only: SQLite runs one instance).</summary>
public sealed class SecondInstance(string connectionString) : WebhookApp
{
    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["ConnectionStrings:Referloop"] = connectionString;
            return settings;
        }
    }
}

public sealed class FirstInstance : WebhookApp
{
    public string SharedConnectionString => ConnectionString;
}

public class TwoInstanceTests(FirstInstance app) : IClassFixture<FirstInstance>
{
    [Fact]
    public async Task Two_instances_on_one_postgres_share_the_work_and_never_send_a_message_twice_at_once()
    {
        if (!ReferloopApp.OnPostgres)
        {
            return;
        }
        var second = new SecondInstance(app.SharedConnectionString);
        await ((IAsyncLifetime)second).InitializeAsync();
        try
        {
            var inFlight = new ConcurrentDictionary<string, int>();
            var overlaps = 0;
            var sends = new ConcurrentDictionary<string, int>();
            await using var receiver = await Receiver.StartAsync();
            receiver.Respond = (_, request) =>
            {
                var id = request.Header("webhook-id");
                sends.AddOrUpdate(id, 1, (_, n) => n + 1);
                if (inFlight.AddOrUpdate(id, 1, (_, n) => n + 1) > 1)
                {
                    Interlocked.Increment(ref overlaps);
                }
                Thread.Sleep(2);
                inFlight.AddOrUpdate(id, 0, (_, n) => n - 1);
                return new Reply();
            };
            var client = app.CreateAdminClient();
            await client.PostOk("/api/v1/webhook-endpoints", new { url = receiver.Url(), eventTypes = new[] { "referral.created" } });

            const int count = 1000;
            for (var batch = 0; batch < count / 100; batch++)
            {
                await app.WithDb(async db =>
                {
                    for (var i = 0; i < 100; i++)
                    {
                        Outbox.Add(db, EventTypes.ReferralCreated, null,
                            JsonSerializer.Deserialize<JsonElement>(ExamplePayloads.Data[EventTypes.ReferralCreated]), app.Clock.GetUtcNow());
                    }
                    return await db.SaveChangesAsync();
                });
            }

            await receiver.WaitForAsync(count, seconds: 120);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (await app.WithDb(db => db.WebhookDeliveries.CountAsync(d => d.Status == DeliveryStatus.Succeeded)) < count
                && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }

            Assert.Equal(0, overlaps);
            Assert.Equal(count, sends.Count);
            Assert.All(sends.Values, n => Assert.Equal(1, n));
            Assert.Equal(count, await app.WithDb(db => db.WebhookDeliveries.CountAsync(d => d.Status == DeliveryStatus.Succeeded)));
            Assert.Equal(count, await app.WithDb(db => db.WebhookAttempts.CountAsync()));
            var first = app.Services.GetRequiredService<DeliveryEngine>().Attempts;
            var other = second.Services.GetRequiredService<DeliveryEngine>().Attempts;
            Assert.True(first > 0 && other > 0, $"both instances should deliver: {first} and {other}");
        }
        finally
        {
            await ((IAsyncLifetime)second).DisposeAsync();
        }
    }
}
