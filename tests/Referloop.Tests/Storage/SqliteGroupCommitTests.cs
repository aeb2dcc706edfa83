using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Referloop.Storage;
using Referloop.Tests.Support;

namespace Referloop.Tests.Storage;

/// <summary>
/// Units of work that queue while another commits are committed together on SQLite: each is still all or nothing on
/// its own, its caller resumes only once its changes are committed, and its work runs in its caller's context.
/// </summary>
public class SqliteGroupCommitTests(ReferloopApp app) : IClassFixture<ReferloopApp>
{
    private static readonly AsyncLocal<string?> Caller = new();

    [Fact]
    public async Task Units_that_queue_meanwhile_commit_together_and_a_failing_one_is_undone_alone()
    {
        if (ReferloopApp.OnPostgres)
        {
            // PostgreSQL runs every unit in a transaction of its own; there is nothing to group.
            Assert.Null(app.Services.GetService<SqliteGroupCommit>());
            return;
        }
        var group = app.Services.GetRequiredService<SqliteGroupCommit>();
        await app.WithDb(db => db.Database.ExecuteSqlRawAsync("CREATE TABLE IF NOT EXISTS group_probe (\"Id\" TEXT PRIMARY KEY, \"Caller\" TEXT)"));

        // The first unit holds its group open until the others have queued behind it, so they form the next group.
        var holdFirst = new TaskCompletionSource();
        var first = RunAsync(group, "first", "a", async () => await holdFirst.Task);
        var failing = RunAsync(group, "failing", "b", () => throw new InvalidOperationException("the unit's own failure"));
        var last = RunAsync(group, "last", "c", () => Task.CompletedTask);
        await Task.Delay(200);
        Assert.False(first.IsCompleted);
        holdFirst.SetResult();

        // Committed by the time its caller resumes: another connection reads it.
        Assert.Equal("first", await first);
        Assert.Contains("a:first", await ProbeRows());
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => failing);
        Assert.Equal("the unit's own failure", failure.Message);
        // The unit's work ran in its own caller's context, whichever group committed it.
        Assert.Equal("last", await last);

        // The failed unit left nothing; the one after it in its group committed.
        Assert.Equal(new[] { "a:first", "c:last" }, await ProbeRows());
    }

    [Fact]
    public async Task The_groups_connection_keeps_its_savepoint_journal_in_memory()
    {
        if (ReferloopApp.OnPostgres)
        {
            Assert.Null(app.Services.GetService<SqliteGroupCommit>());
            return;
        }
        var group = app.Services.GetRequiredService<SqliteGroupCommit>();
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();

        // Each unit runs in a savepoint; SQLite keeps a savepoint's page copies in a temporary file unless temp_store is MEMORY (2).
        var (tempStore, _) = await group.RunAsync(db, () =>
            db.Database.SqlQueryRaw<long>("SELECT temp_store AS \"Value\" FROM pragma_temp_store").SingleAsync(), CancellationToken.None);

        Assert.Equal(2, tempStore);
    }

    private Task<List<string>> ProbeRows() => app.WithDb(db => db.Database
        .SqlQueryRaw<string>("SELECT \"Id\" || ':' || \"Caller\" AS \"Value\" FROM group_probe ORDER BY \"Id\"").ToListAsync());

    [Fact]
    public async Task Concurrent_purchases_are_all_attributed_and_stored_once()
    {
        var admin = app.CreateAdminClient();
        var campaignId = await admin.CreateCampaign(Api.AutoApprovedRebateCampaign("Grouped purchases"));
        var advocate = await admin.PostOk($"/api/v1/campaigns/{campaignId}/participants", new { email = "ann-grouped@example.com" });
        var code = (string)advocate["code"]!;

        // Twice the same 40 orders at once: each order is attributed once, and its repeat is answered as a duplicate.
        var posts = Enumerable.Range(0, 80).Select(i => admin.PostOk("/api/v1/events", new
        {
            campaignId,
            type = "purchase",
            email = $"friend-{i % 40}@example.net",
            orderId = $"grouped-{i % 40}",
            purchaseValue = 20,
            currency = "USD",
            referralCode = code,
        }, HttpStatusCode.Accepted));
        var outcomes = await Task.WhenAll(posts);

        Assert.Equal(40, outcomes.Count(o => !(bool)o["duplicate"]!));
        Assert.All(outcomes, o => Assert.Equal("approved", (string?)o["referral"]!["status"]));
        var referrals = await app.WithDb(db => db.Referrals.CountAsync(r => r.CampaignId == campaignId));
        var rewards = await app.WithDb(db => db.Rewards.CountAsync(r => r.CampaignId == campaignId));
        Assert.Equal(40, referrals);
        Assert.Equal(40, rewards);
    }

    private async Task<string?> RunAsync(SqliteGroupCommit group, string caller, string id, Func<Task> before)
    {
        Caller.Value = caller;
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ReferloopDb>();
        var (seen, _) = await group.RunAsync(db, async () =>
        {
            await db.Database.ExecuteSqlAsync($"INSERT INTO group_probe (\"Id\", \"Caller\") VALUES ({id}, {Caller.Value})");
            await before();
            return Caller.Value;
        }, CancellationToken.None);
        return seen;
    }
}
