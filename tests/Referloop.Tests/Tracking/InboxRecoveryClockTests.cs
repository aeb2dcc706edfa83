using System.Data.Common;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Referloop.Tests.Support;
using Referloop.Tests.Webhooks;

namespace Referloop.Tests.Tracking;

/// <summary>
/// The recovery of accepted events runs again a while after its last run, not once for every period a jump of the
/// clock skipped: test clocks move by a month in one step, and a periodic timer owes each skipped period (86,400 at
/// 30 s): it kept running the recovery, and a reward test's next request waited 17 s for it.
/// </summary>
public class InboxRecoveryClockTests(InboxRecoveryClockTests.CountingApp app) : IClassFixture<InboxRecoveryClockTests.CountingApp>
{
    public sealed class CountingApp : ReferloopApp
    {
        public InboxReads Reads { get; } = new();

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.InterceptDatabase(Reads);
        }
    }

    /// <summary>Counts the reads of the inbox: only the recovery reads it while no event is reported.</summary>
    public sealed class InboxReads : DbCommandInterceptor
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _reads = new();

        public int Count => _reads.Count;

        public string Texts => string.Join("\n", _reads);

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
            InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            // The recovery's query: FROM event_inbox AS e on PostgreSQL, FROM "event_inbox" AS "e" on SQLite.
            if (command.CommandText.Replace("\"", "", StringComparison.Ordinal).Contains("FROM event_inbox AS", StringComparison.Ordinal))
            {
                _reads.Enqueue(command.CommandText);
            }
            return base.ReaderExecutingAsync(command, eventData, result, cancellationToken);
        }
    }

    [Fact]
    public async Task A_month_of_clock_in_one_step_wakes_the_recovery_once_not_once_per_skipped_period()
    {
        using var client = app.CreateAdminClient();
        await Eventually.TrueAsync(() => Task.FromResult(app.Reads.Count >= 1), TimeSpan.FromSeconds(10), () => "no recovery at start");
        var before = app.Reads.Count;

        app.Clock.Advance(TimeSpan.FromDays(30));
        // The run at start may still have been under way when the clock jumped; it then sleeps from the new time, and
        // half a minute more wakes it. Otherwise that half minute ends the sleep of the run the jump woke.
        await Task.Delay(500);
        app.Clock.Advance(TimeSpan.FromSeconds(30));
        await Eventually.TrueAsync(() => Task.FromResult(app.Reads.Count > before), TimeSpan.FromSeconds(10), () => "no recovery after the jump");
        await Task.Delay(200);

        var runs = app.Reads.Count - before;
        Assert.True(runs is 1 or 2, $"{runs} recoveries after a month and half a minute:\n{app.Reads.Texts}");
    }
}
