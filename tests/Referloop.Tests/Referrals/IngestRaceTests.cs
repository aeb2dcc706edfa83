using System.Data.Common;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Npgsql;
using Referloop.Tests.Support;
using static Referloop.Tests.Referrals.EngineKit;

namespace Referloop.Tests.Referrals;

/// <summary>
/// PostgreSQL runs instances side by side: a row an event's batch read may change or go before the batch writes. The
/// batch then runs again from a fresh read, and the event is answered as that read finds things.
/// </summary>
public class IngestRaceTests(IngestRaceTests.RaceApp app) : IClassFixture<IngestRaceTests.RaceApp>
{
    public sealed class RaceApp : EngineApp
    {
        public AfterCodeOwnersRead AfterRead { get; } = new();

        /// <summary>The class's database, for a connection of the test's own (another instance's, as it were).</summary>
        public string Database => ConnectionString;

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.InterceptDatabase(AfterRead);
        }
    }

    /// <summary>Runs an action once, right after a batch has read its friends and code owners.</summary>
    public sealed class AfterCodeOwnersRead : DbCommandInterceptor
    {
        private Func<Task>? _once;

        public void Then(Func<Task> action) => _once = action;

        public override async ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData,
            DbDataReader result, CancellationToken cancellationToken = default)
        {
            if (command.CommandText.Contains("FROM participants", StringComparison.Ordinal)
                && command.CommandText.Contains("\"Code\" = ANY", StringComparison.Ordinal)
                && Interlocked.Exchange(ref _once, null) is { } action)
            {
                await action();
            }
            return result;
        }
    }

    private readonly HttpClient _admin = app.CreateAdminClient();

    [PostgresFact]
    public async Task An_advocate_deleted_after_the_batch_read_their_code_leaves_the_purchase_recorded_without_attribution()
    {
        var (campaign, _) = await _admin.Campaign(AdvocateTenDollars);
        var (advocateId, code) = await _admin.Advocate(campaign, "gone@example.com");
        // As another instance's erasure would, between the batch's read of the code's owner and its writes: the
        // referral the batch writes names a participant that is no longer there.
        app.AfterRead.Then(async () =>
        {
            await using var connection = new NpgsqlConnection(app.Database);
            await connection.OpenAsync();
            await using var delete = new NpgsqlCommand("""DELETE FROM participants WHERE "Id" = $1""", connection)
            {
                Parameters = { new() { Value = advocateId } },
            };
            Assert.Equal(1, await delete.ExecuteNonQueryAsync());
        });

        var purchase = await _admin.Track(campaign, "purchase", "late-friend@example.net", code, orderId: "GONE-1", purchaseValue: 30);

        Assert.False((bool)purchase["attributed"]!);
        Assert.Null(purchase["referral"]);
        Assert.Empty(purchase.Rewards());
        var eventId = (string)purchase["eventId"]!;
        Assert.Equal(1, await app.WithDb(db => db.Events.CountAsync(e => e.OrderId == "GONE-1")));
        Assert.Equal(0, await app.WithDb(db => db.Referrals.CountAsync(r => r.CampaignId == campaign)));
        var stored = JsonNode.Parse(await _admin.GetStringAsync($"/api/v1/events/{eventId}"))!;
        Assert.Equal("processed", (string)stored["status"]!);
        Assert.Null(stored["referralId"]);
        Assert.False((bool)stored["outcome"]!["attributed"]!);
    }
}
