using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Tests.Support;

namespace Referloop.Tests.Tracking;

/// <summary>
/// Guards the cost of the ingest hot path: the SQL commands one attributed, auto-approved purchase runs. Counted, not
/// timed, so the guard is deterministic; raise a limit only with a reason, since every command is paid on every event.
/// </summary>
public class IngestCostTests(IngestCostTests.CountingApp app) : IClassFixture<IngestCostTests.CountingApp>
{
    // One attributed purchase that creates, qualifies and auto-approves a referral with one advocate reward, alone in
    // its batch (ReferralEngine.TrackAsync; a batch reads and writes each kind of row once for all its events).
    // PostgreSQL sends a save's statements as one batch; SQLite runs each on its own. A referral code is found by the
    // same read as the friend; a click id takes one read more. The advocate's counters are read once and every counter
    // that moved is written by one statement; on PostgreSQL the advocate is locked by a statement of its own first (a
    // counters read in the statement that waited for the lock would see them as they were before the wait). New rows
    // (friend, referral, its history, the reward) are written with one statement per table as plain ADO.NET commands
    // this count does not see. The save updates the event's row; the outbox messages (six here) are then inserted with
    // one statement, also plain ADO.NET, and fanned out to endpoints later by the delivery engine.
    [Theory]
    [InlineData("referralCode", 13, 8)]
    [InlineData("clickId", 14, 9)]
    public async Task An_attributed_auto_approved_purchase_runs_a_bounded_number_of_sql_commands(string attribution, int onSqlite,
        int onPostgres)
    {
        var maxCommands = ReferloopApp.OnPostgres ? onPostgres : onSqlite;
        var admin = app.CreateAdminClient();
        var campaignId = await admin.CreateCampaign(Api.AutoApprovedRebateCampaign("Cost guard"));
        var advocate = await admin.PostOk($"/api/v1/campaigns/{campaignId}/participants", new { email = $"ann-{attribution}@example.com" });
        var visit = await app.CreateAnonymousClient().GetAsync(new Uri((string)advocate["shareUrl"]!).PathAndQuery);
        var clickId = QueryHelpers.ParseQuery(visit.Headers.Location!.Query)["rl_click"].ToString();
        var byCode = attribution == "referralCode";
        object Purchase(string email, string order) => new
        {
            campaignId,
            type = "purchase",
            email,
            orderId = order,
            purchaseValue = 120.5,
            currency = "USD",
            ip = "198.51.100.7",
            referralCode = byCode ? (string?)advocate["code"] : null,
            clickId = byCode ? null : clickId,
        };
        // The first event warms the caches the later ones find filled.
        await admin.PostOk("/api/v1/events", Purchase($"warm-{attribution}@example.net", $"warm-{attribution}"), HttpStatusCode.Accepted);

        var commands = await SqlCommands.CountAsync(() =>
            admin.PostOk("/api/v1/events", Purchase($"bob-{attribution}@example.net", $"o-{attribution}"), HttpStatusCode.Accepted));

        var outcome = commands.Result;
        Assert.Equal("approved", (string?)outcome["referral"]!["status"]);
        Assert.Equal("issued", (string?)Assert.Single(outcome["rewards"]!.AsArray())!["status"]);
        Assert.True(commands.Texts.Count <= maxCommands,
            $"{commands.Texts.Count} SQL commands (at most {maxCommands}):\n{string.Join("\n", commands.Texts)}");
    }

    /// <summary>
    /// A server whose requests run in the test's execution context, so the commands a request runs can be told
    /// apart from the background services' and from other test classes' (the diagnostic listener is process-wide).
    /// </summary>
    public sealed class CountingApp : ReferloopApp
    {
        public CountingApp() => SqlCommands.Listen();

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.ConfigureTestServices(services =>
                services.Configure<TestServerOptions>(options => options.PreserveExecutionContext = true));
        }
    }

    private sealed record Counted<T>(T Result, IReadOnlyList<string> Texts);

    /// <summary>Records the text of every SQL command EF executes within the current asynchronous flow.</summary>
    private sealed class SqlCommands : IObserver<DiagnosticListener>, IObserver<KeyValuePair<string, object?>>
    {
        private static readonly AsyncLocal<List<string>?> Current = new();
        private static readonly Lazy<IDisposable> Subscription =
            new(() => DiagnosticListener.AllListeners.Subscribe(new SqlCommands()));

        // Subscribed before the server starts: EF caches for a while that nobody listens.
        public static void Listen() => _ = Subscription.Value;

        public static async Task<Counted<T>> CountAsync<T>(Func<Task<T>> work)
        {
            var texts = new List<string>();
            Current.Value = texts;
            try
            {
                var result = await work();
                lock (texts)
                {
                    return new Counted<T>(result, [.. texts]);
                }
            }
            finally
            {
                Current.Value = null;
            }
        }

        public void OnNext(DiagnosticListener listener)
        {
            if (listener.Name == DbLoggerCategory.Name)
            {
                listener.Subscribe(this, name => name == RelationalEventId.CommandExecuted.Name);
            }
        }

        public void OnNext(KeyValuePair<string, object?> value)
        {
            if (value.Value is CommandExecutedEventData executed && Current.Value is { } texts)
            {
                lock (texts)
                {
                    texts.Add(executed.Command.CommandText);
                }
            }
        }

        public void OnCompleted()
        {
        }

        public void OnError(Exception error)
        {
        }
    }
}
