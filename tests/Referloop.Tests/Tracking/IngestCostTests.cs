using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Campaigns;
using Referloop.Referrals;
using Referloop.Rewards;
using Referloop.Storage;
using Referloop.Tests.Support;
using Referloop.Tracking;
using Referloop.Webhooks;

namespace Referloop.Tests.Tracking;

/// <summary>
/// Guards the cost of the ingest hot path: the SQL commands one attributed, auto-approved purchase runs. Counted, not
/// timed, so the guard is deterministic; raise a limit only with a reason, since every command is paid on every event.
/// </summary>
public class IngestCostTests(IngestCostTests.CountingApp app) : IClassFixture<IngestCostTests.CountingApp>
{
    // One attributed purchase that creates, qualifies and auto-approves a referral with one advocate reward, alone in
    // its batch (ReferralEngine.TrackAsync; a batch reads and writes each kind of row once for all its events). The
    // commands are those of the event loop's batch that answers the request (its span links to the request's).
    // EF Core runs the reads: the friend and the code's owner (one read), the click a click id names (one read more),
    // the enabled endpoints, and on SQLite the advocate's counters; the events that hold the order id are not read
    // while repeats are rare (the event's insert finds one, OrderKeyed.RepeatWatch). On
    // PostgreSQL the advocate is locked by a statement of its own, sent with the counters read in one round trip as
    // plain ADO.NET (a counters read in the statement that waited for the lock would see them as they were before the
    // wait). The new rows (the event, the friend, the referral, the reward), every counter that moved and the outbox
    // messages are plain ADO.NET statements, one per table, which PostgreSQL receives in one round trip
    // (StatementBatch). On PostgreSQL the round trips are counted too: each command or batch Npgsql sends (the commit
    // is not among them).
    [Theory]
    [InlineData("referralCode", 3, 2, 4)]
    [InlineData("clickId", 4, 3, 5)]
    public async Task An_attributed_auto_approved_purchase_runs_a_bounded_number_of_sql_commands(string attribution, int onSqlite,
        int onPostgres, int roundTripsOnPostgres)
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

        var commands = await SqlCommands.RecordAsync(() =>
            admin.PostOk("/api/v1/events", Purchase($"bob-{attribution}@example.net", $"o-{attribution}"), HttpStatusCode.Accepted));

        var outcome = commands.Result;
        Assert.Equal("approved", (string?)outcome["referral"]!["status"]);
        Assert.Equal("issued", (string?)Assert.Single(outcome["rewards"]!.AsArray())!["status"]);
        Assert.True(commands.Texts.Count <= maxCommands,
            $"{commands.Texts.Count} SQL commands (at most {maxCommands}):\n{string.Join("\n", commands.Texts)}");
        Assert.True(commands.RoundTrips.Count <= roundTripsOnPostgres,
            $"{commands.RoundTrips.Count} round trips (at most {roundTripsOnPostgres}):\n{string.Join("\n", commands.RoundTrips)}");
    }

    // Every read of a batch of events searches its indexes by value, on a database without statistics (the server
    // never runs ANALYZE). SQLite then guesses, and a list of more than a few values made it read a whole range of the
    // campaign's rows instead (all of its order ids, all of its participants): a batch cost more with every event
    // stored. On PostgreSQL, which plans on statistics, each read must have an index to use at all. The tables named
    // below are read whole on purpose: a few rows each, read for every batch.
    [Fact]
    public async Task Every_read_of_a_batch_of_events_searches_its_indexes_by_value()
    {
        string[] readWhole = ["webhook_endpoints"];
        var admin = app.CreateAdminClient();
        var campaignId = await admin.CreateCampaign(Api.AutoApprovedRebateCampaign("Query plans"));
        var links = new List<(string Code, string ClickId)>();
        for (var i = 0; i < 12; i++)
        {
            var advocate = await admin.PostOk($"/api/v1/campaigns/{campaignId}/participants", new { email = $"plan-{i}@example.com" });
            var visit = await app.CreateAnonymousClient().GetAsync(new Uri((string)advocate["shareUrl"]!).PathAndQuery);
            links.Add(((string)advocate["code"]!, QueryHelpers.ParseQuery(visit.Headers.Location!.Query)["rl_click"].ToString()));
        }
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var campaign = (await scope.ServiceProvider.GetRequiredService<CampaignCache>().FindAsync(db, campaignId, CancellationToken.None))!;
        var engine = scope.ServiceProvider.GetRequiredService<ReferralEngine>();
        TrackRequest Purchase(string round, int i) => new(campaign, new TrackEvent
        {
            CampaignId = campaignId,
            Type = "purchase",
            Email = $"plan-friend-{i}@example.net",
            OrderId = $"plan-{round}-{i}",
            PurchaseValue = 20,
            Currency = "USD",
            // The last four come from no advocate: attribution looks for earlier clicks of their emails and addresses.
            ReferralCode = i < links.Count && i % 2 == 0 ? links[i].Code : null,
            ClickId = i < links.Count && i % 2 == 1 ? links[i].ClickId : null,
        }, $"plan-{round}-key-{i}", "198.51.100.9", null, EventSource.Server);

        // The first batch creates the friends and their referrals; the second finds them, with their rewards.
        foreach (var round in new[] { "first", "second" })
        {
            var recorded = await SqlCommands.RecordAsync(() =>
                engine.TrackAsync([.. Enumerable.Range(0, links.Count + 4).Select(i => Purchase(round, i))], CancellationToken.None));
            Assert.All(recorded.Result.Take(links.Count), outcome => Assert.Equal("approved", outcome.Referral?.Status));
            Assert.All(recorded.Result.Skip(links.Count), outcome => Assert.False(outcome.Attributed));
            var reads = recorded.Commands.Where(c => c.Text.TrimStart().StartsWith("SELECT", StringComparison.OrdinalIgnoreCase)).ToList();
            Assert.NotEmpty(reads);
            foreach (var read in reads)
            {
                // PostgreSQL: a list matched against a nullable column as one array parameter carries a test for
                // NULL in the list, and a generic plan (reused after five runs) cannot use the column's index for it.
                Assert.DoesNotContain("array_position", read.Text);
                var plan = await PlanAsync(db, read);
                // SQLite names a table by its alias in the query.
                var tables = Regex.Matches(read.Text, "\"(\\w+)\" AS \"(\\w+)\"").DistinctBy(m => m.Groups[2].Value)
                    .ToDictionary(m => m.Groups[2].Value, m => m.Groups[1].Value);
                var whole = plan.Select(line => Regex.Match(line, ReferloopApp.OnPostgres ? @"Seq Scan on (\w+)" : @"^SCAN (\w+)$"))
                    .Where(m => m.Success && !readWhole.Contains(tables.GetValueOrDefault(m.Groups[1].Value, m.Groups[1].Value)))
                    .Select(m => m.Value)
                    // SQLite: every entry of an index, in its order.
                    .Concat(plan.Where(line => line.StartsWith("SCAN ") && line.Contains(" USING ")));
                // SQLite: a search bounded by the campaign alone, or by a range on its first column ("(OrderId>?)"),
                // reads a share of the campaign's rows.
                var ranges = plan.Where(line => Regex.IsMatch(line, @"^SEARCH .*\((CampaignId=\?( AND \w+[<>]\?.*)?|\w+[<>].*)\)$"));
                Assert.True(!whole.Any() && !ranges.Any(), $"{read.Text}\n{string.Join("\n", plan)}");
            }
        }
    }

    // A batch that does not read what its events repeat has its inserts look for them: each condition searches the
    // other table's order id and key indexes by value, on a database without statistics.
    [Theory]
    [InlineData("events")]
    [InlineData("event_inbox")]
    public async Task An_insert_that_looks_for_what_it_repeats_searches_the_indexes_by_value(string table)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var prefix = ReferloopApp.OnPostgres ? "@" : "$";
        var condition = new SqlCommand($"SELECT 1 WHERE {OrderKeyed.NoneIn(table)(column => prefix + column)}",
            [(prefix + "CampaignId", "cmp_plan"), (prefix + "OrderId", "order-1"), (prefix + "IdempotencyKey", "key-1")]);

        var plan = await PlanAsync(db, condition);

        Assert.True(plan.Count(line => line.Contains(ReferloopApp.OnPostgres ? "Index" : "SEARCH " + table)) >= 2, string.Join("\n", plan));
        Assert.DoesNotContain(plan, line => line.Contains("Seq Scan") || (line.StartsWith("SCAN ") && line != "SCAN CONSTANT ROW"));
    }

    // Most of a shop's purchases come from no advocate. Attribution looks for each kind of evidence (earlier clicks of
    // the email, clicks from the address) with one read for all the events of a batch, so twelve read as often as one.
    [Fact]
    public async Task A_batch_of_unattributed_purchases_reads_as_often_as_one_alone()
    {
        var admin = app.CreateAdminClient();
        var campaignId = await admin.CreateCampaign(Api.AutoApprovedRebateCampaign("Unattributed"));
        await admin.PostOk($"/api/v1/campaigns/{campaignId}/participants", new { email = "unattributed-ann@example.com" });
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var campaign = (await scope.ServiceProvider.GetRequiredService<CampaignCache>().FindAsync(db, campaignId, CancellationToken.None))!;
        var engine = scope.ServiceProvider.GetRequiredService<ReferralEngine>();
        TrackRequest Purchase(string name) => new(campaign, new TrackEvent
        {
            CampaignId = campaignId,
            Type = "purchase",
            Email = $"{name}@example.net",
            OrderId = name,
            PurchaseValue = 20,
            Currency = "USD",
        }, null, $"203.0.113.{name.Length}", null, EventSource.Server);
        static int Reads(Recorded<EventOutcome[]> recorded) =>
            recorded.Commands.Count(c => c.Text.TrimStart().StartsWith("SELECT", StringComparison.OrdinalIgnoreCase));

        var alone = await SqlCommands.RecordAsync(() => engine.TrackAsync([Purchase("alone-0")], CancellationToken.None));
        var twelve = await SqlCommands.RecordAsync(() =>
            engine.TrackAsync([.. Enumerable.Range(0, 12).Select(i => Purchase($"twelve-{i}"))], CancellationToken.None));

        Assert.All(twelve.Result, outcome => Assert.False(outcome.Attributed));
        Assert.Equal(Reads(alone), Reads(twelve));
    }

    // Delivery acknowledges referral.approved in batches, and each batch looks up its referrals before releasing their
    // rewards. Given the status too, SQLite (which has no statistics here) preferred the index that starts with the
    // status to the primary key, and read every approved referral of the program for every batch.
    [Fact]
    public async Task Releasing_the_rewards_of_acknowledged_approvals_looks_referrals_up_by_their_ids()
    {
        var admin = app.CreateAdminClient();
        var campaignId = await admin.CreateCampaign(Api.AutoApprovedRebateCampaign("Release"));
        var advocate = await admin.PostOk($"/api/v1/campaigns/{campaignId}/participants", new { email = "release-ann@example.com" });
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var campaign = (await scope.ServiceProvider.GetRequiredService<CampaignCache>().FindAsync(db, campaignId, CancellationToken.None))!;
        var outcomes = await scope.ServiceProvider.GetRequiredService<ReferralEngine>().TrackAsync(
            [.. Enumerable.Range(0, 8).Select(i => new TrackRequest(campaign, new TrackEvent
            {
                CampaignId = campaignId,
                Type = "purchase",
                Email = $"release-friend-{i}@example.net",
                OrderId = $"release-{i}",
                PurchaseValue = 20,
                Currency = "USD",
                ReferralCode = (string)advocate["code"]!,
            }, null, "198.51.100.20", null, EventSource.Server))], CancellationToken.None);
        var referralIds = outcomes.Select(o => o.Referral!.Id).ToList();
        Assert.Equal(8, referralIds.Distinct().Count());

        var recorded = await SqlCommands.RecordAsync(() => RewardRelease.OnReferralsApprovedAcknowledgedAsync(db, referralIds,
            app.Clock, scope.ServiceProvider.GetRequiredService<OutboxWriter>(), CancellationToken.None));

        var reads = recorded.Commands.Where(c => c.Text.TrimStart().StartsWith("SELECT", StringComparison.OrdinalIgnoreCase)
            && Regex.IsMatch(c.Text, "FROM \"?referrals\"? AS")).ToList();
        Assert.NotEmpty(reads);
        foreach (var read in reads)
        {
            var plan = string.Join("\n", await PlanAsync(db, read));
            Assert.True(ReferloopApp.OnPostgres ? plan.Contains("PK_referrals") : plan.Contains("(Id=?)"), $"{read.Text}\n{plan}");
        }
    }

    // Every hour the retention sweep empties old message bodies. Read from the whole log, it took about a second at a
    // million messages, holding SQLite's one writer meanwhile; the emptied bodies leave the index it reads instead.
    [Fact]
    public async Task The_retention_sweep_reads_the_message_bodies_still_kept_not_the_whole_log()
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();

        var recorded = await SqlCommands.RecordAsync(() => app.Services.GetRequiredService<RetentionSweep>().PurgeAsync(CancellationToken.None));

        var sweep = Assert.Single(recorded.Commands, c => Regex.IsMatch(c.Text, "UPDATE \"?outbox\"?"));
        var plan = string.Join("\n", await PlanAsync(db, sweep));
        Assert.True(plan.Contains("IX_outbox_unpurged") && !Regex.IsMatch(plan, ReferloopApp.OnPostgres ? "Seq Scan on outbox" : "SCAN o\\b"),
            $"{sweep.Text}\n{plan}");
    }

    private static async Task<List<string>> PlanAsync(ReferloopDb db, SqlCommand read)
    {
        await db.Database.OpenConnectionAsync();
        var connection = db.Database.GetDbConnection();
        if (ReferloopApp.OnPostgres)
        {
            // Whatever the tables hold, a plan without an index to use is still a sequential scan.
            await db.Database.ExecuteSqlRawAsync("SET enable_seqscan = off");
        }
        try
        {
            await using var explain = connection.CreateCommand();
            explain.CommandText = (ReferloopApp.OnPostgres ? "EXPLAIN " : "EXPLAIN QUERY PLAN ") + read.Text;
            foreach (var (name, value) in read.Parameters)
            {
                var parameter = explain.CreateParameter();
                parameter.ParameterName = name;
                parameter.Value = value ?? DBNull.Value;
                explain.Parameters.Add(parameter);
            }
            var lines = new List<string>();
            await using var reader = await explain.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                lines.Add(reader.GetString(ReferloopApp.OnPostgres ? 0 : 3));
            }
            return lines;
        }
        finally
        {
            if (ReferloopApp.OnPostgres)
            {
                await db.Database.ExecuteSqlRawAsync("RESET enable_seqscan");
            }
        }
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
}
