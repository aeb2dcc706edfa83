using System.Diagnostics;
using System.Net;
using System.Data.Common;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Referloop.Tests.Support;
using Referloop.Tracking;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Tracking;

/// <summary>
/// Accepted events beyond what an instance holds in memory (<c>Tracking:MaxQueued</c>) wait in the table and are
/// processed once the ones in memory are done, without waiting for the periodic recovery (an hour here, on a clock
/// that never moves).
/// </summary>
public class InboxBacklogTests(InboxBacklogTests.SmallInboxApp app) : IClassFixture<InboxBacklogTests.SmallInboxApp>
{
    public class SmallInboxApp : ReferloopApp
    {
        protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
        {
            ["Tracking:MaxQueued"] = "2",
            ["Tracking:InboxRecoverySeconds"] = "3600",
        };
    }

    private readonly HttpClient _admin = app.CreateAdminClient();

    [Fact]
    public async Task A_burst_larger_than_memory_holds_is_processed_from_the_table_in_full()
    {
        await BurstIsProcessedInFullAsync(app, _admin, "burst");
    }

    /// <summary>Twelve purchases accepted at once, each processed, each rewarding the advocate.</summary>
    internal static async Task BurstIsProcessedInFullAsync(ReferloopApp app, HttpClient admin, string name)
    {
        var (campaign, _) = await admin.Campaign(
            [new { recipient = "advocate", trigger = "converted", kind = "standard", incentive = Rebate(10) }],
            new { fraud = new { selfReferral = false, disposableEmail = false } });
        var (_, code) = await admin.Advocate(campaign, $"{name}-ann@example.com");

        var answers = await Task.WhenAll(Enumerable.Range(0, 12).Select(async i =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/events")
            {
                Content = JsonContent.Create(new
                {
                    campaignId = campaign,
                    type = "purchase",
                    email = $"{name}-{i}@example.net",
                    referralCode = code,
                    orderId = $"{name}-{i}",
                }),
            };
            request.Headers.Add("Prefer", "respond-async");
            using var response = await admin.SendAsync(request);
            response.EnsureStatus(HttpStatusCode.Accepted);
            return (string)(await response.ReadJson())["eventId"]!;
        }));

        foreach (var eventId in answers)
        {
            await Eventually(async () => (string?)(await admin.GetOk($"/api/v1/events/{eventId}"))["status"] == "processed",
                $"event {eventId} is processed");
        }
        Assert.Equal(12, (await app.Messages(campaign)).Count(m => m.Type == "reward.issued"));
    }
}

/// <summary>
/// When reading what a burst left in the table fails, the read is tried again soon: the events accepted meanwhile wait
/// behind the ones left before them, and not for the periodic recovery.
/// </summary>
public class InboxBacklogReadFailureTests(InboxBacklogReadFailureTests.FailingReadApp app)
    : IClassFixture<InboxBacklogReadFailureTests.FailingReadApp>
{
    public sealed class FailingReadApp : InboxBacklogTests.SmallInboxApp
    {
        public FailOnce Failure { get; } = new();

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.InterceptDatabase(Failure);
        }
    }

    /// <summary>Fails the first read of the inbox's oldest rows after <see cref="Armed"/> is set.</summary>
    public sealed class FailOnce : DbCommandInterceptor
    {
        public volatile bool Armed;
        public int Failed;

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
            InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            if (command.CommandText.Contains("event_inbox") && command.CommandText.Contains("ORDER BY") && Armed)
            {
                Armed = false;
                Interlocked.Increment(ref Failed);
                throw new InvalidOperationException("The database is briefly unavailable");
            }
            return base.ReaderExecutingAsync(command, eventData, result, cancellationToken);
        }
    }

    [Fact]
    public async Task A_burst_is_processed_in_full_though_the_first_read_of_what_it_left_fails()
    {
        app.Failure.Armed = true;

        await InboxBacklogTests.BurstIsProcessedInFullAsync(app, app.CreateAdminClient(), "flaky");

        Assert.Equal(1, app.Failure.Failed);
    }
}

/// <summary>When processing accepted events waits for acceptance: only while acceptance is under load, and not for ever.</summary>
public class AcceptanceLoadTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);
    private static readonly long Start = Stopwatch.GetTimestamp();

    private static long After(double milliseconds) => Start + (long)(milliseconds * Stopwatch.Frequency / 1000);

    [Fact]
    public void Processing_goes_before_acceptance_has_written_anything()
    {
        Assert.False(new AcceptanceLoad().Yields(After(0), TimeSpan.Zero, Limit));
    }

    [Fact]
    public void Processing_waits_while_a_full_batch_is_written_and_shortly_after()
    {
        var load = new AcceptanceLoad();
        load.Began(AcceptanceLoad.Busy);
        Assert.True(load.Yields(After(500), TimeSpan.FromSeconds(1), Limit));

        load.Ended(After(0));
        Assert.True(load.Yields(After(AcceptanceLoad.Recent.TotalMilliseconds - 1), TimeSpan.FromSeconds(1), Limit));
        Assert.False(load.Yields(After(AcceptanceLoad.Recent.TotalMilliseconds + 1), TimeSpan.FromSeconds(1), Limit));
    }

    [Fact]
    public void A_few_requests_at_a_time_never_make_processing_wait()
    {
        var load = new AcceptanceLoad();
        load.Began(AcceptanceLoad.Busy - 1);
        Assert.False(load.Yields(After(1), TimeSpan.Zero, Limit));
        load.Ended(After(2));
        Assert.False(load.Yields(After(3), TimeSpan.Zero, Limit));
    }

    [Fact]
    public void An_event_that_has_waited_the_limit_goes_however_busy_acceptance_is()
    {
        var load = new AcceptanceLoad();
        load.Began(256);
        Assert.True(load.Yields(After(1), Limit - TimeSpan.FromMilliseconds(1), Limit));
        Assert.False(load.Yields(After(1), Limit, Limit));
        Assert.False(new AcceptanceLoad().Yields(After(1), TimeSpan.Zero, TimeSpan.Zero));
    }
}
