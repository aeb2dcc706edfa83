using System.Data.Common;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Referrals;
using Referloop.Storage;
using Referloop.Tests.Support;
using Referloop.Tracking;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Referrals;

/// <summary>
/// When the database itself fails, a batch of events fails at once: running its events again one by one would meet
/// the same failure for each, each after its own timeout, while every request behind them waits.
/// </summary>
public class DatabaseOutageTests(DatabaseOutageTests.OutageApp app) : IClassFixture<DatabaseOutageTests.OutageApp>
{
    public sealed class OutageApp : ReferloopApp
    {
        public Outage Outage { get; } = new();

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.InterceptDatabase(Outage);
        }
    }

    /// <summary>While <see cref="Down"/>, every query times out, as against a database that no longer answers.</summary>
    public sealed class Outage : DbCommandInterceptor
    {
        public volatile bool Down;
        public int Failed;

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
            InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            if (Down)
            {
                Interlocked.Increment(ref Failed);
                throw new TimeoutException("The database did not answer");
            }
            return base.ReaderExecutingAsync(command, eventData, result, cancellationToken);
        }
    }

    [Fact]
    public void Failures_of_the_database_are_told_from_failures_of_one_row()
    {
        Assert.True(DatabaseOutage.Is(new TimeoutException()));
        Assert.True(DatabaseOutage.Is(new InvalidOperationException("wrapped", new Microsoft.Data.Sqlite.SqliteException("disk full", 13))));
        Assert.True(DatabaseOutage.Is(new Npgsql.NpgsqlException("connection refused", new System.Net.Sockets.SocketException())));
        Assert.False(DatabaseOutage.Is(new Microsoft.Data.Sqlite.SqliteException("constraint", 19)));
        Assert.False(DatabaseOutage.Is(new Npgsql.PostgresException("deadlock detected", "ERROR", "ERROR", "40P01")));
        Assert.False(DatabaseOutage.Is(new InvalidOperationException("a bug about one event")));
    }

    [Fact]
    public async Task A_batch_that_meets_a_database_outage_fails_all_its_events_at_once()
    {
        var admin = app.CreateAdminClient();
        var (campaignId, _) = await admin.Campaign([new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) }]);
        var campaign = await app.WithDb(db => db.Campaigns.AsNoTracking().SingleAsync(c => c.Id == campaignId));
        var ingest = app.Services.GetRequiredService<EventIngest>();
        TrackRequest Purchase(int i) => new(campaign,
            new TrackEvent { CampaignId = campaignId, Type = "purchase", Email = $"outage-{i}@example.net", OrderId = $"OUT-{i}" },
            null, null, null, "server");

        app.Outage.Down = true;
        var tracked = Enumerable.Range(0, 20).Select(i => ingest.TrackAsync(Purchase(i))).ToList();
        foreach (var task in tracked)
        {
            var failure = await Assert.ThrowsAnyAsync<Exception>(() => task);
            Assert.True(DatabaseOutage.Is(failure), failure.ToString());
        }
        app.Outage.Down = false;

        // One failed read per batch; run one by one, the twenty would have failed again after their batches.
        Assert.InRange(app.Outage.Failed, 1, 19);
        Assert.Equal(0, await app.WithDb(db => db.Events.CountAsync(e => e.CampaignId == campaignId)));
        var after = await ingest.TrackAsync(Purchase(20));
        Assert.False(after.Duplicate);
    }
}
